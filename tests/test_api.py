"""The library's front door: typed names, checks at the call, the one table walk.

Runs without root or a kernel dump where it can: bad arguments are rejected before any
socket is opened, and the walk is observed over an empty PROC_ROOT (every table's source
is then a /proc file that is missing, so nothing is read).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sockscope
from sockscope.kernel import abi
from sockscope.options import Options
from sockscope.tables.context import Context
from sockscope.tables.walk import ORDER, walk

REPO = Path(__file__).resolve().parent.parent


def test_every_public_name_resolves() -> None:
    for name in sockscope.__all__:
        assert getattr(sockscope, name) is not None, name


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"tables": "tcp"}, TypeError),
        ({"states": "listening"}, TypeError),
        ({"tables": [b"tcp"]}, TypeError),
        ({"tables": ["bogus"]}, sockscope.ArgumentError),
        ({"families": ["inet7"]}, sockscope.ArgumentError),
        ({"states": ["sleeping"]}, sockscope.ArgumentError),
        ({"filter": "sport = "}, sockscope.FilterError),
        ({"filter": 42}, TypeError),
    ],
)
def test_bad_arguments_raise_at_the_call(kwargs: dict[str, object], error: type) -> None:
    """Not at the first next(): the generator is never started."""
    with pytest.raises(error):
        sockscope.sockets(**kwargs)  # no next()


def test_filter_error_says_where() -> None:
    with pytest.raises(sockscope.FilterError) as info:
        sockscope.sockets(filter="sport = :22 )")
    assert (info.value.kind, info.value.token, info.value.position) == ("syntax", ")", 3)


def test_errors_carry_no_exit_status() -> None:
    """Exit statuses are the CLI's business (sockscope.cli.status)."""
    for cls in (sockscope.SockscopeError, sockscope.FilterError, sockscope.NetlinkError):
        assert not hasattr(cls, "status")
    assert issubclass(sockscope.EventError, sockscope.SockscopeError)
    assert issubclass(sockscope.KillError, sockscope.NetlinkError)


def test_query_repr_and_equality() -> None:
    a = sockscope.Query(tables=["tcp"], states=["listening"], filter="sport = :22", info=True)
    b = sockscope.Query(tables=("tcp",), states=["listening"], filter="sport = :22", info=True)
    assert a == b
    assert a != sockscope.Query(tables=["udp"])
    assert repr(a) == (
        "Query(tables=['tcp'], states=['listening'], filter='sport = :22', info=True)"
    )
    with pytest.raises(TypeError):
        hash(a)


def test_the_socket_union_names_every_record_class() -> None:
    assert set(sockscope.Socket.__args__) == set(sockscope.socket_types())  # type: ignore[attr-defined]


def _ctx(environ: dict[str, str], tables: list[str]) -> Context:
    sel = sockscope.Query(tables=tables, states=["all"]).selection()
    return Context(sel, Options(), None, None, environ)


def test_the_walk_is_ss_order(tmp_path: Path) -> None:
    """Tables come in main()'s order whatever order they were asked in; nothing is
    dumped before the walk reaches a table."""
    asked = ["mptcp", "tcp", "udp", "raw", "unix", "packet", "netlink", "tipc"]
    names = [t.name for t in walk(_ctx({"PROC_ROOT": str(tmp_path)}, asked))]
    order = [name for name, _bits in ORDER]
    assert names == sorted(names, key=order.index)
    assert set(names) == {"mptcp", "tcp", "udp", "raw", "unix", "packet", "netlink", "tipc"}


def test_the_walk_for_kill_has_only_inet_tables(tmp_path: Path) -> None:
    tables = walk(_ctx({"PROC_ROOT": str(tmp_path)}, ["all"]), inet_only=True)
    assert [t.name for t in tables] == ["raw", "udp", "tcp", "dccp", "sctp", "mptcp"]


def test_the_walk_skips_inet_tables_without_inet_families(tmp_path: Path) -> None:
    ctx = _ctx({"PROC_ROOT": str(tmp_path)}, ["all"])
    ctx.sel.families = 1 << abi.AF_UNIX
    assert "tcp" not in [t.name for t in walk(ctx)]


