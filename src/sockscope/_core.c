/*
 * sockscope._core: the optional compiled core of a listing (CPython extension).
 *
 * Three pieces, each a drop-in for a pure-Python reference that stays the readable
 * definition of the behaviour (and is what runs when this module is absent or
 * SOCKSCOPE_PURE=1 is set):
 *
 *   Renderer   ss's token buffer and column engine: same interface and output as
 *              sockscope.render.columns.PyRenderer (ports of ss.c's field_next,
 *              buf_update, field_flush, render_calc_width and render, iproute2 7.1).
 *   RowMaker   the per-socket work of a plain inet listing: walks the messages of one
 *              sock_diag datagram, decodes struct inet_diag_msg and makes the cells of
 *              each row exactly as the fast row closure of
 *              sockscope.tables.inet.row.InetRows.row_fn does, with the same memos (the
 *              Printer's dicts, shared). Everything outside that fast domain (a scope,
 *              v6only, SCTP, an unknown state or family, -r, service names, a memo
 *              miss it cannot fill) is handed to the Python row function with the
 *              record tuple, so both paths agree by construction. With ext set (TCP
 *              under -i/-m, with -o/-O or not) it also makes the extra-information
 *              cell, as the fast path of tables/inet/extinfo.py does (ext_text: the
 *              attribute walk, print_skmeminfo, tcp_timer_print and tcp_stats_print
 *              of tcpinfo.TcpText.text); any attribute block outside that path (vegas,
 *              dctcp, md5, ULP, short structures, bad headers) sends the row to Python.
 *   DiagTable  --watch's snapshot of one protocol: the dump's replies compared in step
 *              with the last snapshot's (sockscope.ops.watch.Table).
 *   Prefetch   the dump of a small table received by a thread of its own while the
 *              interpreter imports the listing's modules (sockscope.tables.inet.plan);
 *              the Python receive loop (kernel.netlink.datagrams) is the reference.
 *
 * Place in the package's layers: a leaf (it imports no sockscope module), reached only
 * through sockscope.backend; see tests/test_architecture.py.
 *
 * Licence: GPL-2.0-or-later, like iproute2. Written from ss's behaviour and the uapi
 * headers, not copied.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------ */
/* column engine                                                                          */
/* ------------------------------------------------------------------------------------ */

#define COL_PROC 8
#define COL_EXT 9
#define NSLOTS 10
#define CHUNK_ROOM (1024 * 1024 - 16)
#define CHUNKS_MAX 5
#define TOKEN_MAX 0xFFFF
/* text handed to write() at a time, unless Renderer(flush=N) says otherwise */
#define OUT_FLUSH (1 << 18)

/* columns[] of ss.c: right-aligned and left delimiter length per slot */
static const int COL_RIGHT[NSLOTS] = {0, 0, 0, 0, 1, 0, 1, 0, 0, 0};
static const int COL_DELIM[NSLOTS] = {0, 1, 1, 1, 1, 0, 1, 0, 0, 0};
static const char *COL_HEADER[NSLOTS] = {
    "Netid", "State", "Recv-Q", "Send-Q", "Local Address:", "Port",
    "Peer Address:", "Port", "Process", ""};

typedef struct {
    PyObject_HEAD
    int slots[NSLOTS];
    int ncols;
    int ext_col;
    int last_visible;
    long screen;
    PyObject *write;
    Py_ssize_t max_len[NSLOTS];
    /* the buffered rows, ncols cell references each (flat: a row costs its cells'
     * pointers, not a tuple of its own; about 80,000 rows of -tan fit in ss's five
     * chunks, so this is most of a listing's memory) */
    PyObject **rows;
    Py_ssize_t nrows, cap;
    /* ss's chunk accounting of the current batch */
    int chunks;
    long start;
    /* -1: no render pending; 0: render after this row; 1: after the next row */
    int pending;
    char *out;
    Py_ssize_t outlen, outcap;
    /* hand the text to write() each time this much is ready */
    Py_ssize_t flush_at;
    /* inside the write callback: the rows and the output buffer are in use */
    int busy;
} Renderer;

static void renderer_clear_rows(Renderer *self);

/* 0 when the renderer can take a call; a Python mistake (no __init__, a call from its
 * own write callback, which would free or move the rows under the render loop) raises
 * instead of crashing the interpreter. */
static int
renderer_ready(Renderer *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Renderer called from its own write callback");
        return -1;
    }
    if (self->write == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Renderer.__init__ was not called");
        return -1;
    }
    return 0;
}

static int
renderer_init(Renderer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"enabled", "write", "width", "flush", NULL};
    PyObject *enabled, *write;
    long width = -1;
    Py_ssize_t flush_at = OUT_FLUSH;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Renderer called from its own write callback");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|ln", kwlist, &enabled, &write, &width,
                                     &flush_at))
        return -1;
    if (flush_at < 1) {
        PyErr_SetString(PyExc_ValueError, "flush: at least 1 byte");
        return -1;
    }
    PyObject *seq = PySequence_Fast(enabled, "enabled must be a sequence");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > NSLOTS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "enabled: 1 to 10 slots");
        return -1;
    }
    self->last_visible = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        long s = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (s < 0 || s >= NSLOTS) {
            Py_DECREF(seq);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "slot out of range");
            return -1;
        }
        self->slots[i] = (int)s;
        if (s < COL_EXT)
            self->last_visible = (int)i;
        self->max_len[i] = 0;
    }
    Py_DECREF(seq);
    /* a second __init__: the rows buffered so far were laid out for the old columns */
    renderer_clear_rows(self);
    PyMem_Free(self->rows);
    self->rows = NULL;
    self->cap = 0;
    self->ncols = (int)n;
    self->ext_col = (int)n - 1;
    self->screen = width;
    self->flush_at = flush_at;
    Py_XSETREF(self->write, Py_NewRef(write));
    self->chunks = 0;
    self->start = 0;
    self->pending = -1;
    return 0;
}

static void
renderer_clear_rows(Renderer *self)
{
    for (Py_ssize_t i = 0; i < self->nrows * self->ncols; i++)
        Py_DECREF(self->rows[i]);
    self->nrows = 0;
}

