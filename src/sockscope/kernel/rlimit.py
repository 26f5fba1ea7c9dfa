"""Whether this process runs under a memory cap (RLIMIT_AS or RLIMIT_DATA), read from
``/proc/self/limits`` without importing ``resource``.

Why it matters: the worker threads that overlap work ss does in sequence (the receive
threads of the dumps, the /proc scan of ``-p``) are worth a few milliseconds, and under a
cap they cost what the cap is about. Each thread reserves a stack (8 MiB by default) and
glibc tries to reserve a 64 MiB malloc arena for it; and when memory runs out in a thread,
CPython 3.11's exception unwinding can spin forever instead of raising MemoryError (it
needs a new int for the handler's resume offset and retries until one can be made:
python/cpython#132508, fixed in 3.14), while the main thread waits for that thread. Under
a cap the same work is done in the main thread instead: the output is the same, and a
MemoryError reaches the CLI's ``Cannot allocate memory``.
"""

from __future__ import annotations

import posix

#: the lines of /proc/self/limits for the caps on memory (their 4th word: the soft limit)
_MEMORY_LIMITS = (b"Max address space ", b"Max data size ")


def memory_capped() -> bool:
    """True when RLIMIT_AS or RLIMIT_DATA has a finite soft limit, or when the limits
    cannot be read (no /proc, no descriptor to spare): then nothing is started beside
    the main thread either."""
    try:
        fd = posix.open("/proc/self/limits", posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError:
        return True
    try:
        text = posix.read(fd, 8192)
    except OSError:
        return True
    finally:
        posix.close(fd)
    seen = 0
    for line in text.split(b"\n"):
        if line.startswith(_MEMORY_LIMITS):
            words = line.split()
            if len(words) < 4 or words[3] != b"unlimited":
                return True
            seen += 1
    return seen != len(_MEMORY_LIMITS)
