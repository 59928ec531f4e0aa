"""Listener kinds across restarts: several listeners in one program, IPv4 and IPv6,
a Unix socket bound with the unlink-then-bind idiom, an abstract Unix socket."""

from __future__ import annotations

import os
import stat
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from support.huptime import status_json
from support.load import LoadRunner

SERVER = Path(__file__).parent / "servers" / "listeners_server.py"
RESTARTS = 5


@pytest.mark.parametrize("mode", ["fork", "exec", "probe"])
def test_every_listener_kind_survives_restarts_under_load(under_huptime, port, tmp_path, mode):
    """probe: fork mode with --probe-http, so each of the four has a private twin first
    (127.0.0.1, ::1 and two abstract names) that every thread's wait gives up for it."""
    sock_path = tmp_path / "app.sock"
    abstract = f"@huptime-test-{os.getpid()}-{port}"
    addresses = {"ipv4": f"tcp:127.0.0.1:{port}", "ipv6": f"tcp:[::1]:{port}",
                 "unix": f"unix:{sock_path}", "abstract": f"unix:{abstract}"}
    command = [sys.executable, str(SERVER), *addresses.values()]
    served = under_huptime("listeners", command, exec_mode=mode == "exec",
                           options=["--probe-http", "/"] if mode == "probe" else []).start()

    [inst] = status_json()
    assert sorted(inst["listeners"]) == sorted([f"127.0.0.1:{port}", f"[::1]:{port}",
                                                f"unix:{sock_path}", f"unix:{abstract}"])

    targets = {"ipv4": {"host": "127.0.0.1"}, "ipv6": {"host": "::1"},
               "unix": {"unix": str(sock_path)}, "abstract": {"unix": abstract}}
    with ExitStack() as stack:
        loads = {name: stack.enter_context(LoadRunner(port, clients=2, duration=120.0, **where))
                 for name, where in targets.items()}
        for load in loads.values():
            load.wait_until(lambda r: r.ok >= 20)
        for _ in range(RESTARTS):
            inode = sock_path.stat().st_ino
            served.restart()
            for name, load in loads.items():
                before = load.snapshot().ok
                load.wait_until(lambda r, b=before: r.saw(f"gen={served.generation}") and r.ok >= b + 10)
            assert stat.S_ISSOCK(sock_path.stat().st_mode)
            assert sock_path.stat().st_ino == inode, "the socket file is the one clients used"
    for name, load in loads.items():
        assert load.result.failed == 0, f"{name}: {load.result.summary()}"
    if mode == "probe":
        assert served.log().count("until --probe passes") == 4 * RESTARTS, served.log()
    served.stop()