static void
renderer_dealloc(Renderer *self)
{
    renderer_clear_rows(self);
    PyMem_Free(self->rows);
    PyMem_Free(self->out);
    Py_XDECREF(self->write);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* One token of n bytes in column col (ss's buf_update/field_flush); returns -1, or 0/1
 * when five chunks exist: render at the end of this row / of the next one. */
static int
account_token(Renderer *self, Py_ssize_t n, int col)
{
    if (n > TOKEN_MAX)
        n = TOKEN_MAX;
    long cost = 2 + (long)n + (long)(n & 1);
    for (;;) {
        if (self->start + cost <= CHUNK_ROOM - 2) {
            self->start += cost;
            return -1;
        }
        int out_called = n > 0 || self->slots[col] < COL_PROC;
        if (out_called && self->start != 0 && self->start + 2 + n >= CHUNK_ROOM) {
            /* buf_update: the token moves to a fresh chunk */
            self->chunks++;
            if (self->chunks >= CHUNKS_MAX)
                return 0;
            self->start = 0;
            continue;
        }
        /* field_flush: the next length field would not fit */
        if (col == self->ext_col && self->chunks >= CHUNKS_MAX)
            return 0;
        self->chunks++;
        self->start = 0;
        if (self->chunks >= CHUNKS_MAX)
            return col == self->ext_col ? 1 : 0;
        return -1;
    }
}

static int
out_reserve(Renderer *self, Py_ssize_t more)
{
    if (self->outlen + more <= self->outcap)
        return 0;
    Py_ssize_t cap = self->outcap ? self->outcap : 65536;
    while (cap < self->outlen + more)
        cap *= 2;
    char *p = PyMem_Realloc(self->out, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->out = p;
    self->outcap = cap;
    return 0;
}

static int
out_flush(Renderer *self)
{
    if (self->outlen == 0)
        return 0;
    PyObject *text = PyUnicode_DecodeLatin1(self->out, self->outlen, NULL);
    self->outlen = 0;
    if (text == NULL)
        return -1;
    self->busy = 1;
    PyObject *r = PyObject_CallOneArg(self->write, text);
    self->busy = 0;
    Py_DECREF(text);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Second pass of render_calc_width: distribute free space line by line. */
static void
spread(long *widths, int n, long screen)
{
    long length = 0;
    int linecols = 0, eol = -1, c = 0;
    while (c < n) {
        if (!widths[c]) {
            c++;
            continue;
        }
        linecols++;
        length += widths[c];
        int last = 1;
        for (int t = c + 1; t < n; t++)
            if (widths[t]) {
                last = 0;
                break;
            }
        if (!last && length < screen) {
            c++;
            continue;
        }
        if (length != screen) {
            if (length > screen) {
                length -= widths[c];
                c--;
                linecols--;
            }
            long pad = screen - length;
            long spacing = 0, rem = 0;
            if (linecols) {
                /* Python's divmod: floor division */
                spacing = pad / linecols;
                rem = pad % linecols;
                if (rem != 0 && ((rem < 0) != (linecols < 0))) {
                    rem += linecols;
                    spacing -= 1;
                }
            }
            for (int t = c; t > eol; t--) {
                if (widths[t]) {
                    widths[t] += spacing;
                    if (rem) {
                        widths[t] += 1;
                        rem -= 1;
                    }
                }
            }
        }
        eol = c;
        length = 0;
        linecols = 0;
        c++;
    }
}

/* Port of render_calc_width + render for the buffered rows (one batch). */
static int
render_batch(Renderer *self)
{
    Py_ssize_t nrows = self->nrows;
    int ncols = self->ncols;
    if (nrows == 0)
        return 0;
    for (int j = 0; j < ncols; j++) {
        Py_ssize_t upto = j == self->ext_col ? nrows - 1 : nrows;
        Py_ssize_t longest = -1;
        for (Py_ssize_t r = 0; r < upto; r++) {
            Py_ssize_t n = PyUnicode_GET_LENGTH(self->rows[r * ncols + j]);
            if (n > longest)
                longest = n;
        }
        if (upto > 0 && longest > self->max_len[j])
            self->max_len[j] = longest < TOKEN_MAX ? longest : TOKEN_MAX;
    }
    long widths[NSLOTS];
    long screen = self->screen > 0 ? self->screen : LONG_MAX;
    int first = 1;
    for (int j = 0; j < ncols; j++) {
        long m = (long)self->max_len[j];
        long w = (!first && m) ? m + COL_DELIM[self->slots[j]] : m;
        if (w > screen)
            w = screen;
        if (w)
            first = 0;
        widths[j] = w;
    }
    if (self->screen > 0)
        spread(widths, ncols, self->screen);
    /* per column: delimiter length, pad width (0: none), right-aligned */
    int delim[NSLOTS], right[NSLOTS];
    long pad[NSLOTS];
    int compact = self->screen < 0;
    for (int j = 0; j < ncols; j++) {
        int slot = self->slots[j];
        delim[j] = j == 0 ? 0 : COL_DELIM[slot];
        long w = widths[j] - delim[j];
        if (widths[j] == 0 || (compact && j == self->last_visible) || w <= 0)
            pad[j] = 0;
        else
            pad[j] = w;
        right[j] = COL_RIGHT[slot];
    }
    for (Py_ssize_t r = 0; r < nrows; r++) {
        PyObject **row = self->rows + r * ncols;
        for (int j = 0; j < ncols; j++) {
            PyObject *cell = row[j];
            Py_ssize_t n = PyUnicode_GET_LENGTH(cell);
            /* buf_update: a field holds at most USHRT_MAX bytes, the rest is dropped */
            if (n > TOKEN_MAX)
                n = TOKEN_MAX;
            Py_ssize_t fill = pad[j] > n ? pad[j] - n : 0;
            if (out_reserve(self, 1 + n + fill + 1) < 0)
                return -1;
            char *o = self->out + self->outlen;
            if (delim[j])
                *o++ = ' ';
            if (fill && right[j]) {
                memset(o, ' ', fill);
                o += fill;
            }
            memcpy(o, PyUnicode_1BYTE_DATA(cell), n);
            o += n;
            if (fill && !right[j]) {
                memset(o, ' ', fill);
                o += fill;
            }
            self->outlen = o - self->out;
        }
        self->out[self->outlen++] = '\n';
        if (self->outlen >= self->flush_at && out_flush(self) < 0)
            return -1;
    }
    renderer_clear_rows(self);
    self->chunks = 0;
    self->start = 0;
    self->pending = -1;
    return out_flush(self);
}

/* Check a row's cells: a tuple of ncols latin-1 str. */
static int
check_row(Renderer *self, PyObject *row)
{
    if (!PyTuple_Check(row)) {
        PyErr_SetString(PyExc_TypeError, "a row is a tuple of str");
        return -1;
    }
    if (PyTuple_GET_SIZE(row) != self->ncols) {
        PyErr_Format(PyExc_TypeError, "a row has %d cells, got %zd", self->ncols,
                     PyTuple_GET_SIZE(row));
        return -1;
    }
    for (int j = 0; j < self->ncols; j++) {
        PyObject *cell = PyTuple_GET_ITEM(row, j);
        if (!PyUnicode_Check(cell)) {
            PyErr_SetString(PyExc_TypeError, "a cell is a str");
            return -1;
        }
        if (PyUnicode_KIND(cell) != PyUnicode_1BYTE_KIND) {
            /* raises UnicodeEncodeError, as encoding the text would */
            PyObject *b = PyUnicode_AsLatin1String(cell);
            if (b == NULL)
                return -1;
            Py_DECREF(b);
            PyErr_SetString(PyExc_ValueError, "cell is not latin-1");
            return -1;
        }
    }
    return 0;
}

/* Queue one row (field_next at the end of a row); renders when ss would. */
static int
renderer_add_row(Renderer *self, PyObject *row)
{
    if (renderer_ready(self) < 0 || check_row(self, row) < 0)
        return -1;
    if (self->nrows == self->cap) {
        Py_ssize_t cap = self->cap ? self->cap * 2 : 4096;
        PyObject **p = PyMem_Realloc(self->rows, cap * self->ncols * sizeof(PyObject *));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->rows = p;
        self->cap = cap;
    }
    PyObject **slot = self->rows + self->nrows * self->ncols;
    for (int j = 0; j < self->ncols; j++)
        slot[j] = Py_NewRef(PyTuple_GET_ITEM(row, j));
    self->nrows++;
    if (self->pending == 1) {
        self->pending = 0;
    } else if (self->pending < 0) {
        if (self->chunks == 0) {
            self->chunks = 1;
            self->start = 0;
        }
        for (int j = 0; j < self->ncols; j++) {
            int r = account_token(self, PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(row, j)), j);
            if (r >= 0) {
                self->pending = r;
                break;
            }
        }
    }
    if (self->pending == 0)
        return render_batch(self);
    return 0;
}

static PyObject *
renderer_add(Renderer *self, PyObject *row)
{
    if (renderer_add_row(self, row) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
renderer_extend(Renderer *self, PyObject *rows)
{
    if (PyList_CheckExact(rows)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++)
            if (renderer_add_row(self, PyList_GET_ITEM(rows, i)) < 0)
                return NULL;
        Py_RETURN_NONE;
    }
    PyObject *it = PyObject_GetIter(rows);
    if (it == NULL)
        return NULL;
    PyObject *row;
    while ((row = PyIter_Next(it)) != NULL) {
        int r = renderer_add_row(self, row);
        Py_DECREF(row);
        if (r < 0) {
            Py_DECREF(it);
            return NULL;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
renderer_header(Renderer *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *row = PyTuple_New(self->ncols);
    if (row == NULL)
        return NULL;
    for (int j = 0; j < self->ncols; j++) {
        PyObject *s = PyUnicode_FromString(COL_HEADER[self->slots[j]]);
        if (s == NULL) {
            Py_DECREF(row);
            return NULL;
        }
        PyTuple_SET_ITEM(row, j, s);
    }
    int r = renderer_add_row(self, row);
    Py_DECREF(row);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
renderer_finish(Renderer *self, PyObject *Py_UNUSED(ignored))
{
    if (renderer_ready(self) < 0 || render_batch(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
renderer_get_max_len(Renderer *self, void *Py_UNUSED(closure))
{
    PyObject *out = PyList_New(self->ncols);
    if (out == NULL)
        return NULL;
    for (int j = 0; j < self->ncols; j++) {
        PyObject *v = PyLong_FromSsize_t(self->max_len[j]);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, j, v);
    }
    return out;
}

static PyMethodDef renderer_methods[] = {
    {"add", (PyCFunction)renderer_add, METH_O, "Queue one row (a cell per enabled slot)."},
    {"extend", (PyCFunction)renderer_extend, METH_O, "Queue many rows."},
    {"header", (PyCFunction)renderer_header, METH_NOARGS, "Queue the header row."},
    {"finish", (PyCFunction)renderer_finish, METH_NOARGS, "Render what is buffered."},
    {NULL}};

static PyGetSetDef renderer_getset[] = {
    {"max_len", (getter)renderer_get_max_len, NULL, "column widths so far", NULL},
    {NULL}};

static PyTypeObject RendererType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sockscope._core.Renderer",
    .tp_doc = "ss's token buffer and column engine (see render.columns.PyRenderer).",
    .tp_basicsize = sizeof(Renderer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)renderer_init,
    .tp_dealloc = (destructor)renderer_dealloc,
    .tp_methods = renderer_methods,
    .tp_getset = renderer_getset,
};

/* ------------------------------------------------------------------------------------ */
/* inet rows                                                                              */
/* ------------------------------------------------------------------------------------ */

#define NLMSG_HDRLEN_ 16
#define DIAG_MSG_LEN 72
#define NLMSG_DONE_ 3
#define NLMSG_MIN_TYPE_ 0x10
#define NLM_F_DUMP_INTR_ 0x10
#define IPPROTO_SCTP_ 132
#define NSTATES 14

#define QUEUE_FAST 1024

struct diag_msg {
    uint8_t family, state, timer, retrans;
    uint16_t sport, dport;
    uint8_t src[16], dst[16];
    uint32_t ifindex, cookie_lo, cookie_hi, expires, rqueue, wqueue, uid, inode;
};

/* a one-entry memo in front of a dict: most rows repeat the previous address */
struct addr_last {
    uint8_t key[16];
    int family;
    PyObject *text; /* a strong reference */
};

typedef struct {
    PyObject_HEAD
    int protocol;
    long long families;
    int enabled[NSLOTS];
    int ncols;
    int numeric;       /* ports may be made here (no service names) */
    int hosts;         /* -r: addresses go through Python */
    PyObject *addr4, *addr6, *ports, *qmemo;
    PyObject *states;  /* tuple of the State texts */
    PyObject *netid;
    PyObject *slow;    /* record -> row tuple */
    /* the record type (a subclass of tuple), or NULL until rec_factory made it: a
     * listing whose rows are all made here never imports the record module */
    PyObject *rec_type;
    PyObject *rec_factory; /* () -> the record type, or NULL */
    PyObject *control; /* (mtype, buf, off, length) -> done? */
    PyObject *matcher; /* record -> bool, or None */
    PyObject *proc;    /* inode -> Process cell, or None (no -p) */
    PyObject *empty, *star;
    PyObject *any_v6only; /* "[::]:": the wildcard of a v6only IPv6 listener */
    /* the extra-information cell of TCP rows for -i/-m (0: none; see ext_text) */
    int ext_mode, ext_options, ext_numeric;
    PyObject *ext_lead;   /* "\n\t", or "" with -O */
    PyObject *timers;     /* tuple of the timer names of tcp_timer_print */
    /* --json-lines: the head of each line ({"schema_version":".."); NULL for text rows */
    PyObject *json_head;
    /* C arrays in front of the port and queue memo dicts (strong references): a
     * table's rows repeat a few ports and small queue lengths, and a dict look-up
     * with a fresh int key costs more than the rest of the row */
    PyObject **port_fast; /* 65536 entries by port in network order, made on first use */
    PyObject *queue_fast[QUEUE_FAST];
    struct addr_last last[2];
    /* records decoded (before the filter), rows made, the last row's inode */
    Py_ssize_t decoded, made;
    unsigned long last_inode;
    int last_fast;
    /* inside feed(): its callbacks must not feed or re-initialise it */
    int busy;
} RowMaker;

#define PORT_FAST_BYTES (65536 * sizeof(PyObject *))

/* The zeroed port array (512 KiB), its pages mapped at once: a table's ports are
 * spread over all of it, and each page that a row or the clearing pass touched first
 * was a page fault of its own (about 2 us each here, 250 of them per maker for 300
 * sockets, half a millisecond of a start-up; populating them costs a tenth of that). */
static PyObject **
port_fast_new(void)
{
    void *p = mmap(NULL, PORT_FAST_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : (PyObject **)p;
}

static void
rowmaker_clear_fast(RowMaker *self)
{
    if (self->port_fast != NULL) {
        for (int i = 0; i < 65536; i++)
            Py_XDECREF(self->port_fast[i]);
        munmap(self->port_fast, PORT_FAST_BYTES);
        self->port_fast = NULL;
    }
    for (int i = 0; i < QUEUE_FAST; i++)
        Py_CLEAR(self->queue_fast[i]);
}

static void
rowmaker_dealloc(RowMaker *self)
{
    Py_XDECREF(self->addr4);
    Py_XDECREF(self->addr6);
    Py_XDECREF(self->ports);
    Py_XDECREF(self->qmemo);
    Py_XDECREF(self->states);
    Py_XDECREF(self->netid);
    Py_XDECREF(self->slow);
    Py_XDECREF(self->rec_type);
    Py_XDECREF(self->rec_factory);
    Py_XDECREF(self->any_v6only);
    Py_XDECREF(self->control);
    Py_XDECREF(self->matcher);
    Py_XDECREF(self->proc);
    Py_XDECREF(self->empty);
    Py_XDECREF(self->star);
    Py_XDECREF(self->ext_lead);
    Py_XDECREF(self->timers);
    Py_XDECREF(self->json_head);
    rowmaker_clear_fast(self);
    Py_XDECREF(self->last[0].text);
    Py_XDECREF(self->last[1].text);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
rowmaker_init(RowMaker *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"protocol", "families", "enabled", "addr4", "addr6", "ports",
                             "qmemo", "states", "netid", "slow", "rec_type", "control",
                             "matcher", "proc", "numeric", "hosts", "ext", "ext_options",
                             "ext_numeric", "ext_lead", "timers", "json_head", NULL};
    int protocol, numeric, hosts, ext = 0, ext_options = 0, ext_numeric = 0;
    PyObject *ext_lead = NULL, *timers = NULL, *json_head = NULL;
    long long families;
    PyObject *enabled, *addr4, *addr6, *ports, *qmemo, *states, *netid, *slow, *rec_type,
        *control, *matcher, *proc;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "iLOO!O!O!O!OUOOOOOpp|pppUO!U", kwlist, &protocol, &families,
            &enabled, &PyDict_Type, &addr4, &PyDict_Type, &addr6, &PyDict_Type, &ports,
            &PyDict_Type, &qmemo, &states, &netid, &slow, &rec_type, &control, &matcher, &proc,
            &numeric, &hosts, &ext, &ext_options, &ext_numeric, &ext_lead, &PyTuple_Type,
            &timers, &json_head))
        return -1;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "RowMaker re-initialised from its own feed()");
        return -1;
    }
    if (PyType_Check(rec_type)
            ? !PyType_IsSubtype((PyTypeObject *)rec_type, &PyTuple_Type)
            : !PyCallable_Check(rec_type)) {
        PyErr_SetString(PyExc_TypeError,
                        "rec_type: a subclass of tuple, or a callable that returns one");
        return -1;
    }
    if (ext && (ext_lead == NULL || timers == NULL || protocol != IPPROTO_TCP)) {
        PyErr_SetString(PyExc_ValueError, "ext: TCP only, with ext_lead and timers");
        return -1;
    }
    if (ext) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(timers); i++)
            if (!PyUnicode_Check(PyTuple_GET_ITEM(timers, i))) {
                PyErr_SetString(PyExc_TypeError, "timers: a tuple of str");
                return -1;
            }
    }
    self->ext_mode = ext;
    self->ext_options = ext_options;
    self->ext_numeric = ext_numeric;
    Py_XSETREF(self->ext_lead, ext_lead ? Py_NewRef(ext_lead) : NULL);
    Py_XSETREF(self->timers, timers ? Py_NewRef(timers) : NULL);
    if (json_head != NULL && (ext || proc != Py_None || hosts)) {
        PyErr_SetString(PyExc_ValueError, "json_head: plain rows only (no ext, proc, hosts)");
        return -1;
    }
    Py_XSETREF(self->json_head, json_head ? Py_NewRef(json_head) : NULL);
    if (!PyTuple_Check(states) || PyTuple_GET_SIZE(states) < NSTATES) {
        PyErr_SetString(PyExc_TypeError, "states: a tuple of the 14 State texts");
        return -1;
    }
    PyObject *seq = PySequence_Fast(enabled, "enabled must be a sequence");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > NSLOTS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "enabled: 1 to 10 slots");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long s = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (s < 0 || s >= NSLOTS) {
            Py_DECREF(seq);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "slot out of range");
            return -1;
        }
        self->enabled[i] = (int)s;
    }
    Py_DECREF(seq);
    self->ncols = (int)n;
    self->protocol = protocol;
    self->families = families;
    self->numeric = numeric;
    self->hosts = hosts;
    Py_XSETREF(self->addr4, Py_NewRef(addr4));
    Py_XSETREF(self->addr6, Py_NewRef(addr6));
    Py_XSETREF(self->ports, Py_NewRef(ports));
    Py_XSETREF(self->qmemo, Py_NewRef(qmemo));
    Py_XSETREF(self->states, Py_NewRef(states));
    Py_XSETREF(self->netid, Py_NewRef(netid));
    Py_XSETREF(self->slow, Py_NewRef(slow));
    if (PyType_Check(rec_type)) {
        Py_XSETREF(self->rec_type, Py_NewRef(rec_type));
        Py_CLEAR(self->rec_factory);
    } else {
        Py_CLEAR(self->rec_type);
        Py_XSETREF(self->rec_factory, Py_NewRef(rec_type));
    }
    Py_XSETREF(self->control, Py_NewRef(control));
    Py_XSETREF(self->matcher, matcher == Py_None ? NULL : Py_NewRef(matcher));
    Py_XSETREF(self->proc, proc == Py_None ? NULL : Py_NewRef(proc));
    Py_XSETREF(self->empty, PyUnicode_FromStringAndSize("", 0));
    Py_XSETREF(self->star, PyUnicode_FromString("*"));
    Py_XSETREF(self->any_v6only, PyUnicode_FromString("[::]:"));
    if (self->empty == NULL || self->star == NULL || self->any_v6only == NULL)
        return -1;
    rowmaker_clear_fast(self);
    Py_CLEAR(self->last[0].text);
    Py_CLEAR(self->last[1].text);
    memset(self->last, 0, sizeof(self->last));
    self->decoded = self->made = 0;
    self->last_fast = 0;
    self->last_inode = 0;
    return 0;
}

/* The record tuple (tables/inet/layout.py): the 16 fields, protocol, buffer, span. */
static PyObject *
make_record(RowMaker *self, const struct diag_msg *m, PyObject *buf, Py_ssize_t attrs,
            Py_ssize_t end)
{
    if (self->rec_type == NULL) {
        /* the first record of this maker: the type from the factory, checked as
         * __init__ checks a type given directly */
        PyObject *type = PyObject_CallNoArgs(self->rec_factory);
        if (type == NULL)
            return NULL;
        if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
            Py_DECREF(type);
            PyErr_SetString(PyExc_TypeError, "rec_type(): a subclass of tuple");
            return NULL;
        }
        self->rec_type = type;
    }
    PyObject *t = PyTuple_New(20);
    if (t == NULL)
        return NULL;
    PyObject *v[20];
    v[0] = PyLong_FromLong(m->family);
    v[1] = PyLong_FromLong(m->state);
    v[2] = PyLong_FromLong(m->timer);
    v[3] = PyLong_FromLong(m->retrans);
    v[4] = PyLong_FromLong(m->sport);
    v[5] = PyLong_FromLong(m->dport);
    v[6] = PyBytes_FromStringAndSize((const char *)m->src, 16);
    v[7] = PyBytes_FromStringAndSize((const char *)m->dst, 16);
    v[8] = PyLong_FromUnsignedLong(m->ifindex);
    v[9] = PyLong_FromUnsignedLong(m->cookie_lo);
    v[10] = PyLong_FromUnsignedLong(m->cookie_hi);
    v[11] = PyLong_FromUnsignedLong(m->expires);
    v[12] = PyLong_FromUnsignedLong(m->rqueue);
    v[13] = PyLong_FromUnsignedLong(m->wqueue);
    v[14] = PyLong_FromUnsignedLong(m->uid);
    v[15] = PyLong_FromUnsignedLong(m->inode);
    v[16] = PyLong_FromLong(self->protocol);
    v[17] = Py_NewRef(buf);
    v[18] = PyLong_FromSsize_t(attrs);
    v[19] = PyLong_FromSsize_t(end);
    int bad = 0;
    for (int i = 0; i < 20; i++) {
        if (v[i] == NULL)
            bad = 1;
        PyTuple_SET_ITEM(t, i, v[i]);
    }
    if (bad) {
        Py_DECREF(t);
        return NULL;
    }
    /* tuple.__new__(InetSocket, t) */
    PyObject *targs = PyTuple_Pack(1, t);
    Py_DECREF(t);
    if (targs == NULL)
        return NULL;
    PyObject *rec = PyTuple_Type.tp_new((PyTypeObject *)self->rec_type, targs, NULL);
    Py_DECREF(targs);
    return rec;
}