@pytest.mark.skipif(
    shutil.which("mypy") is None and sys.modules.get("mypy") is None,
    reason="mypy is not installed (pip install '.[test]' brings it)",
)
def test_a_users_script_type_checks_strictly(tmp_path: Path) -> None:
    """mypy --strict on a script that iterates sockets() and reads fields by name; a
    wrong use is caught (so the check can fail)."""
    good = tmp_path / "good.py"
    good.write_text(
        textwrap.dedent("""
        import sockscope
        from sockscope.tables.inet.record import InetSocket

        def ports(q: sockscope.Query) -> list[int]:
            out: list[int] = []
            for s in sockscope.sockets(q):
                if isinstance(s, InetSocket):
                    out.append(s.local_port + s.peer_port)
                    info = s.tcp_info
                    if info is not None:
                        out.append(info.tcpi_rtt)
                    addr: str = s.local_address
                    print(addr, s.state_name, s.netid, s.recv_q, s.inode)
                else:
                    print(s.local_address, s.peer_port, s.netid)
            return out

        summary = sockscope.summary()
        print(ports(sockscope.Query(tables=["tcp"])), summary)
        try:
            sockscope.kill("sport = :1", tables=["tcp"])
        except sockscope.KillError as e:
            print(e.errno)
    """)
    )
    bad = tmp_path / "bad.py"
    bad.write_text(
        textwrap.dedent("""
        import sockscope
        from sockscope.tables.inet.record import InetSocket

        for s in sockscope.sockets():
            if isinstance(s, InetSocket):
                port: str = s.local_port
    """)
    )
    env = {**os.environ, "MYPYPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0, ok.stdout
    wrong = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, env=env, check=False)
    assert wrong.returncode == 1 and "Incompatible types in assignment" in wrong.stdout


# --- owners in the library (Query(processes=True)) ------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize(
    ("query", "options"),
    [
        ({}, []),
        ({"processes": True}, ["-p"]),
        ({"processes": True, "tos": True, "memory": True, "info": True}, ["-p", "--tos", "-mi"]),
    ],
)
def test_to_dict_is_what_json_prints(query: dict[str, bool], options: list[str]) -> None:
    """A record's ``to_dict()`` is the object ``--json -n -oe --cgroup --inet-sockopt``
    prints for the socket (plus ``--tos -m -i -p`` as the query asks), and ``owners``
    are typed records of the same processes."""
    import json

    from netns import Holder, Netns, live_reason, sockscope_cmd, tool_env

    reason = live_reason()
    if reason:
        pytest.skip(reason)
    ns = Netns()
    holder = None
    try:
        holder = Holder(ns)
        tables = ["tcp", "udp", "unix"]
        q = sockscope.Query(tables=tables, states=["all"], netns=ns.name, **query)
        cmd = [*sockscope_cmd(), "-A", ",".join(tables), "-an", "-oe", "--cgroup"]
        cmd += ["--inet-sockopt", *options, "--json-lines"]
        records = list(sockscope.sockets(q))
        out = ns.run(cmd, env=tool_env()).stdout
        cli = [json.loads(line) for line in out.splitlines()]
        for d in cli:
            d.pop("schema_version")
        lib = [r.to_dict() for r in records]
        assert len(lib) > 10

        def masked(objects: list[dict[str, object]]) -> list[str]:
            # a timer's expiry moves between the two dumps
            out = []
            for obj in objects:
                timer = obj.get("timer")
                if isinstance(timer, dict):
                    obj = {**obj, "timer": {**timer, "expires_ms": "T"}}  # noqa: PLW2901
                out.append(json.dumps(obj, sort_keys=True))
            return out

        if options[-1:] == ["-mi"]:
            assert [sorted(d) for d in lib] == [sorted(d) for d in cli]
        else:
            assert masked(lib) == masked(cli)
        held = [r for r in records if r.owners]
        if query.get("processes"):
            assert held, "the holder's sockets have owners"
            for rec in held:
                assert rec.owners is not None
                for owner in rec.owners:
                    assert owner.pid > 0 and owner.fd >= 0 and owner.command
                    assert (owner.uid, owner.user) == (0, "root")
                users = rec.to_dict()["users"]
                assert users == [o.to_dict() for o in rec.owners]
        else:
            assert not held
    finally:
        if holder is not None:
            holder.close()
        ns.close()
