"""Limits that agree and never fail silently (docs/protocol.md, "Limits").

A program that closes every descriptor at start (as daemons do) keeps every inherited
listener only if the shim protects them all: with 32 protection slots against 64
handed-over sockets, 30 listeners lost requests at every restart. Past the 64 sockets
a restart passes on, the restart is refused before it starts, with the reason, and the
running generation keeps serving every socket.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack

import pytest

from huptime import protocol
from support.build import free_port
from support.huptime import run_huptime, status_json
from support.load import LoadRunner
from support.servers import SERVERS_DIR

SERVER = SERVERS_DIR / "listeners_server.py"
MAX_HANDED_OVER = protocol.HANDOFF_MAX_FDS


def distinct_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def command(ports: list[int]) -> list[str]:
    return [sys.executable, str(SERVER), "--close-fds", *(f"tcp:127.0.0.1:{p}" for p in ports)]


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_sixty_listeners_closed_at_start_survive_restarts_under_load(under_huptime, mode):
    ports = distinct_ports(60)
    served = under_huptime("sixty", command(ports), exec_mode=mode == "exec").start()
    served.wait_log(r"listening on 60 addresses")  # serving starts with the first
    assert len(status_json()[0]["listeners"]) == 60
    # The last listeners were the first to lose their protection.
    watched = [ports[0], ports[30], ports[58], ports[59]]
    with ExitStack() as stack:
        loads = [stack.enter_context(LoadRunner(p, clients=2, duration=120.0)) for p in watched]
        for load in loads:
            load.wait_until(lambda r: r.ok >= 10)
        for _ in range(4):
            served.restart()
            for load in loads:
                before = load.snapshot().ok
                load.wait_until(lambda r, b=before: r.saw(f"gen={served.generation}") and
                                r.ok >= b + 5)
    for port, load in zip(watched, loads):
        assert load.result.failed == 0, f"port {port}: {load.result.summary()}"
    assert len(status_json()[0]["listeners"]) == 60
    served.stop()


def test_past_the_handover_limit_the_restart_is_refused_and_says_why(under_huptime):
    ports = distinct_ports(MAX_HANDED_OVER + 2)
    served = under_huptime("too-many", command(ports)).start()
    served.wait_log(rf"listening on {len(ports)} addresses")
    with LoadRunner(ports[-1], clients=2, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 10)
        done = run_huptime("--restart", "--", *served.command)
        assert done.returncode == 1, done.stderr
        assert (f"{MAX_HANDED_OVER + 2} sockets to hand over, at most {MAX_HANDED_OVER} are"
                in done.stderr)
        served.wait_log(rf"restart refused: {MAX_HANDED_OVER + 2} sockets to hand over, at "
                        rf"most {MAX_HANDED_OVER} are; generation 1 keeps serving")
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 10)
    assert load.result.failed == 0, load.result.summary()
    assert load.result.bodies_seen and all("gen=1" in body for body in load.result.bodies_seen)
    served.stop()