/* The address cell of inet_addr_print (no scope, no v6only), or NULL with no error
 * when only Python can make it (-r, a family other than the two). New reference. */
static PyObject *
addr_text(RowMaker *self, int family, const uint8_t *data)
{
    char text[INET6_ADDRSTRLEN + 4];
    if (self->hosts)
        return NULL;
    if (self->json_head != NULL) {
        /* the data view's address (render.view.View.address): inet_ntop's text */
        if ((family != AF_INET && family != AF_INET6) ||
            inet_ntop(family, data, text, sizeof(text)) == NULL)
            return NULL;
        return PyUnicode_DecodeLatin1(text, strlen(text), NULL);
    }
    if (family == AF_INET) {
        if (inet_ntop(AF_INET, data, text, INET6_ADDRSTRLEN) == NULL)
            return NULL;
        strcat(text, ":");
        return PyUnicode_DecodeLatin1(text, strlen(text), NULL);
    }
    if (family != AF_INET6)
        return NULL;
    static const uint8_t any[16] = {0};
    if (memcmp(data, any, 16) == 0)
        return PyUnicode_FromString("*:");
    char addr[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, data, addr, sizeof(addr)) == NULL)
        return NULL;
    if (strchr(addr, ':') != NULL)
        snprintf(text, sizeof(text), "[%s]:", addr);
    else
        snprintf(text, sizeof(text), "%s:", addr);
    return PyUnicode_DecodeLatin1(text, strlen(text), NULL);
}

/* The memoised address cell; borrowed reference, NULL without error = go slow. */
static PyObject *
addr_cell(RowMaker *self, int family, const uint8_t *data)
{
    struct addr_last *l = &self->last[family == AF_INET6];
    if (l->text != NULL && l->family == family && memcmp(l->key, data, 16) == 0)
        return l->text;
    PyObject *memo = family == AF_INET6 ? self->addr6 : self->addr4;
    PyObject *key = PyBytes_FromStringAndSize((const char *)data, 16);
    if (key == NULL)
        return NULL;
    PyObject *text = PyDict_GetItemWithError(memo, key);
    if (text == NULL && !PyErr_Occurred()) {
        PyObject *made = addr_text(self, family, data);
        if (made != NULL) {
            int r = PyDict_SetItem(memo, key, made);
            Py_DECREF(made);
            text = r < 0 ? NULL : PyDict_GetItemWithError(memo, key);
        }
    }
    Py_DECREF(key);
    if (text != NULL) {
        memcpy(l->key, data, 16);
        l->family = family;
        Py_XSETREF(l->text, Py_NewRef(text));
    }
    return text;
}

/* The port cell the Python rows memoised (service names), keyed by the port in network
 * order; borrowed reference, NULL without an error when there is none yet. */
static PyObject *
port_cell_dict(RowMaker *self, uint16_t port_be)
{
    PyObject *key = PyLong_FromLong(port_be);
    if (key == NULL)
        return NULL;
    PyObject *text = PyDict_GetItemWithError(self->ports, key);
    Py_DECREF(key);
    return text;
}

/* port_cell_dict through the C array; borrowed reference (the array keeps one) */
static PyObject *
port_cell(RowMaker *self, uint16_t port_be)
{
    if (self->port_fast == NULL) {
        self->port_fast = port_fast_new();
        if (self->port_fast == NULL)
            return PyErr_NoMemory();
    }
    PyObject *text = self->port_fast[port_be];
    if (text != NULL)
        return text;
    if (self->numeric) {
        /* digits need no dictionary: the array is the memo (client ports are many
         * and each is seen once or twice, so a dict of them costs megabytes) */
        unsigned port = ((port_be & 0xFF) << 8) | (port_be >> 8);
        text = port ? PyUnicode_FromFormat("%u", port) : Py_NewRef(self->star);
        if (text != NULL)
            self->port_fast[port_be] = text;
        return text;
    }
    text = port_cell_dict(self, port_be);
    if (text != NULL)
        self->port_fast[port_be] = Py_NewRef(text);
    return text;
}

static PyObject *queue_cell_dict(RowMaker *self, uint32_t n);

/* queue_cell_dict through the C array for small lengths; new reference */
static PyObject *
queue_cell(RowMaker *self, uint32_t n)
{
    if (n >= QUEUE_FAST)
        return queue_cell_dict(self, n);
    PyObject *text = self->queue_fast[n];
    if (text == NULL) {
        text = queue_cell_dict(self, n);
        if (text == NULL)
            return NULL;
        self->queue_fast[n] = text; /* the new reference is the array's */
    }
    return Py_NewRef(text);
}

/* Printer.queue: "%-6d" of the kernel's u32 read as int, memoised up to 65536. */
static PyObject *
queue_cell_dict(RowMaker *self, uint32_t n)
{
    PyObject *key = PyLong_FromUnsignedLong(n);
    if (key == NULL)
        return NULL;
    PyObject *text = PyDict_GetItemWithError(self->qmemo, key);
    if (text == NULL && !PyErr_Occurred()) {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%-6d", (int32_t)n);
        PyObject *made = PyUnicode_DecodeLatin1(buf, len, NULL);
        if (made != NULL) {
            if (PyDict_GET_SIZE(self->qmemo) < 65536) {
                if (PyDict_SetItem(self->qmemo, key, made) < 0) {
                    Py_DECREF(made);
                    Py_DECREF(key);
                    return NULL;
                }
                Py_DECREF(made);
                text = PyDict_GetItemWithError(self->qmemo, key);
            } else {
                /* not kept: hand back a reference the caller owns through `key` */
                Py_DECREF(key);
                return made; /* caller must know it is new: see row_cells */
            }
        }
    }
    Py_DECREF(key);
    if (text != NULL)
        Py_INCREF(text);
    return text;
}

/* ---- the -i/-m text of a TCP row (tables/inet/extinfo.py _bind, tcpinfo.TcpText.text) ---- */

#define TEXT_ROOM 4096
#define TCP_HOT_LEN 240 /* struct tcp_info up to tcpi_rehash, as tcpinfo.TCP_HOT */
#define U64_MAX_ 0xFFFFFFFFFFFFFFFFULL
#define EXACT_ (1ULL << 50)

/* attribute types (linux/inet_diag.h) */
enum {
    A_MEMINFO = 1, A_INFO = 2, A_VEGASINFO = 3, A_CONG = 4, A_DCTCPINFO = 9,
    A_BBRINFO = 16, A_MD5SIG = 18, A_ULP_INFO = 19, A_SKMEMINFO = 7, A_SKV6ONLY = 11,
    A_MAX_SEEN = 32
};

struct text {
    char s[TEXT_ROOM];
    int n;
    int full; /* ran out of room: the caller goes to the Python path */
};

static void
put(struct text *t, const char *fmt, ...)
{
    int room = TEXT_ROOM - t->n;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(t->s + t->n, room, fmt, ap);
    va_end(ap);
    if (w < 0 || w >= room)
        t->full = 1;
    else
        t->n += w;
}

static void
put_str(struct text *t, const char *s, int n)
{
    if (n > TEXT_ROOM - t->n - 1) {
        t->full = 1;
        return;
    }
    memcpy(t->s + t->n, s, n);
    t->n += n;
}

