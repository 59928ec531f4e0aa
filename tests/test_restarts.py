"""Restarts under continuous load, for every server and both modes: 0 failed requests.

Each test runs a real server under huptime (pytest-xprocess), loads it with 8
concurrent clients (a new connection per request), restarts it 20 times, and
checks that every restart really happened and that no request failed.
"""

from __future__ import annotations

import pytest

from harness import Served
from servers_under_test import NAMES, make_server
from support.load import LoadRunner

RESTARTS = 20
CLIENTS = 8


def start(xprocess, name, port, tmp_path, build_dir, nginx_bin, exec_mode, options=()):
    server = make_server(name, port, tmp_path, build_dir, nginx_bin if name == "nginx" else None)
    served = Served(xprocess, name, server.command, exec_mode=exec_mode, options=list(options))
    return server, served.start()


@pytest.fixture
def nginx_if_needed(request):
    if "nginx" in request.node.name:
        return request.getfixturevalue("nginx_bin")
    return None


@pytest.mark.parametrize("mode", ["fork", "exec"])
@pytest.mark.parametrize("name", NAMES)
def test_restarts_under_load_lose_nothing(xprocess, name, mode, port, tmp_path, build_dir,
                                          nginx_if_needed):
    server, served = start(xprocess, name, port, tmp_path, build_dir, nginx_if_needed,
                           mode == "exec")
    leaders = {served.leader}
    with LoadRunner(port, path=server.path, clients=CLIENTS, duration=240.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(RESTARTS):
            before = load.snapshot().ok
            leaders.add(served.restart())
            if server.kind == "gen":
                load.wait_until(lambda r, g=served.generation: r.saw(f"gen={g}"))
            load.wait_until(lambda r, b=before: r.ok >= b + 20)
    result = load.result
    assert result.failed == 0, result.summary() + "\n" + "\n".join(result.error_samples)
    assert served.generation == RESTARTS + 1
    if mode == "fork":
        assert len(leaders) == RESTARTS + 1, "every fork-mode generation has its own PID"
    else:
        assert leaders == {served.leader}, "exec mode keeps the PID"
    if server.kind == "pid":
        assert len(result.bodies_seen) > RESTARTS, "each generation's workers served"
    served.stop()  # SIGTERM to the current leader ends the whole server
