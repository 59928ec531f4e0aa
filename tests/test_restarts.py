"""Restarts under continuous load, for every server and both modes: 0 failed requests.

Each test runs a real server under huptime (pytest-xprocess), loads it with 8
concurrent clients (a new connection per request), restarts it 20 times, and
checks that every restart really happened and that no request failed.
"""

from __future__ import annotations

import pytest

from support.load import LoadRunner
from support.servers import NAMES

RESTARTS = 20
CLIENTS = 8


@pytest.mark.parametrize("mode", ["fork", "exec"])
@pytest.mark.parametrize("name", NAMES)
def test_restarts_under_load_lose_nothing(serve, name, mode, port):
    server, served = serve(name, exec_mode=mode == "exec")
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
