"""--multi=N: N copies of the program on the same listeners (one accept queue), kept at
N by the supervisor, rolled together by a restart, gone with the supervisor."""

from __future__ import annotations

import os
import re
import signal

from support.huptime import run_huptime, status_json
from support.load import LoadRunner, run_load
from support.proc import TCP_LISTEN, is_alive, kernel_sockets, live_descendants, open_fd_count
from support.wait import wait_for

COPIES = 4
RESTARTS = 20


def copies(command: list[str]) -> list[dict]:
    instances = status_json(command, check=False)
    if not instances:
        return []
    return [g for g in instances[0]["generations"] if g["state"] == "serving"]


def listening_sockets(port: int) -> int:
    """How many distinct listening sockets the kernel has on 127.0.0.1:port."""
    return kernel_sockets(port, "tcp", TCP_LISTEN)


def start_pool(serve, label):
    server, served = serve("threaded", label=label, options=["--multi", str(COPIES)])
    pool = wait_for(lambda: len(copies(server.command)) == COPIES and copies(server.command),
                    what=f"{COPIES} copies serving")
    return server, served, pool


def test_a_pool_of_four_rolls_twenty_times_under_load(serve, port):
    server, served, pool = start_pool(serve, "multi")
    assert len({g["pid"] for g in pool}) == COPIES
    assert listening_sockets(port) == 1, "one shared listener: one accept queue"
    supervisor_fds = open_fd_count(served.leader)
    with LoadRunner(port, clients=8, duration=240.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for n in range(2, RESTARTS + 2):
            done = run_huptime("--restart", "--", *server.command)
            assert done.returncode == 0, done.stderr
            assert f"{COPIES} copies serving, generations " + ", ".join([str(n)] * COPIES) \
                in done.stdout
            before = load.snapshot().ok
            load.wait_until(lambda r, b=before, n=n: r.saw(f"gen={n}") and r.ok >= b + 20)
    result = load.result
    assert result.failed == 0, result.summary()
    last = {body for body in result.bodies_seen if body.endswith(f"gen={RESTARTS + 1}")}
    assert len(last) >= 2, f"the last generation's copies share the queue: {last}"
    assert listening_sockets(port) == 1
    assert "--multi: copy" not in served.log(), "a restart is not a crash"
    assert open_fd_count(served.leader) == supervisor_fds, \
        "the supervisor holds one set of listeners, not one per report"
    pool = copies(server.command)
    assert len(pool) == COPIES and {g["generation"] for g in pool} == {RESTARTS + 1}


def test_a_copy_that_dies_is_replaced(serve, port):
    server, served, pool = start_pool(serve, "multi-replace")
    victim = pool[-1]["pid"]
    os.kill(victim, signal.SIGKILL)
    served.wait_log(rf"--multi: copy \d+, generation 1 \(pid {victim}\) was killed by signal 9 "
                    r"after [\d.]+ s; starting generation 2 in 0.1 s")
    pool = wait_for(lambda: (p := copies(server.command)) and len(p) == COPIES and
                    victim not in {g["pid"] for g in p} and p, what="the replacement")
    assert sorted(g["generation"] for g in pool) == [1, 1, 1, 2]
    result = run_load(port, clients=8, duration=1.0)
    assert result.failed == 0 and result.ok > 0, result.summary()
    assert listening_sockets(port) == 1


def test_the_pool_dies_with_its_supervisor(serve):
    server, served, pool = start_pool(serve, "multi-kill")
    os.kill(served.leader, signal.SIGKILL)
    wait_for(lambda: not any(is_alive(g["pid"]) for g in pool) and not live_descendants(),
             20, lambda: f"end of the pool; still running: {live_descendants()}")
    assert len(re.findall("the supervisor is gone", served.log())) == COPIES
