"""Options that change what a restart does around the program: --unlink, --wait.

The server under test is the threaded Python server. With $HT_PIDFILE set, like many
daemons, it refuses to start (status 1) while its pid file exists, and writes it. With
$HT_HELPER_SECONDS set it starts a helper program that appends "generation N helper
done" to $HT_HELPER_MARKER after that many seconds.
"""

from __future__ import annotations

import os
import signal

import pytest

from support.load import LoadRunner
from support.proc import is_alive
from support.served import Served
from support.wait import wait_for

RESTARTS = 5


def pidfile_server(serve, tmp_path, *, exec_mode=False, options=()):
    pidfile = tmp_path / "server.pid"
    behaviour = tmp_path / "behaviour"
    _, served = serve("threaded", label="pidfile", exec_mode=exec_mode,
                      options=["--ready-timeout", "5", *options],
                      env={"HT_PIDFILE": str(pidfile), "HT_BEHAVIOUR_FILE": str(behaviour)})
    return served, pidfile, behaviour


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_unlink_lets_a_pid_file_server_restart(serve, port, tmp_path, mode):
    pidfile = tmp_path / "server.pid"
    served, pidfile, _ = pidfile_server(serve, tmp_path, exec_mode=mode == "exec",
                                        options=["--unlink", str(pidfile)])
    assert pidfile.read_text() == f"{served.leader}\n"
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(RESTARTS):
            before = load.snapshot().ok
            served.restart()
            load.wait_until(lambda r, b=before: r.saw(f"gen={served.generation}") and r.ok >= b + 20)
    assert load.result.failed == 0, load.result.summary()
    assert pidfile.read_text() == f"{served.leader}\n", "the pid file names the serving process"
    assert sorted(p.name for p in tmp_path.glob("server.pid*")) == ["server.pid"], \
        "nothing moved aside is left behind"
    served.stop()


def test_without_unlink_the_pid_file_blocks_the_restart(serve, tmp_path):
    """Negative control: the same server, no --unlink: every restart is rolled back."""
    served, pidfile, _ = pidfile_server(serve, tmp_path)
    assert "exited with status 1 before it was ready" in served.expect_rollback()
    assert pidfile.read_text() == f"{served.leader}\n"
    served.stop()


def test_unlink_puts_the_file_back_when_the_new_version_fails(serve, port, tmp_path):
    """The new version writes its pid file and then crashes: the old one keeps serving
    and its pid file is restored, not left naming a dead process."""
    pidfile = tmp_path / "server.pid"
    served, pidfile, behaviour = pidfile_server(serve, tmp_path, options=[f"--unlink={pidfile}"])
    behaviour.write_text("crash")
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        assert "exited with status 3 before it was ready" in served.expect_rollback()
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
    assert load.result.failed == 0, load.result.summary()
    assert pidfile.read_text() == f"{served.leader}\n"
    behaviour.write_text("")
    served.restart()
    assert pidfile.read_text() == f"{served.leader}\n"
    served.stop()


def helper_server(serve, tmp_path, seconds, *, exec_mode=False, options=()):
    marker = tmp_path / "helpers"
    marker.touch()
    _, served = serve("threaded", label="helper", exec_mode=exec_mode, options=options,
                      env={"HT_HELPER_SECONDS": str(seconds), "HT_HELPER_MARKER": str(marker)})
    helper = int(served.wait_log(r"generation 1 helper pid (\d+)").group(1))
    return served, marker, helper


def stop_leader(served: Served) -> None:
    """SIGTERM to the leader; its long helper outlives it and is left to the cleanup."""
    os.kill(served.leader, signal.SIGTERM)
    wait_gone(served.leader)


def wait_gone(*pids: int, timeout: float = 30.0) -> None:
    wait_for(lambda: not any(is_alive(pid) for pid in pids), timeout,
             lambda: f"end of {list(pids)}; still running: {[p for p in pids if is_alive(p)]}")


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_wait_lets_the_programs_children_finish(serve, port, tmp_path, mode):
    served, marker, helper = helper_server(serve, tmp_path, 1.5, exec_mode=mode == "exec",
                                           options=["--wait"])
    old = served.leader
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        served.restart()
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
    assert load.result.failed == 0, load.result.summary()
    if mode == "fork":
        wait_gone(old)
    served.wait_log(r"--wait: the 1 child process of generation 1 exited in \d+ ms")
    assert "generation 1 helper done" in marker.read_text()
    stop_leader(served)


def test_without_wait_the_programs_children_are_ended(serve, tmp_path):
    """Negative control: the same helper, no --wait: it is ended with its generation."""
    served, marker, helper = helper_server(serve, tmp_path, 30)
    old = served.leader
    served.restart()
    wait_gone(old, helper)
    assert "generation 1 helper done" not in marker.read_text()
    stop_leader(served)


def test_wait_is_bounded_by_the_drain_timeout(serve, tmp_path):
    served, marker, helper = helper_server(serve, tmp_path, 60,
                                           options=["--wait", "--drain-timeout", "1"])
    old = served.leader
    served.restart()
    served.wait_log(r"--wait: 1 of 1 child process of generation 1 still running at the "
                    r"drain timeout; ending them")
    wait_gone(old, helper)
    assert "generation 1 helper done" not in marker.read_text()
    stop_leader(served)