static uint32_t
rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t
rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* decimal digits of v (printf's %llu without printf) */
static void
put_u(struct text *t, uint64_t v)
{
    char d[24];
    int k = 24;
    do {
        d[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_str(t, d + k, 24 - k);
}

/* %d of a u32 read as int (the kernel's field printed with a signed format) */
static void
put_i32(struct text *t, uint32_t v)
{
    if (v & 0x80000000u) {
        put_str(t, "-", 1);
        put_u(t, (uint64_t)(0x100000000ULL - v));
    } else {
        put_u(t, v);
    }
}

#define LIT(t, s) put_str((t), (s), (int)sizeof(s) - 1)

/* %g of a count of microseconds in milliseconds (tcpinfo._ms). Below 1,000,000 the
 * value has at most six significant digits, so %g prints it exactly: the integer part,
 * then the fraction without its trailing zeros; larger values go through printf. */
static void
put_ms(struct text *t, uint32_t usec)
{
    if (usec >= 1000000) {
        put(t, "%g", usec / 1000.0);
        return;
    }
    put_u(t, usec / 1000);
    unsigned frac = usec % 1000;
    if (frac) {
        char d[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                     (char)('0' + frac % 10)};
        int n = 4;
        while (d[n - 1] == '0')
            n--;
        put_str(t, d, n);
    }
}

/* %g of a bbr gain (8.8 fixed point): a whole factor below 1e6 is its digits */
static void
put_gain(struct text *t, uint32_t gain)
{
    if ((gain & 0xFF) == 0 && gain / 256 < 1000000)
        put_u(t, gain / 256);
    else
        put(t, "%g", gain / 256.0);
}

/* printf's %.0f of a non-negative double (round half to even), below 2^52 */
static void
put_f0(struct text *t, double r)
{
    if (!(r >= 0 && r < 4503599627370496.0)) {
        put(t, "%.0f", r);
        return;
    }
    double fl = (double)(uint64_t)r;
    double diff = r - fl;
    uint64_t v = (uint64_t)fl;
    if (diff > 0.5 || (diff == 0.5 && (v & 1)))
        v++;
    put_u(t, v);
}

/* sprint_bw without -n (tcpinfo.sprint_bw) */
static void
put_bw(struct text *t, double bw)
{
    if (bw >= 1e12)
        put(t, "%.3gT", bw / 1e12);
    else if (bw >= 1e9)
        put(t, "%.3gG", bw / 1e9);
    else if (bw >= 1e6)
        put(t, "%.3gM", bw / 1e6);
    else if (bw >= 1e3)
        put(t, "%.3gk", bw / 1e3);
    else
        put(t, "%g", bw);
}

/* a rate of `value` bytes/s in bit/s (tcpinfo._rate) */
static void
put_rate(struct text *t, uint64_t value, int numeric)
{
    if (numeric && value < EXACT_)
        put_u(t, value * 8);
    else if (numeric)
        put(t, "%.0f", (double)value * 8.0);
    else
        put_bw(t, (double)value * 8.0);
}

/* print_ms_timer (extinfo.ms_timer) */
static void
put_ms_timer(struct text *t, uint32_t ms)
{
    unsigned long secs = ms / 1000, msecs = ms % 1000, minutes = secs / 60;
    secs %= 60;
    if (minutes) {
        msecs = 0;
        put(t, "%lumin", minutes);
        if (minutes > 9)
            secs = 0;
    }
    if (secs) {
        if (secs > 9)
            msecs = 0;
        put(t, "%lu%s", secs, msecs ? "." : "sec");
    }
    if (msecs)
        put(t, "%03lu%s", msecs, secs ? "sec" : "ms");
}

/* tcp_stats_print over struct tcp_info at `ti` (tcpinfo.TcpText.text, no vegas, no dctcp) */
static void
put_tcp(struct text *t, int state, const uint8_t *ti, const char *cong, int cong_len,
        const uint8_t *bbr, int show_options, int numeric)
{
    unsigned backoff = ti[4], options = ti[5], wscale = ti[6], applim = ti[7];
    uint32_t rto = rd32(ti + 8), ato = rd32(ti + 12), mss = rd32(ti + 16);
    uint32_t rcv_mss = rd32(ti + 20), unacked = rd32(ti + 24), sacked = rd32(ti + 28);
    uint32_t lost = rd32(ti + 32), retrans = rd32(ti + 36), fackets = rd32(ti + 40);
    uint32_t lastsnd = rd32(ti + 44), lastrcv = rd32(ti + 52), lastack = rd32(ti + 56);
    uint32_t pmtu = rd32(ti + 60), rcv_ssthresh = rd32(ti + 64), rtt = rd32(ti + 68);
    uint32_t rttvar = rd32(ti + 72), ssthresh = rd32(ti + 76), cwnd = rd32(ti + 80);
    uint32_t advmss = rd32(ti + 84), reordering = rd32(ti + 88), rcv_rtt = rd32(ti + 92);
    uint32_t rcv_space = rd32(ti + 96), total_retrans = rd32(ti + 100);
    uint64_t pacing = rd64(ti + 104), max_pacing = rd64(ti + 112);
    uint64_t bytes_acked = rd64(ti + 120), bytes_received = rd64(ti + 128);
    uint32_t segs_out = rd32(ti + 136), segs_in = rd32(ti + 140), notsent = rd32(ti + 144);
    uint32_t min_rtt = rd32(ti + 148), dsegs_in = rd32(ti + 152), dsegs_out = rd32(ti + 156);
    uint64_t delivery_rate = rd64(ti + 160), busy = rd64(ti + 168);
    uint64_t rwnd_limited = rd64(ti + 176), sndbuf_limited = rd64(ti + 184);
    uint32_t delivered = rd32(ti + 192), delivered_ce = rd32(ti + 196);
    uint64_t bytes_sent = rd64(ti + 200), bytes_retrans = rd64(ti + 208);
    uint32_t dsack_dups = rd32(ti + 216), reord_seen = rd32(ti + 220);
    uint32_t rcv_ooopack = rd32(ti + 224), snd_wnd = rd32(ti + 228), rcv_wnd = rd32(ti + 232);
    uint32_t rehash = rd32(ti + 236);

    if (show_options && (options & 0x7B)) {
        if (options & 1)
            put_str(t, " ts", 3);
        if (options & 64)
            put_str(t, " usec_ts", 8);
        if (options & 2)
            put_str(t, " sack", 5);
        if (options & 8)
            put_str(t, " ecn", 4);
        if (options & 16)
            put_str(t, " ecnseen", 8);
        if (options & 32)
            put_str(t, " fastopen", 9);
    }
    if (cong_len) {
        put_str(t, " ", 1);
        put_str(t, cong, cong_len);
    }
#if PY_LITTLE_ENDIAN
    unsigned snd_wscale = wscale & 15, rcv_wscale = wscale >> 4, app_limited = applim & 1;
#else
    unsigned snd_wscale = wscale >> 4, rcv_wscale = wscale & 15, app_limited = applim & 0x80;
#endif
    if (options & 4) {
        LIT(t, " wscale:");
        put_u(t, snd_wscale);
        LIT(t, ",");
        put_u(t, rcv_wscale);
    }
    if (rto && rto != 3000000) {
        LIT(t, " rto:");
        put_ms(t, rto);
    }
    if (backoff) {
        LIT(t, " backoff:");
        put_u(t, backoff);
    }
    if (rtt) {
        LIT(t, " rtt:");
        put_ms(t, rtt);
        LIT(t, "/");
        put_ms(t, rttvar);
    }
    if (ato) {
        LIT(t, " ato:");
        put_ms(t, ato);
    }
    if (mss) {
        LIT(t, " mss:");
        put_i32(t, mss);
    }
    if (pmtu) {
        LIT(t, " pmtu:");
        put_u(t, pmtu);
    }
    if (rcv_mss) {
        LIT(t, " rcvmss:");
        put_i32(t, rcv_mss);
    }
    if (advmss) {
        LIT(t, " advmss:");
        put_i32(t, advmss);
    }
    if (cwnd) {
        LIT(t, " cwnd:");
        put_u(t, cwnd);
    }
    if (ssthresh && ssthresh < 0xFFFF) {
        LIT(t, " ssthresh:");
        put_i32(t, ssthresh);
    }
    if (bytes_sent) {
        LIT(t, " bytes_sent:");
        put_u(t, bytes_sent);
    }
    if (bytes_retrans) {
        LIT(t, " bytes_retrans:");
        put_u(t, bytes_retrans);
    }
    if (bytes_acked) {
        LIT(t, " bytes_acked:");
        put_u(t, bytes_acked);
    }
    if (bytes_received) {
        LIT(t, " bytes_received:");
        put_u(t, bytes_received);
    }
    if (segs_out) {
        LIT(t, " segs_out:");
        put_u(t, segs_out);
    }
    if (segs_in) {
        LIT(t, " segs_in:");
        put_u(t, segs_in);
    }
    if (dsegs_out) {
        LIT(t, " data_segs_out:");
        put_u(t, dsegs_out);
    }
    if (dsegs_in) {
        LIT(t, " data_segs_in:");
        put_u(t, dsegs_in);
    }
    if (bbr != NULL) {
        uint64_t bw = ((uint64_t)rd32(bbr + 4) << 32) | rd32(bbr);
        uint32_t bbr_rtt = rd32(bbr + 8), pacing_gain = rd32(bbr + 12);
        uint32_t cwnd_gain = rd32(bbr + 16);
        put_str(t, " bbr:(bw:", 9);
        put_rate(t, bw, numeric);
        LIT(t, "bps,mrtt:");
        put_ms(t, bbr_rtt);
        if (pacing_gain) {
            LIT(t, ",pacing_gain:");
            put_gain(t, pacing_gain);
        }
        if (cwnd_gain) {
            LIT(t, ",cwnd_gain:");
            put_gain(t, cwnd_gain);
        }
        put_str(t, ")", 1);
    }
    if (rtt && mss && cwnd) {
        double rate = (double)((uint64_t)cwnd * mss) * 8000000.0 / rtt;
        put_str(t, " send ", 6);
        if (numeric)
            put_f0(t, rate);
        else
            put_bw(t, rate);
        put_str(t, "bps", 3);
    }
    if (lastsnd) {
        LIT(t, " lastsnd:");
        put_u(t, lastsnd);
    }
    if (lastrcv) {
        LIT(t, " lastrcv:");
        put_u(t, lastrcv);
    }
    if (lastack) {
        LIT(t, " lastack:");
        put_u(t, lastack);
    }
    if (pacing && pacing != U64_MAX_) {
        put_str(t, " pacing_rate ", 13);
        put_rate(t, pacing, numeric);
        put_str(t, "bps", 3);
        if (max_pacing && max_pacing != U64_MAX_) {
            put_str(t, "/", 1);
            put_rate(t, max_pacing, numeric);
            put_str(t, "bps", 3);
        }
    }
    if (delivery_rate) {
        put_str(t, " delivery_rate ", 15);
        put_rate(t, delivery_rate, numeric);
        put_str(t, "bps", 3);
    }
    if (delivered) {
        LIT(t, " delivered:");
        put_u(t, delivered);
    }
    if (delivered_ce) {
        LIT(t, " delivered_ce:");
        put_u(t, delivered_ce);
    }
    if (app_limited)
        put_str(t, " app_limited", 12);
    if (busy) {
        put(t, " busy:%llums", (unsigned long long)(busy / 1000));
        if (rwnd_limited)
            put(t, " rwnd_limited:%llums(%.1f%%)", (unsigned long long)(rwnd_limited / 1000),
                100.0 * (double)rwnd_limited / (double)busy);
        if (sndbuf_limited)
            put(t, " sndbuf_limited:%llums(%.1f%%)",
                (unsigned long long)(sndbuf_limited / 1000),
                100.0 * (double)sndbuf_limited / (double)busy);
    }
    if (unacked) {
        LIT(t, " unacked:");
        put_u(t, unacked);
    }
    if (retrans || total_retrans) {
        LIT(t, " retrans:");
        put_u(t, retrans);
        LIT(t, "/");
        put_u(t, total_retrans);
    }
    if (lost) {
        LIT(t, " lost:");
        put_u(t, lost);
    }
    if (sacked && state != 10) {
        LIT(t, " sacked:");
        put_u(t, sacked);
    }
    if (dsack_dups) {
        LIT(t, " dsack_dups:");
        put_u(t, dsack_dups);
    }
    if (fackets) {
        LIT(t, " fackets:");
        put_u(t, fackets);
    }
    if (reordering != 3) {
        LIT(t, " reordering:");
        put_i32(t, reordering);
    }
    if (reord_seen) {
        LIT(t, " reord_seen:");
        put_i32(t, reord_seen);
    }
    if (rcv_rtt) {
        LIT(t, " rcv_rtt:");
        put_ms(t, rcv_rtt);
    }
    if (rcv_space) {
        LIT(t, " rcv_space:");
        put_i32(t, rcv_space);
    }
    if (rcv_ssthresh) {
        LIT(t, " rcv_ssthresh:");
        put_u(t, rcv_ssthresh);
    }
    if (notsent) {
        LIT(t, " notsent:");
        put_u(t, notsent);
    }
    if (min_rtt && min_rtt != 0xFFFFFFFF) {
        LIT(t, " minrtt:");
        put_ms(t, min_rtt);
    }
    if (rcv_ooopack) {
        LIT(t, " rcv_ooopack:");
        put_u(t, rcv_ooopack);
    }
    if (snd_wnd) {
        LIT(t, " snd_wnd:");
        put_u(t, snd_wnd);
    }
    if (rcv_wnd) {
        LIT(t, " rcv_wnd:");
        put_u(t, rcv_wnd);
    }
    if (rehash) {
        LIT(t, " rehash:");
        put_u(t, rehash);
    }
}

/*
 * The extra-information cell of one TCP row under -i and/or -m (with or without -o and
 * -O): the fast path of tables/inet/extinfo.py (_bind's row). New reference, or NULL
 * without an error when the row must go through Python: an attribute block with a bad
 * header, a vegas/dctcp/md5/ULP attribute, a structure shorter than read here, the old
 * MEMINFO without SKMEMINFO, a timer name outside the table.
 */
static PyObject *
ext_text(RowMaker *self, const struct diag_msg *m, const uint8_t *data, Py_ssize_t buflen,
         Py_ssize_t pos, Py_ssize_t end)
{
    Py_ssize_t start[A_MAX_SEEN], stop[A_MAX_SEEN];
    for (int i = 0; i < A_MAX_SEEN; i++)
        start[i] = -1;
    while (pos + 4 <= end) {
        uint16_t len, type;
        memcpy(&len, data + pos, 2);
        memcpy(&type, data + pos + 2, 2);
        if (len < 4 || pos + len > end)
            return NULL;
        type &= 0x7FFF; /* ~NLA_F_NESTED, as parse_rtattr_flags(..., NLA_F_NESTED) */
        if (type < A_MAX_SEEN && start[type] < 0) {
            start[type] = pos + 4;
            stop[type] = pos + len;
        }
        pos += (len + 3) & ~3;
    }
    if (start[A_VEGASINFO] >= 0 || start[A_DCTCPINFO] >= 0 || start[A_MD5SIG] >= 0 ||
        start[A_ULP_INFO] >= 0)
        return NULL;
    if (start[A_SKMEMINFO] >= 0 ? stop[A_SKMEMINFO] - start[A_SKMEMINFO] < 36
                                : start[A_MEMINFO] >= 0)
        return NULL;
    if (start[A_INFO] >= 0 && stop[A_INFO] - start[A_INFO] < TCP_HOT_LEN)
        return NULL;
    if (start[A_BBRINFO] >= 0 && stop[A_BBRINFO] - start[A_BBRINFO] < 20)
        return NULL;
    struct text t;
    t.n = 0;
    t.full = 0;
    if (self->ext_options && m->timer) {
        const char *name = "unknown";
        if (m->timer < PyTuple_GET_SIZE(self->timers)) {
            name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(self->timers, m->timer));
            if (name == NULL)
                return NULL; /* with the error set */
        }
        put(&t, " timer:(%s,", name);
        put_ms_timer(&t, m->expires);
        put(&t, ",%u)", (unsigned)m->retrans);
    }
    const char *lead = PyUnicode_AsUTF8(self->ext_lead);
    if (lead == NULL)
        return NULL;
    put_str(&t, lead, (int)strlen(lead));
    if (start[A_SKMEMINFO] >= 0) {
        const uint8_t *k = data + start[A_SKMEMINFO];
        put(&t, " skmem:(r%u,rb%u,t%u,tb%u,f%u,w%u,o%u,bl%u,d%u)", rd32(k), rd32(k + 4),
            rd32(k + 8), rd32(k + 12), rd32(k + 16), rd32(k + 20), rd32(k + 24), rd32(k + 28),
            rd32(k + 32));
    }
    if (start[A_INFO] >= 0) {
        /* strncpy(cong, RTA_DATA, 15): a name without its NUL is read through the buffer */
        const char *cong = "";
        int cong_len = 0;
        if (start[A_CONG] >= 0) {
            Py_ssize_t avail = buflen - start[A_CONG];
            if (avail > 15)
                avail = 15;
            cong = (const char *)data + start[A_CONG];
            const char *nul = avail > 0 ? memchr(cong, 0, avail) : NULL;
            cong_len = avail <= 0 ? 0 : nul ? (int)(nul - cong) : (int)avail;
        }
        put_tcp(&t, m->state, data + start[A_INFO], cong, cong_len,
                start[A_BBRINFO] >= 0 ? data + start[A_BBRINFO] : NULL, self->ext_options,
                self->ext_numeric);
    }
    if (t.full)
        return NULL;
    return PyUnicode_DecodeLatin1(t.s, t.n, NULL);
}

/* ---- --json-lines (render/jsonout.py Writer over tables/inet/data.py inet) -------- */

static int
put_obj(struct text *t, PyObject *str)
{
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(str, &n);
    if (p == NULL)
        return -1;
    put_str(t, p, (int)n);
    return 0;
}

/* The JSON line of a plain inet socket (no attributes, owners, service names or
 * interface: the ten keys of data.inet), or NULL without an error when only Python can
 * make it. The texts it copies (netid, state, addresses) are ASCII without quotes or
 * backslashes, which JSON writes as they are. New reference. */
static PyObject *
json_line(RowMaker *self, const struct diag_msg *m)
{
    int family = m->family;
    PyObject *la = addr_cell(self, family, m->src);
    if (la == NULL)
        return NULL;
    Py_INCREF(la);
    PyObject *ra = addr_cell(self, family, m->dst);
    if (ra == NULL) {
        Py_DECREF(la);
        return NULL;
    }
    Py_INCREF(ra);
    struct text t;
    t.n = 0;
    t.full = 0;
    int bad = put_obj(&t, self->json_head);
    LIT(&t, ",\"netid\":\"");
    bad |= put_obj(&t, self->netid);
    LIT(&t, "\",\"state\":\"");
    bad |= put_obj(&t, PyTuple_GET_ITEM(self->states, m->state));
    LIT(&t, "\",\"recv_q\":");
    put_u(&t, m->rqueue);
    LIT(&t, ",\"send_q\":");
    put_u(&t, m->wqueue);
    LIT(&t, ",\"local_address\":\"");
    bad |= put_obj(&t, la);
    LIT(&t, "\",\"local_port\":");
    put_u(&t, (uint16_t)((m->sport >> 8) | (m->sport << 8)));
    LIT(&t, ",\"peer_address\":\"");
    bad |= put_obj(&t, ra);
    LIT(&t, "\",\"peer_port\":");
    put_u(&t, (uint16_t)((m->dport >> 8) | (m->dport << 8)));
    if (family == AF_INET)
        LIT(&t, ",\"family\":\"inet\",\"protocol\":");
    else
        LIT(&t, ",\"family\":\"inet6\",\"protocol\":");
    put_u(&t, (unsigned)self->protocol);
    LIT(&t, "}\n");
    Py_DECREF(la);
    Py_DECREF(ra);
    if (bad)
        return NULL;
    if (t.full)
        return NULL;
    return PyUnicode_DecodeLatin1(t.s, t.n, NULL);
}

/* INET_DIAG_SKV6ONLY of an IPv6 socket in LISTEN or CLOSE (record.InetSocket.v6only):
 * 1 when the attribute says so, 0 when it is absent or zero, -1 when it is empty or
 * the attribute block has a bad header before it (the row goes through Python, which
 * reads a damaged block its own way). */
static int
skv6only(const uint8_t *data, Py_ssize_t pos, Py_ssize_t end)
{
    while (pos + 4 <= end) {
        uint16_t len, type;
        memcpy(&len, data + pos, 2);
        memcpy(&type, data + pos + 2, 2);
        if (len < 4 || pos + len > end)
            return -1;
        if ((type & 0x7FFF) == A_SKV6ONLY)
            /* empty: ss reads the byte after it (rta_getattr_u8), Python does too */
            return len == 4 ? -1 : data[pos + 4] != 0;
        pos += (len + 3) & ~3;
    }
    return 0;
}

/* One message's row, appended to out; 0 ok, -1 error. */
static int
one_row(RowMaker *self, const struct diag_msg *m, PyObject *buf, Py_ssize_t attrs,
        Py_ssize_t end, PyObject *out)
{
    PyObject *rec = NULL, *row = NULL, *ext = NULL;
    self->decoded++;
    if (self->matcher != NULL) {
        rec = make_record(self, m, buf, attrs, end);
        if (rec == NULL)
            return -1;
        PyObject *r = PyObject_CallOneArg(self->matcher, rec);
        if (r == NULL)
            goto error;
        int keep = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (keep < 0)
            goto error;
        if (!keep) {
            Py_DECREF(rec);
            return 0;
        }
    }
    int state = m->state, family = m->family;
    int slow = m->ifindex != 0 || self->protocol == IPPROTO_SCTP_ || state >= NSTATES ||
               (family != AF_INET && family != AF_INET6);
    /* an IPv6 socket's wildcard address prints as [::] when it is v6only, not as *:
     * ss reads INET_DIAG_SKV6ONLY in any state (the kernel sends it in LISTEN and
     * CLOSE), and it matters only where an address is the wildcard */
    static const uint8_t any6[16] = {0};
    int v6only = 0;
    if (!slow && family == AF_INET6 &&
        (memcmp(m->src, any6, 16) == 0 || memcmp(m->dst, any6, 16) == 0)) {
        v6only = skv6only((const uint8_t *)PyBytes_AS_STRING(buf), attrs, end);
        if (v6only < 0) {
            slow = 1;
            v6only = 0;
        }
    }
    PyObject *cells[NSLOTS];
    memset(cells, 0, sizeof(cells));
    if (self->json_head != NULL) {
        /* --json-lines: a line, not cells; v6only and scopes do not matter to the data */
        if (m->ifindex == 0 && state < NSTATES && self->protocol != IPPROTO_SCTP_ &&
            (family == AF_INET || family == AF_INET6))
            row = json_line(self, m);
        if (row != NULL) {
            self->last_fast = 1;
            goto made;
        }
        if (PyErr_Occurred())
            goto error;
        slow = 1;
    }
    if (!slow && self->ext_mode) {
        ext = ext_text(self, m, (const uint8_t *)PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf),
                       attrs, end);
        if (ext == NULL) {
            if (PyErr_Occurred())
                goto error;
            slow = 1;
        }
    }
    if (!slow) {
        /* (with -r the wildcard is looked up as any address is: Python's) */
        v6only = v6only && !self->hosts;
        cells[4] = v6only && memcmp(m->src, any6, 16) == 0 ? self->any_v6only
                                                           : addr_cell(self, family, m->src);
        if (cells[4] != NULL)
            cells[6] = v6only && memcmp(m->dst, any6, 16) == 0
                           ? self->any_v6only
                           : addr_cell(self, family, m->dst);
        cells[5] = cells[6] ? port_cell(self, m->sport) : NULL;
        cells[7] = cells[5] ? port_cell(self, m->dport) : NULL;
        if (PyErr_Occurred())
            goto error;
        if (cells[7] == NULL) {
            slow = 1;
            Py_CLEAR(ext);
        } else {
            Py_INCREF(cells[4]);
            Py_INCREF(cells[5]);
            Py_INCREF(cells[6]);
            Py_INCREF(cells[7]);
            cells[2] = queue_cell(self, m->rqueue);
            cells[3] = cells[2] ? queue_cell(self, m->wqueue) : NULL;
            if (cells[3] == NULL)
                goto error_cells;
            cells[0] = Py_NewRef(self->netid);
            cells[1] = Py_NewRef(PyTuple_GET_ITEM(self->states, state));
            if (self->proc != NULL) {
                PyObject *ino = PyLong_FromUnsignedLong(m->inode);
                if (ino == NULL)
                    goto error_cells;
                cells[8] = PyObject_CallOneArg(self->proc, ino);
                Py_DECREF(ino);
                if (cells[8] == NULL)
                    goto error_cells;
            } else {
                cells[8] = Py_NewRef(self->empty);
            }
            cells[9] = ext != NULL ? ext : Py_NewRef(self->empty);
            ext = NULL;
            row = PyTuple_New(self->ncols);
            if (row == NULL)
                goto error_cells;
            for (int j = 0; j < self->ncols; j++) {
                PyObject *c = cells[self->enabled[j]];
                Py_INCREF(c);
                PyTuple_SET_ITEM(row, j, c);
            }
            for (int j = 0; j < NSLOTS; j++)
                Py_DECREF(cells[j]);
            self->last_fast = 1;
        }
    }
    if (slow) {
        if (rec == NULL) {
            rec = make_record(self, m, buf, attrs, end);
            if (rec == NULL)
                return -1;
        }
        row = PyObject_CallOneArg(self->slow, rec);
        if (row == NULL)
            goto error;
        self->last_fast = 0;
    }
made:
    Py_XDECREF(rec);
    self->last_inode = m->inode;
    self->made++;
    int r = PyList_Append(out, row);
    Py_DECREF(row);
    return r;
error_cells:
    for (int j = 0; j < NSLOTS; j++)
        Py_XDECREF(cells[j]);
error:
    Py_XDECREF(ext);
    Py_XDECREF(rec);
    return -1;
}

static int
families_has(long long families, int family)
{
    if (families < 0)
        return 1; /* Python's -1 >> n is -1: every family */
    if (family >= 63)
        return 0;
    return (int)((families >> family) & 1);
}

/*
 * feed(buf, seq, out) -> flags: walk one datagram (port of decode_inet_dump's loop),
 * append a row per matching message to the list out. seq < 0 is a recorded dump
 * (decode_inet over netlink.replay): every message is data, up to len(buf).
 * Returns bit 0 set at NLMSG_DONE, bit 1 when NLM_F_DUMP_INTR was seen. Exceptions of
 * the control callback (NLMSG_ERROR) propagate; the rows made before stay in out.
 */
static PyObject *
rowmaker_feed_datagram(RowMaker *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "feed(buf: bytes, seq: int, out: list)");
        return NULL;
    }
    PyObject *buf = args[0], *out = args[2];
    long long seq = PyLong_AsLongLong(args[1]);
    if (seq == -1 && PyErr_Occurred())
        return NULL;
    int replay = seq < 0;
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(buf);
    Py_ssize_t end = PyBytes_GET_SIZE(buf), off = 0;
    long flags_out = 0;
    while (off + NLMSG_HDRLEN_ <= end) {
        uint32_t length, mseq;
        uint16_t mtype, flags;
        memcpy(&length, data + off, 4);
        memcpy(&mtype, data + off + 4, 2);
        memcpy(&flags, data + off + 6, 2);
        memcpy(&mseq, data + off + 8, 4);
        if (length < NLMSG_HDRLEN_ || (Py_ssize_t)length > end - off)
            break;
        if (replay || (long long)mseq == seq) {
            if (!replay && (flags & NLM_F_DUMP_INTR_))
                flags_out |= 2;
            if (!replay && mtype < NLMSG_MIN_TYPE_) {
                PyObject *r = PyObject_CallFunction(self->control, "iOnn", (int)mtype, buf,
                                                    off, (Py_ssize_t)length);
                if (r == NULL)
                    return NULL;
                int done = PyObject_IsTrue(r);
                Py_DECREF(r);
                if (done < 0)
                    return NULL;
                if (done)
                    return PyLong_FromLong(flags_out | 1);
            } else if (length >= NLMSG_HDRLEN_ + DIAG_MSG_LEN &&
                       families_has(self->families, data[off + NLMSG_HDRLEN_])) {
                struct diag_msg m;
                memcpy(&m, data + off + NLMSG_HDRLEN_, DIAG_MSG_LEN);
                if (one_row(self, &m, buf, off + NLMSG_HDRLEN_ + DIAG_MSG_LEN,
                            off + (Py_ssize_t)length, out) < 0)
                    return NULL;
            }
        }
        off += ((Py_ssize_t)length + 3) & ~(Py_ssize_t)3;
    }
    return PyLong_FromLong(flags_out);
}

