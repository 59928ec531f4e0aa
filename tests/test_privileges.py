"""Programs that start as root and give up root after bind, as daemons do.

The test server (tests/servers/dropping_server.c) listens as root, then drops to
nobody; huptime runs as root. Root's control commands must find the instance (the
processes are nobody's, but they map the record's pages), never remove the record of
an instance that still runs, and its new generations, started by an old generation
that runs as nobody, must still write their pages and events: restarts under load
lose nothing. The record's base lies under pytest's private (0700, root's) temporary
directory, which nobody cannot search: the shim reaches the record through the
descriptor of its directory (HUPTIME_CONTROL_FD).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from cffi import FFI

from huptime import protocol
from huptime.launcher import shim_path
from support.build import build_c, root_only_port
from support.huptime import status_json
from support.huptime import run_huptime as control
from support.load import LoadRunner
from support.proc import live_descendants
from support.servers import SERVERS_DIR

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root: the server starts as root and drops to nobody")

RESTARTS = 4
NOBODY = "nobody"


@pytest.fixture(scope="module")
def nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(NOBODY)
    except KeyError:
        pytest.skip(f"no user {NOBODY}")


@pytest.fixture(scope="module")
def dropping_server(nobody) -> Path:
    """The server, built where nobody can run it (its new generations run as nobody);
    skipped if nobody cannot also read the shim (a private directory above it)."""
    where = Path(tempfile.mkdtemp(prefix="huptime-drop-"))
    try:
        where.chmod(0o755)
        binary = build_c(where, SERVERS_DIR / "dropping_server.c", "dropping-server")
        probe = subprocess.run(["/bin/sh", "-c", 'test -x "$0" && test -r "$1"', str(binary),
                                str(shim_path())], user=nobody.pw_uid, group=nobody.pw_gid,
                               extra_groups=[], capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"{NOBODY} cannot run {binary} or read {shim_path()}")
        yield binary
    finally:
        shutil.rmtree(where, ignore_errors=True)


def uid_of(pid: int) -> int:
    return psutil.Process(pid).uids().real


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_a_server_that_drops_root_restarts_under_load(under_huptime, port, runtime,
                                                      dropping_server, nobody, mode):
    port = root_only_port(port)
    command = [str(dropping_server), str(port)]
    served = under_huptime(f"dropping-{mode}", command, exec_mode=mode == "exec").start()
    served.wait_log(rf"generation 1: dropped root for {NOBODY}")
    assert uid_of(served.leader) == nobody.pw_uid

    # Root's control commands find the instance, and leave its record alone.
    for _ in range(2):
        [inst] = status_json(command)
        assert (inst["pid"], inst["generation"], inst["mode"]) == (served.leader, 1, mode)
        assert inst["listeners"] == [f"127.0.0.1:{port}"]
    [record] = list(runtime.iterdir())
    assert (record / "gen-1").exists() and (record / "instance.json").exists()

    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for n in range(2, RESTARTS + 2):
            done = control("--restart", "--", *command)
            assert done.returncode == 0, done.stderr
            assert f"generation {n} (pid " in done.stdout, done.stdout
            # The new generation, started by one that runs as nobody, wrote its page.
            [inst] = status_json(command)
            assert inst["generation"] == n and uid_of(inst["pid"]) == nobody.pw_uid
            assert (record / f"gen-{n}").exists()
            before = load.snapshot().ok
            load.wait_until(lambda r, b=before, n=n: r.saw(f"gen={n}") and r.ok >= b + 20)
    assert load.result.failed == 0, load.result.summary()
    served.wait_log(rf"generation {RESTARTS + 1}: already uid {nobody.pw_uid}")
    if mode == "exec":
        assert inst["pid"] == served.leader, "exec mode keeps the PID"

    done = control("--stop", "--", *command)
    assert done.returncode == 0, done.stderr
    assert "exited on SIGTERM" in done.stdout
    assert live_descendants() == [], "--stop returns once every process is gone"
    assert list(runtime.iterdir()) == [], "the record of a stopped instance is removed"
    assert control("--status", "--", *command).returncode == 3


def page_bytes(number: int, leader: int) -> bytes:
    page = protocol.ffi.new("struct gen_page *")
    page.number, page.leader, page.version = number, leader, protocol.GEN_PAGE_VERSION
    data = bytes(protocol.ffi.buffer(page))
    return data + bytes(protocol.GEN_PAGE_SIZE - len(data))


def test_a_record_naming_a_live_process_is_never_removed(runtime, nobody):
    """A record whose processes still exist stays, even when none of them can be
    verified (another user's, mapping nothing of it); it goes once they are gone."""
    command = ["/bin/sleep", "600"]
    other = subprocess.Popen(command, user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
    try:
        record = runtime / f"{other.pid}-alive"
        runtime.mkdir(mode=0o700)
        record.mkdir(mode=0o700)
        (record / "instance.json").write_text(json.dumps(
            {"version": 1, "pid": other.pid, "command": command, "program": command[0],
             "mode": "fork", "signal": 1, "started": time.time()}))
        (record / "gen-1").write_bytes(page_bytes(1, other.pid))
        for action in ("--status", "--restart", "--stop"):
            done = control(action, "--", *command)
            assert done.returncode == 3, (action, done.stdout, done.stderr)
            assert (record / "gen-1").exists(), f"{action} removed the page of a live leader"
        assert other.poll() is None, "never signalled: it maps nothing of the record"
    finally:
        other.kill()
        other.wait()
    assert control("--status").returncode == 3
    assert not record.exists(), "its processes are gone: the record goes"


# --- HUPTIME_CONTROL_FD in the handoff (the shim's helper, through cffi) -------------

ffi = FFI()
ffi.cdef("""
    struct handoff { const int *fds; int nfds; int ready_fd; int generation; int pending;
                     const int *ignored; int nignored; const int *stdio; int nstdio; };
    char **huptime_build_env_control(char *const *base, const struct handoff *h,
                                     int control_fd, char **pid_slot);
    void free(void *);
""")


def built_env(control_fd: int) -> list[str]:
    lib = ffi.dlopen(str(shim_path()))
    keep = [ffi.new("char[]", e.encode()) for e in
            (f"{protocol.ENV_CONTROL_FD}=9", f"{protocol.ENV_CONTROL}=/run/x")]
    base = ffi.new("char *[]", [*keep, ffi.NULL])
    fds = ffi.new("int[]", [3])
    h = ffi.new("struct handoff *", {"fds": fds, "nfds": 1, "ready_fd": -1, "generation": 2,
                                     "nignored": -1})
    slot = ffi.new("char **")
    env = lib.huptime_build_env_control(base, h, control_fd, slot)
    assert env != ffi.NULL
    entries = []
    while env[len(entries)] != ffi.NULL:
        entries.append(ffi.string(env[len(entries)]).decode())
    ffi.dlopen(None).free(env)
    return entries


def test_the_handoff_names_the_record_directory_s_descriptor():
    entries = built_env(5)
    assert f"{protocol.ENV_CONTROL_FD}=5" in entries and f"{protocol.ENV_CONTROL}=/run/x" in entries
    assert not any(e.startswith(f"{protocol.ENV_CONTROL_FD}=") for e in built_env(-1)), \
        "a stale one is dropped, none is added without a descriptor"
