"""--revive: a program that ends on its own is started again while its listeners stay
open, so clients queue instead of being refused; the supervisor's life bounds the
program's."""

from __future__ import annotations

import os
import re
import signal

import pytest

from support.huptime import run_huptime
from support.load import run_load
from support.proc import is_alive, live_descendants
from support.wait import wait_for


@pytest.mark.parametrize("status", [0, 1])
def test_a_server_that_exits_every_second_is_revived_without_refusals(
        serve, port, status):
    _, served = serve("blocking", label="revive", options=["--revive"],
                      env={"HT_EXIT_AFTER": "1", "HT_EXIT_STATUS": str(status)})
    result = run_load(port, clients=4, duration=6.0)
    assert result.failed == 0, result.summary()
    revived = re.findall(r"--revive: generation (\d+) \(pid \d+\) exited with status (\d+) "
                         r"after [\d.]+ s; starting generation \d+ in ([\d.]+) s", served.log())
    assert len(revived) >= 3, served.log()
    assert {int(s) for _, s, _ in revived} == {status}
    delays = [float(d) for _, _, d in revived]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8][:len(delays[:4])], "a fast exit doubles the delay"
    assert len(result.bodies_seen) >= 3, "each revived copy served"


def test_the_program_dies_with_its_supervisor_even_on_sigkill(serve):
    _, served = serve("threaded", label="revive-kill", options=["--revive"])
    supervisor = served.leader
    program = int(re.search(r"huptime\[(\d+)\]: generation 1 serving", served.log()).group(1))
    assert program != supervisor and is_alive(program)
    served.leader = program
    served.restart()  # a fork-mode generation, re-parented to the supervisor
    os.kill(supervisor, signal.SIGKILL)
    served.wait_log("the supervisor is gone: stopping generation 2", 20)
    wait_for(lambda: not live_descendants(), 20,
             lambda: f"end of the program; still running: {live_descendants()}")


def test_stop_ends_supervisor_and_program(serve):
    server, served = serve("threaded", label="revive-stop", options=["--revive"])
    done = run_huptime("--stop", "--", *server.command)
    assert done.returncode == 0, done.stderr
    assert not is_alive(served.leader)
    assert live_descendants() == []
    assert "--revive: generation" not in served.log(), "a stopped program is not revived"