static PyObject *
rowmaker_get_stats(RowMaker *self, void *Py_UNUSED(closure))
{
    return Py_BuildValue("nnkO", self->decoded, self->made, self->last_inode,
                         self->last_fast ? Py_True : Py_False);
}

/* feed() itself: refused before __init__ and from its own callbacks (the filter, the
 * Python row, control), which run while the datagram and the memos are in use */
static PyObject *
rowmaker_feed(RowMaker *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->states == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RowMaker.__init__ was not called");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "RowMaker.feed called from its own callback");
        return NULL;
    }
    self->busy = 1;
    PyObject *r = rowmaker_feed_datagram(self, args, nargs);
    self->busy = 0;
    return r;
}

static PyMethodDef rowmaker_methods[] = {
    {"feed", (PyCFunction)(void (*)(void))rowmaker_feed, METH_FASTCALL,
     "feed(buf, seq, out) -> flags: the rows of one datagram appended to out."},
    {NULL}};

static PyGetSetDef rowmaker_getset[] = {
    {"stats", (getter)rowmaker_get_stats, NULL,
     "(records decoded, rows made, last row's inode, last row made here)", NULL},
    {NULL}};

static PyTypeObject RowMakerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sockscope._core.RowMaker",
    .tp_doc = "The rows of a plain inet listing (see tables.inet.row.InetRows.row_fn).",
    .tp_basicsize = sizeof(RowMaker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)rowmaker_init,
    .tp_dealloc = (destructor)rowmaker_dealloc,
    .tp_methods = rowmaker_methods,
    .tp_getset = rowmaker_getset,
};

/* ------------------------------------------------------------------------------------ */

/* Does the datagram end dump seq (NLMSG_DONE or NLMSG_ERROR of seq)? */
static int
ends_dump(const uint8_t *data, Py_ssize_t end, long long seq)
{
    Py_ssize_t off = 0;
    while (off + NLMSG_HDRLEN_ <= end) {
        uint32_t length, mseq;
        uint16_t mtype;
        memcpy(&length, data + off, 4);
        memcpy(&mtype, data + off + 4, 2);
        memcpy(&mseq, data + off + 8, 4);
        if (length < NLMSG_HDRLEN_ || (Py_ssize_t)length > end - off)
            break;
        if ((long long)mseq == seq && (mtype == NLMSG_DONE_ || mtype == 2))
            return 1;
        off += ((Py_ssize_t)length + 3) & ~(Py_ssize_t)3;
    }
    return 0;
}

/* dump_end(buf, seq) -> bool: does the datagram end dump seq (NLMSG_DONE or an error)?
 * For receive threads, which stop at the end without decoding anything. */
static PyObject *
core_dump_end(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "dump_end(buf: bytes, seq: int)");
        return NULL;
    }
    long long seq = PyLong_AsLongLong(args[1]);
    if (seq == -1 && PyErr_Occurred())
        return NULL;
    if (ends_dump((const uint8_t *)PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), seq))
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* ------------------------------------------------------------------------------------ */
/* Prefetch: a small dump received away from the interpreter                            */
/* ------------------------------------------------------------------------------------ */

/* Prefetch(request, seq, limit=PREFETCH_MAX): open a sock_diag socket as kernel.netlink.open_diag does and
 * start a thread that sends the request and receives the dump's datagrams until its end.
 *
 * Why: the kernel walks its whole TCP hash for every dump, about a millisecond on an
 * idle host even for a few sockets, ten and more where other namespaces hold many;
 * the walk happens inside send and recv, in the caller's time. Started before the
 * listing's modules are imported, it runs on another CPU meanwhile. The thread is not a
 * Python thread and never takes the GIL: a Python receive thread had to take it back
 * after every recv from a main thread busy importing (up to the 5 ms switch interval
 * on a loaded host), which cost more than the overlap won.
 *
 * take() -> (datagrams, errno, fd): waits for the thread (GIL released) and hands over
 * what it received, in order. errno is that of a failed send or recv (0: none; the
 * socket is then closed, as the Python receiver closes it). fd is -1 when the dump
 * ended or failed, else the still open socket, whose remaining datagrams the caller
 * receives itself: the thread stops after PREFETCH_MAX datagrams (``limit``, fewer) (the table was small
 * when it was chosen, but sockets may have been opened since) and at a datagram it does
 * not expect (empty), leaving it to the reference loop. */

#define PREFETCH_MAX 128
#define PREFETCH_ROOM 32768

/* the Prefetch thread's stack (bytes); far more than its calls need */
#define PREFETCH_STACK (256 * 1024)

/* What the thread works on. Apart from the object: an object dropped while its thread
 * still waits (a dump that never ends: its reference loop would wait too) leaves the
 * state to the thread, which frees it when it returns. */
typedef struct {
    pthread_mutex_t lock; /* guards finished and abandoned */
    int finished;         /* the thread has returned from its work */
    int abandoned;        /* the object is gone: the thread frees this */
    int fd;               /* owned until take() hands it over or closes it */
    long long seq;
    size_t limit; /* datagrams at most (PREFETCH_MAX; fewer in tests) */
    char *request;
    size_t request_len;
    char *bufs[PREFETCH_MAX];
    size_t lens[PREFETCH_MAX];
    size_t n;
    int err;
    int ended;
} PrefetchState;

typedef struct {
    PyObject_HEAD
    PrefetchState *st;
    pthread_t thread;
    int running; /* started and neither joined nor detached */
    long long seq;
} PrefetchObject;

static void
prefetch_state_free(PrefetchState *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->bufs[i]);
    if (st->fd >= 0)
        close(st->fd);
    free(st->request);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static void
prefetch_receive(PrefetchState *p)
{
    ssize_t sent;
    do
        sent = send(p->fd, p->request, p->request_len, 0);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        p->err = errno;
        return;
    }
    /* received into a 32 KiB buffer as netlink.datagrams does: the kernel sizes its
     * next dump datagram by the last buffer offered (a peek's zero would keep them at
     * a page), and copied out */
    size_t room = PREFETCH_ROOM;
    char *scratch = malloc(room);
    if (scratch == NULL)
        return;
    while (p->n < p->limit) {
        /* the next datagram's length, nothing copied */
        ssize_t need = recv(p->fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
        if (need < 0 && errno == EINTR)
            continue;
        if (need < 0) {
            p->err = errno;
            break;
        }
        if (need == 0)
            break; /* not a dump datagram: the reference loop takes over */
        if ((size_t)need > room) {
            char *more = malloc((size_t)need);
            if (more == NULL)
                break; /* the caller receives the rest with its own buffers */
            free(scratch);
            scratch = more;
            room = (size_t)need;
        }
        ssize_t got;
        do
            got = recv(p->fd, scratch, room, 0);
        while (got < 0 && errno == EINTR);
        if (got <= 0) {
            if (got < 0)
                p->err = errno;
            break;
        }
        char *buf = malloc((size_t)got);
        if (buf == NULL) {
            p->err = ENOMEM; /* a datagram lost: the dump cannot go on */
            break;
        }
        memcpy(buf, scratch, (size_t)got);
        p->bufs[p->n] = buf;
        p->lens[p->n] = (size_t)got;
        p->n++;
        if (ends_dump((const uint8_t *)buf, got, p->seq)) {
            p->ended = 1;
            break;
        }
    }
    free(scratch);
}

static void *
prefetch_run(void *arg)
{
    PrefetchState *st = arg;
    prefetch_receive(st);
    pthread_mutex_lock(&st->lock);
    st->finished = 1;
    int abandoned = st->abandoned;
    pthread_mutex_unlock(&st->lock);
    if (abandoned)
        prefetch_state_free(st);
    return NULL;
}

static int
open_diag_fd(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    int snd = 32768, rcv = 1 << 20, one = 1;
    struct sockaddr_nl local;
    memset(&local, 0, sizeof(local));
    local.nl_family = AF_NETLINK;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) < 0 ||
        setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int
prefetch_init(PrefetchObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"request", "seq", "limit", NULL};
    Py_buffer request;
    long long seq;
    int limit = PREFETCH_MAX;
    if (self->st != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Prefetch: already started");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*L|i", kwlist, &request, &seq, &limit))
        return -1;
    if (limit < 1 || limit > PREFETCH_MAX) {
        PyBuffer_Release(&request);
        PyErr_SetString(PyExc_ValueError, "Prefetch: limit out of range");
        return -1;
    }
    PrefetchState *st = calloc(1, sizeof(PrefetchState));
    char *copy = malloc(request.len ? (size_t)request.len : 1);
    if (st == NULL || copy == NULL) {
        free(st);
        free(copy);
        PyBuffer_Release(&request);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, request.buf, (size_t)request.len);
    st->request = copy;
    st->request_len = (size_t)request.len;
    PyBuffer_Release(&request);
    st->seq = seq;
    st->limit = (size_t)limit;
    pthread_mutex_init(&st->lock, NULL);
    st->fd = open_diag_fd();
    if (st->fd < 0) {
        int saved = errno;
        prefetch_state_free(st);
        errno = saved;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    /* the thread takes no signal: they stay with the interpreter's threads */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    /* a small stack: the thread only calls send, recv and malloc (its buffers are on the
     * heap), and the default (RLIMIT_STACK, 8 MiB) is address space reserved against
     * RLIMIT_AS: under `ulimit -v` that alone could refuse the thread */
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        (void)pthread_attr_setstacksize(&attr, PREFETCH_STACK);
        rc = pthread_create(&self->thread, &attr, prefetch_run, st);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        prefetch_state_free(st);
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->st = st;
    self->running = 1;
    self->seq = seq;
    return 0;
}

/* Wait for the thread (GIL released) in slices, running the signal handlers between
 * them: a dump the kernel never ends (a request it ignores) keeps the thread in recv,
 * and Ctrl-C must still end the wait, as it ends the main thread's own recv. -1 with
 * the handler's exception (KeyboardInterrupt); the thread then stays with the object,
 * whose dealloc leaves the state to it. */
static int
prefetch_join(PrefetchObject *self)
{
    while (self->running) {
        int rc;
        Py_BEGIN_ALLOW_THREADS
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until); /* (the clock pthread_timedjoin_np reads) */
        until.tv_nsec += 50 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec += 1;
            until.tv_nsec -= 1000000000L;
        }
        rc = pthread_timedjoin_np(self->thread, NULL, &until);
        Py_END_ALLOW_THREADS
        if (rc == 0)
            self->running = 0;
        else if (rc != ETIMEDOUT && rc != EINTR) {
            errno = rc;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        else if (PyErr_CheckSignals() < 0)
            return -1;
    }
    return 0;
}

static PyObject *
prefetch_take(PrefetchObject *self, PyObject *Py_UNUSED(ignored))
{
    PrefetchState *st = self->st;
    if (st == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Prefetch: not started");
        return NULL;
    }
    if (prefetch_join(self) < 0)
        return NULL;
    PyObject *list = PyList_New((Py_ssize_t)st->n);
    for (size_t i = 0; list != NULL && i < st->n; i++) {
        PyObject *b = PyBytes_FromStringAndSize(st->bufs[i], (Py_ssize_t)st->lens[i]);
        if (b == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, b);
    }
    for (size_t i = 0; i < st->n; i++)
        free(st->bufs[i]);
    st->n = 0;
    if (list == NULL)
        return NULL; /* the socket stays owned: closed with the object */
    int fd = st->fd, err = st->err;
    if (err || st->ended) {
        close(fd);
        fd = -1;
    }
    st->fd = -1;
    st->err = 0;
    st->ended = 1; /* taken: a second take() hands over nothing */
    PyObject *out = Py_BuildValue("(Nii)", list, err, fd);
    if (out == NULL && fd >= 0)
        close(fd);
    return out;
}

static void
prefetch_dealloc(PrefetchObject *self)
{
    PrefetchState *st = self->st;
    if (st != NULL) {
        int mine = 1;
        if (self->running) {
            pthread_mutex_lock(&st->lock);
            if (st->finished) {
                pthread_mutex_unlock(&st->lock);
                pthread_join(self->thread, NULL); /* returned already: no wait */
            } else {
                st->abandoned = 1; /* the thread frees the state when it returns */
                pthread_mutex_unlock(&st->lock);
                pthread_detach(self->thread);
                mine = 0;
            }
        }
        if (mine)
            prefetch_state_free(st);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef prefetch_methods[] = {
    {"take", (PyCFunction)prefetch_take, METH_NOARGS,
     "take() -> (datagrams, errno, fd): wait for the dump and hand it over (fd: -1, or "
     "the open socket whose remaining datagrams the caller receives)."},
    {NULL}};

static PyMemberDef prefetch_members[] = {
    {"seq", T_LONGLONG, offsetof(PrefetchObject, seq), READONLY, "the request's nlmsg_seq"},
    {NULL}};

static PyTypeObject PrefetchType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sockscope._core.Prefetch",
    .tp_basicsize = sizeof(PrefetchObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Prefetch(request, seq): a small sock_diag dump received by a thread of its own.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)prefetch_init,
    .tp_dealloc = (destructor)prefetch_dealloc,
    .tp_methods = prefetch_methods,
    .tp_members = prefetch_members,
};

/* ------------------------------------------------------------------------------------ */
/* --watch: a snapshot's table of sock_diag replies, matched in step with the last one   */
/* ------------------------------------------------------------------------------------ */

/* DiagTable(old, key_off, min_len, sig_start, sig_stop): the drop-in for
 * sockscope.ops.watch.Table (the pure-Python reference, which defines the behaviour).
 *
 * A snapshot at 100,000 sockets is 12 MB of replies in ~400 datagrams, and between two
 * snapshots almost every reply is byte for byte the same. A dict of cookie -> bytes
 * costs a key object, a hash and three cache misses per socket (most of --watch's user
 * time); here the datagrams are kept as they came and indexed (cookie, place, length),
 * and since the kernel walks its hash tables in the same order every time, each reply is
 * compared with the last snapshot's reply at the same place (a cursor): same cookie and
 * same bytes, and nothing is made. Only where the order differs (a socket came, went or
 * moved in the table) is the cookie looked up, in a hash of the last snapshot built the
 * first time it is needed; only changed, new and gone sockets become Python objects.
 *
 * As a dict would, a cookie listed twice in one dump (a socket that moved while the
 * kernel walked) keeps its first place and its last message. The key is the 8 bytes at
 * key_off (the cookie); replies shorter than min_len are skipped. sig_start/sig_stop
 * (-1: none) name the bytes that matter: a reply that differs from its last one only
 * outside them (a timer, a queue: not reported without -i) is not listed as changed. */

#define DT_DEAD 1   /* popped (its destruction event came first): no longer listed */
#define DT_REPORT 2 /* new, or differs from its last message within sig_start..sig_stop */

typedef struct {
    uint64_t cookie;
    const char *msg; /* inside one of the table's datagrams */
    uint32_t len;
    int32_t prev; /* the last snapshot's entry of the same cookie, or -1 */
    uint32_t flags;
} DiagEntry;

/* cookie -> entry index: open addressing, linear probing, slots hold index + 1 */
typedef struct {
    uint32_t *slots;
    size_t mask; /* the number of slots - 1 (a power of two); 0: no slots */
    size_t used;
} CookieIndex;

typedef struct DiagTable {
    PyObject_HEAD
    PyObject *bufs; /* list of the datagrams (bytes) the entries point into */
    DiagEntry *entries;
    Py_ssize_t n, cap, live;
    struct DiagTable *old; /* the last snapshot while this one is fed, else NULL */
    int32_t *old_match;    /* per entry of old: the entry here of its cookie, or -1 */
    Py_ssize_t cursor;     /* the entry of old the next reply is expected to match */
    CookieIndex fresh;     /* while fed: the cookies that old does not have */
    CookieIndex index;     /* every entry (lookups), built when first needed */
    Py_ssize_t indexed;    /* how many entries index covers */
    Py_ssize_t key_off, min_len, sig_start, sig_stop;
    int finished;
} DiagTable;

static PyTypeObject DiagTableType;

static inline size_t
cookie_slot(uint64_t cookie, size_t mask)
{
    /* Fibonacci hashing: cookies come from a counter, mostly consecutive */
    return (size_t)((cookie * 0x9E3779B97F4A7C15ULL) >> 32) & mask;
}

static void
index_free(CookieIndex *ix)
{
    PyMem_Free(ix->slots);
    ix->slots = NULL;
    ix->mask = 0;
    ix->used = 0;
}

/* An empty index with room for n entries at most half full. */
static int
index_alloc(CookieIndex *ix, size_t n)
{
    size_t size = 16;
    while (size < 2 * n)
        size <<= 1;
    uint32_t *slots = PyMem_Calloc(size, sizeof(uint32_t));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    index_free(ix);
    ix->slots = slots;
    ix->mask = size - 1;
    return 0;
}

static void
index_put(CookieIndex *ix, const DiagEntry *entries, Py_ssize_t at)
{
    size_t s = cookie_slot(entries[at].cookie, ix->mask);
    while (ix->slots[s] != 0)
        s = (s + 1) & ix->mask;
    ix->slots[s] = (uint32_t)at + 1;
    ix->used++;
}

/* The entry of cookie in ix, or -1 (dead entries included: the caller checks). */
static Py_ssize_t
index_get(const CookieIndex *ix, const DiagEntry *entries, uint64_t cookie)
{
    if (ix->slots == NULL)
        return -1;
    size_t s = cookie_slot(cookie, ix->mask);
    for (uint32_t v; (v = ix->slots[s]) != 0; s = (s + 1) & ix->mask)
        if (entries[v - 1].cookie == cookie)
            return (Py_ssize_t)v - 1;
    return -1;
}

/* The live entry of cookie in t, or -1; -2 with an exception (no memory for the index). */
static Py_ssize_t
dt_find(DiagTable *t, uint64_t cookie)
{
    if (t->indexed != t->n) {
        if (index_alloc(&t->index, (size_t)t->n) < 0)
            return -2;
        for (Py_ssize_t i = 0; i < t->n; i++)
            index_put(&t->index, t->entries, i);
        t->indexed = t->n;
    }
    Py_ssize_t at = index_get(&t->index, t->entries, cookie);
    return at >= 0 && !(t->entries[at].flags & DT_DEAD) ? at : -1;
}

/* Whether entry e is to be reported: new, or changed within the significant bytes. */
static uint32_t
dt_report(const DiagTable *t, const DiagEntry *e)
{
    if (e->prev < 0)
        return DT_REPORT;
    const DiagEntry *o = &t->old->entries[e->prev];
    if (o->len == e->len && memcmp(o->msg, e->msg, e->len) == 0)
        return 0;
    if (t->sig_start < 0)
        return DT_REPORT;
    /* both replies are at least min_len long, and the bytes lie within min_len */
    return memcmp(o->msg + t->sig_start, e->msg + t->sig_start,
                  (size_t)(t->sig_stop - t->sig_start)) != 0
               ? DT_REPORT
               : 0;
}

static int
dt_append(DiagTable *t, uint64_t cookie, const char *msg, uint32_t len, Py_ssize_t prev)
{
    if (t->n == t->cap) {
        if (t->n >= INT32_MAX - 1) {
            PyErr_SetString(PyExc_OverflowError, "DiagTable: too many replies");
            return -1;
        }
        Py_ssize_t cap = t->cap < 1024 ? 1024 : t->cap * 2;
        DiagEntry *more = PyMem_Realloc(t->entries, (size_t)cap * sizeof(DiagEntry));
        if (more == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->entries = more;
        t->cap = cap;
    }
    DiagEntry *e = &t->entries[t->n++];
    e->cookie = cookie;
    e->msg = msg;
    e->len = len;
    e->prev = (int32_t)prev;
    e->flags = 0;
    e->flags = dt_report(t, e);
    t->live++;
    return 0;
}

/* One reply: matched with old at the cursor, else looked up, else new. */
static int
dt_put(DiagTable *t, uint64_t cookie, const char *msg, uint32_t len)
{
    Py_ssize_t k = -1, mine = -1;
    DiagTable *old = t->old;
    if (old != NULL) {
        Py_ssize_t j = t->cursor;
        while (j < old->n && (old->entries[j].flags & DT_DEAD))
            j++;
        if (j < old->n && old->entries[j].cookie == cookie)
            k = j;
        else if ((k = dt_find(old, cookie)) == -2)
            return -1;
        if (k >= 0) {
            t->cursor = k + 1;
            mine = t->old_match[k];
            if (mine < 0) {
                t->old_match[k] = (int32_t)t->n;
                return dt_append(t, cookie, msg, len, k);
            }
        }
    }
    if (k < 0 && (mine = index_get(&t->fresh, t->entries, cookie)) < 0) {
        if (2 * (t->fresh.used + 1) > t->fresh.mask) {
            /* grow: the fresh entries again, into twice the room */
            CookieIndex bigger = {NULL, 0, 0};
            if (index_alloc(&bigger, 2 * t->fresh.used + 8) < 0)
                return -1;
            for (size_t s = 0; t->fresh.slots != NULL && s <= t->fresh.mask; s++)
                if (t->fresh.slots[s] != 0)
                    index_put(&bigger, t->entries, (Py_ssize_t)t->fresh.slots[s] - 1);
            index_free(&t->fresh);
            t->fresh = bigger;
        }
        if (dt_append(t, cookie, msg, len, -1) < 0)
            return -1;
        index_put(&t->fresh, t->entries, t->n - 1);
        return 0;
    }
    /* listed twice in this dump: its first place, its last message */
    DiagEntry *e = &t->entries[mine];
    e->msg = msg;
    e->len = len;
    e->flags = (e->flags & DT_DEAD) | dt_report(t, e);
    return 0;
}

static int
diagtable_init(DiagTable *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"old", "key_off", "min_len", "sig_start", "sig_stop", NULL};
    PyObject *old;
    Py_ssize_t key_off, min_len, sig_start = -1, sig_stop = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Onn|nn", kwlist, &old, &key_off, &min_len,
                                     &sig_start, &sig_stop))
        return -1;
    if (self->bufs != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "DiagTable: already initialised");
        return -1;
    }
    if (old != Py_None && !PyObject_TypeCheck(old, &DiagTableType)) {
        PyErr_SetString(PyExc_TypeError, "DiagTable: old must be a DiagTable or None");
        return -1;
    }
    if (key_off < 0 || min_len < key_off + 8) {
        PyErr_SetString(PyExc_ValueError, "DiagTable: the key must lie within min_len");
        return -1;
    }
    if (min_len < NLMSG_HDRLEN_)
        min_len = NLMSG_HDRLEN_;
    if (sig_start >= 0 && (sig_stop <= sig_start || sig_stop > min_len)) {
        PyErr_SetString(PyExc_ValueError,
                        "DiagTable: the significant bytes must lie within min_len");
        return -1;
    }
    self->bufs = PyList_New(0);
    if (self->bufs == NULL)
        return -1;
    if (old != Py_None) {
        DiagTable *o = (DiagTable *)old;
        self->old_match = PyMem_Malloc(((size_t)o->n + 1) * sizeof(int32_t));
        if (self->old_match == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memset(self->old_match, 0xFF, ((size_t)o->n + 1) * sizeof(int32_t)); /* -1 */
        Py_INCREF(old);
        self->old = o;
    }
    self->key_off = key_off;
    self->min_len = min_len;
    self->sig_start = sig_start < 0 ? -1 : sig_start;
    self->sig_stop = sig_stop;
    return 0;
}

static void
diagtable_release_old(DiagTable *self)
{
    PyMem_Free(self->old_match);
    self->old_match = NULL;
    index_free(&self->fresh);
    Py_CLEAR(self->old);
}

static void
diagtable_dealloc(DiagTable *self)
{
    diagtable_release_old(self);
    index_free(&self->index);
    PyMem_Free(self->entries);
    Py_XDECREF(self->bufs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
diagtable_ready(DiagTable *self)
{
    if (self->bufs == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "DiagTable: not initialised");
        return -1;
    }
    return 0;
}

/* feed(buf, off=0) -> the offset of the first control message (type < 16: DONE, ERROR,
 * ...) at or after off, or len(buf) if none: the caller handles it and feeds the rest. A
 * malformed header ends the datagram, as the Python walk does. */
static PyObject *
diagtable_feed(DiagTable *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (diagtable_ready(self) < 0)
        return NULL;
    if (nargs < 1 || nargs > 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "feed(buf: bytes, off: int = 0)");
        return NULL;
    }
    if (self->finished) {
        PyErr_SetString(PyExc_RuntimeError, "DiagTable: fed after finish()");
        return NULL;
    }
    Py_ssize_t off = 0;
    if (nargs == 2 && (off = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred())
        return NULL;
    const char *data = PyBytes_AS_STRING(args[0]);
    Py_ssize_t end = PyBytes_GET_SIZE(args[0]);
    if (off < 0)
        off = 0;
    /* kept before any entry points into it */
    if (off + NLMSG_HDRLEN_ <= end && PyList_Append(self->bufs, args[0]) < 0)
        return NULL;
    while (off + NLMSG_HDRLEN_ <= end) {
        uint32_t length;
        uint16_t mtype;
        memcpy(&length, data + off, 4);
        memcpy(&mtype, data + off + 4, 2);
        if (length < NLMSG_HDRLEN_ || (Py_ssize_t)length > end - off)
            break;
        if (mtype < NLMSG_MIN_TYPE_)
            return PyLong_FromSsize_t(off);
        if ((Py_ssize_t)length >= self->min_len) {
            uint64_t cookie;
            memcpy(&cookie, data + off + self->key_off, 8);
            if (dt_put(self, cookie, data + off, length) < 0)
                return NULL;
        }
        off += ((Py_ssize_t)length + 3) & ~(Py_ssize_t)3;
    }
    return PyLong_FromSsize_t(end);
}

static PyObject *
dt_key(const DiagEntry *e)
{
    return PyBytes_FromStringAndSize((const char *)&e->cookie, 8);
}

static PyObject *
dt_msg(const DiagEntry *e)
{
    return PyBytes_FromStringAndSize(e->msg, e->len);
}

/* finish() -> (changed, gone): changed [(cookie, message, the last snapshot's message or
 * None)] in this dump's order, new sockets and those whose significant bytes moved;
 * gone [(cookie, last message)] in the last dump's order, the sockets it listed that this
 * one does not. Lets the last snapshot go. */
static PyObject *
diagtable_finish(DiagTable *self, PyObject *Py_UNUSED(ignored))
{
    if (diagtable_ready(self) < 0)
        return NULL;
    if (self->finished) {
        PyErr_SetString(PyExc_RuntimeError, "DiagTable: finish() called twice");
        return NULL;
    }
    PyObject *changed = PyList_New(0), *gone = PyList_New(0), *out = NULL;
    if (changed == NULL || gone == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        const DiagEntry *e = &self->entries[i];
        if (!(e->flags & DT_REPORT))
            continue;
        PyObject *item;
        if (e->prev < 0)
            item = Py_BuildValue("(NNO)", dt_key(e), dt_msg(e), Py_None);
        else
            item = Py_BuildValue("(NNN)", dt_key(e), dt_msg(e),
                                 dt_msg(&self->old->entries[e->prev]));
        if (item == NULL || PyList_Append(changed, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    DiagTable *old = self->old;
    for (Py_ssize_t k = 0; old != NULL && k < old->n; k++) {
        const DiagEntry *o = &old->entries[k];
        if ((o->flags & DT_DEAD) || self->old_match[k] >= 0)
            continue;
        PyObject *item = Py_BuildValue("(NN)", dt_key(o), dt_msg(o));
        if (item == NULL || PyList_Append(gone, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    out = PyTuple_Pack(2, changed, gone);
    if (out != NULL) {
        self->finished = 1;
        diagtable_release_old(self);
    }
done:
    Py_XDECREF(changed);
    Py_XDECREF(gone);
    return out;
}

/* The live entry of a key (8 bytes), -1 if none (or not a key), -2 with an exception. */
static Py_ssize_t
dt_lookup(DiagTable *self, PyObject *key)
{
    if (diagtable_ready(self) < 0)
        return -2;
    if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) != 8)
        return -1;
    uint64_t cookie;
    memcpy(&cookie, PyBytes_AS_STRING(key), 8);
    return dt_find(self, cookie);
}

static int
diagtable_contains(DiagTable *self, PyObject *key)
{
    Py_ssize_t at = dt_lookup(self, key);
    return at == -2 ? -1 : at >= 0;
}

static Py_ssize_t
diagtable_len(DiagTable *self)
{
    return self->live;
}

/* get(key, default=None) / pop(key, default=None): as a dict's, on the messages. */
static PyObject *
dt_get_or_pop(DiagTable *self, PyObject *const *args, Py_ssize_t nargs, int pop)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "expected a key and an optional default");
        return NULL;
    }
    Py_ssize_t at = dt_lookup(self, args[0]);
    if (at == -2)
        return NULL;
    if (at < 0)
        return Py_NewRef(nargs == 2 ? args[1] : Py_None);
    DiagEntry *e = &self->entries[at];
    PyObject *msg = dt_msg(e);
    if (msg != NULL && pop) {
        e->flags |= DT_DEAD;
        self->live--;
    }
    return msg;
}

static PyObject *
diagtable_get(DiagTable *self, PyObject *const *args, Py_ssize_t nargs)
{
    return dt_get_or_pop(self, args, nargs, 0);
}

static PyObject *
diagtable_pop(DiagTable *self, PyObject *const *args, Py_ssize_t nargs)
{
    return dt_get_or_pop(self, args, nargs, 1);
}

/* keys() / values(): the live cookies / messages in the order of the dump (a list). */
static PyObject *
dt_list(DiagTable *self, int keys)
{
    if (diagtable_ready(self) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < self->n; i++) {
        const DiagEntry *e = &self->entries[i];
        if (e->flags & DT_DEAD)
            continue;
        PyObject *item = keys ? dt_key(e) : dt_msg(e);
        if (item == NULL || PyList_Append(out, item) < 0)
            Py_CLEAR(out);
        Py_XDECREF(item);
    }
    return out;
}

static PyObject *
diagtable_keys(DiagTable *self, PyObject *Py_UNUSED(ignored))
{
    return dt_list(self, 1);
}

static PyObject *
diagtable_values(DiagTable *self, PyObject *Py_UNUSED(ignored))
{
    return dt_list(self, 0);
}

static PyMethodDef diagtable_methods[] = {
    {"feed", (PyCFunction)(void (*)(void))diagtable_feed, METH_FASTCALL,
     "feed(buf, off=0) -> offset of the first control message at or after off, else "
     "len(buf)."},
    {"finish", (PyCFunction)diagtable_finish, METH_NOARGS,
     "finish() -> (changed [(cookie, msg, old msg or None)], gone [(cookie, old msg)])."},
    {"get", (PyCFunction)(void (*)(void))diagtable_get, METH_FASTCALL,
     "get(cookie, default=None) -> the message of cookie."},
    {"pop", (PyCFunction)(void (*)(void))diagtable_pop, METH_FASTCALL,
     "pop(cookie, default=None) -> the message of cookie, no longer in the table."},
    {"keys", (PyCFunction)diagtable_keys, METH_NOARGS, "keys() -> the cookies, in order."},
    {"values", (PyCFunction)diagtable_values, METH_NOARGS,
     "values() -> the messages, in order."},
    {NULL}};

static PySequenceMethods diagtable_as_sequence = {
    .sq_length = (lenfunc)diagtable_len,
    .sq_contains = (objobjproc)diagtable_contains,
};

static PyTypeObject DiagTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sockscope._core.DiagTable",
    .tp_doc = "A --watch snapshot's sock_diag replies (see ops.watch.Table).",
    .tp_basicsize = sizeof(DiagTable),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)diagtable_init,
    .tp_dealloc = (destructor)diagtable_dealloc,
    .tp_methods = diagtable_methods,
    .tp_as_sequence = &diagtable_as_sequence,
};

/* ------------------------------------------------------------------------------------ */
/* -p: the socket fds of one /proc/<tid>/fd/ directory                                    */
/* ------------------------------------------------------------------------------------ */

/* A decimal string of 1..maxdigits digits without a leading zero (but "0"), at most max:
   its value, or -1. */
static long long
plain_decimal(const char *s, size_t len, size_t maxdigits, unsigned long long max)
{
    if (len == 0 || len > maxdigits || (len > 1 && s[0] == '0'))
        return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long long)(s[i] - '0');
    }
    return v > max ? -1 : (long long)v;
}

typedef struct {
    int fd;
    unsigned int ino;
} FdSocket;

/* fd_sockets(dirfd) -> [(fd, inode), ...] in readdir order, or None.

   The loop of ProcessMap.scan_task (ops/procmap.py, user_ent_hash_build_task in ss.c)
   for the plain forms only, with the GIL released: names of decimal digits up to
   INT32_MAX, links read as ss reads them (63 bytes) that are "socket:[N]" with N of at
   most 10 digits fitting in 32 bits. Any other name or socket link (a damaged PROC_ROOT
   tree) gives None, and the Python loop, the reference, reads the directory instead. A
   link that cannot be read (the fd closed meanwhile) or is not a socket is skipped, as
   there. */
static PyObject *
core_fd_sockets(PyObject *self, PyObject *arg)
{
    long dirfd = PyLong_AsLong(arg);
    if (dirfd == -1 && PyErr_Occurred())
        return NULL;
    if (dirfd < 0 || dirfd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "fd_sockets: not a file descriptor");
        return NULL;
    }
    int copy = fcntl((int)dirfd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    DIR *dir = fdopendir(copy);
    if (dir == NULL) {
        close(copy);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    size_t n = 0, cap = 64;
    FdSocket *found = PyMem_RawMalloc(cap * sizeof(FdSocket));
    int punt = 0, nomem = found == NULL, err = 0;
    Py_BEGIN_ALLOW_THREADS
    rewinddir(dir);
    while (!punt && !nomem) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (de == NULL) {
            err = errno;
            break;
        }
        const char *name = de->d_name;
        if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0)))
            continue;
        long long fd = plain_decimal(name, strlen(name), 10, 0x7FFFFFFF);
        if (fd < 0) {
            punt = 1;
            break;
        }
        char link[64];
        ssize_t len = readlinkat((int)dirfd, name, link, sizeof(link) - 1);
        if (len < 0)
            continue;
        if (len < 8 || memcmp(link, "socket:[", 8) != 0)
            continue;
        const char *digits = link + 8;
        const char *close_br = memchr(digits, ']', (size_t)len - 8);
        long long ino = close_br == NULL
                            ? -1
                            : plain_decimal(digits, (size_t)(close_br - digits), 10, 0xFFFFFFFFu);
        if (ino < 0) {
            punt = 1;
            break;
        }
        if (n == cap) {
            FdSocket *more = PyMem_RawRealloc(found, 2 * cap * sizeof(FdSocket));
            if (more == NULL) {
                nomem = 1;
                break;
            }
            found = more;
            cap *= 2;
        }
        found[n].fd = (int)fd;
        found[n].ino = (unsigned int)ino;
        n++;
    }
    rewinddir(dir); /* the offset is shared with dirfd: leave it as os.listdir does */
    closedir(dir);
    Py_END_ALLOW_THREADS
    if (nomem) {
        PyMem_RawFree(found);
        return PyErr_NoMemory();
    }
    if (punt || err) {
        /* a directory read error too: the Python loop meets it and behaves as ss */
        PyMem_RawFree(found);
        Py_RETURN_NONE;
    }
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out != NULL && i < n; i++) {
        PyObject *pair = Py_BuildValue("(iI)", found[i].fd, found[i].ino);
        if (pair == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, pair);
    }
    PyMem_RawFree(found);
    return out;
}

static PyMethodDef core_methods[] = {
    {"dump_end", (PyCFunction)(void (*)(void))core_dump_end, METH_FASTCALL,
     "dump_end(buf, seq) -> True if the datagram holds NLMSG_DONE or NLMSG_ERROR of seq."},
    {"fd_sockets", (PyCFunction)core_fd_sockets, METH_O,
     "fd_sockets(dirfd) -> [(fd, inode)] of a /proc/<tid>/fd/ directory, or None when a "
     "name or socket link is not in the plain form (the Python loop reads it then)."},
    {NULL}};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "sockscope._core",
    "The optional compiled core of a listing: column engine and inet rows.", -1,
    core_methods};

PyMODINIT_FUNC
PyInit__core(void)
{
    if (PyType_Ready(&RendererType) < 0 || PyType_Ready(&RowMakerType) < 0 ||
        PyType_Ready(&DiagTableType) < 0 || PyType_Ready(&PrefetchType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Renderer", (PyObject *)&RendererType) < 0 ||
        PyModule_AddObjectRef(m, "RowMaker", (PyObject *)&RowMakerType) < 0 ||
        PyModule_AddObjectRef(m, "DiagTable", (PyObject *)&DiagTableType) < 0 ||
        PyModule_AddObjectRef(m, "Prefetch", (PyObject *)&PrefetchType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
