"""Daemonizing programs: fork, the parent exits, the child calls setsid() and serves.
The child takes over as the generation's leader, so restarts keep working, and in
fork mode the parent's exit is not taken for a failed start."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from support.load import LoadRunner
from support.proc import is_alive
from support.wait import wait_for

SERVER = Path(__file__).parent / "servers" / "daemon_server.py"
RESTARTS = 5


def daemon_pid(pidfile: Path, not_this: int = 0, timeout: float = 30.0) -> int:
    """The pid the daemon wrote, once it is a live process other than not_this."""
    def new_pid() -> int:
        try:
            pid = int(pidfile.read_text())
        except (OSError, ValueError):
            return 0
        return pid if pid != not_this and is_alive(pid) else 0

    return wait_for(new_pid, timeout, f"new daemon pid in {pidfile}")


@pytest.mark.parametrize("mode", ["fork", "exec"])
@pytest.mark.parametrize("bind_first", [False, True], ids=["bind-after-fork", "bind-before-fork"])
def test_a_daemonizing_server_restarts_under_load(under_huptime, port, tmp_path, mode, bind_first):
    pidfile = tmp_path / "daemon.pid"
    served = under_huptime("daemon", [sys.executable, str(SERVER), str(port)],
                           exec_mode=mode == "exec",
                           env={"HT_PIDFILE": str(pidfile),
                                "HT_DAEMON_BIND_FIRST": "1" if bind_first else "0"}).start()
    served.leader = daemon_pid(pidfile, not_this=served.leader)
    assert f"pid {served.leader} took over as leader" in served.log()
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(RESTARTS):
            old = served.leader
            before = load.snapshot().ok
            served.restart()
            served.leader = daemon_pid(pidfile, not_this=old)
            load.wait_until(lambda r, b=before: r.saw(f"gen={served.generation}") and r.ok >= b + 20)
    assert load.result.failed == 0, load.result.summary()
    assert "restart failed" not in served.log()
    assert served.log().count("took over as leader") == RESTARTS + 1
    served.stop()


def test_a_broken_daemon_is_rolled_back_and_killed(under_huptime, port, tmp_path):
    pidfile, behaviour = tmp_path / "daemon.pid", tmp_path / "behaviour"
    served = under_huptime("daemon-broken", [sys.executable, str(SERVER), str(port)],
                           options=["--ready-timeout", "3"],
                           env={"HT_PIDFILE": str(pidfile),
                                "HT_BEHAVIOUR_FILE": str(behaviour)}).start()
    served.leader = first = daemon_pid(pidfile, not_this=served.leader)
    behaviour.write_text("hang")
    assert served.expect_rollback().endswith("was not ready within 3000 ms; generation 1 keeps serving")
    hung = int(pidfile.read_text())
    assert hung != first, "the new version's daemon wrote its pid file"
    wait_for(lambda: not is_alive(hung), 10, "end of the hung daemon (it was not killed)")
    behaviour.write_text("crash")
    assert "lost its daemon process" in served.expect_rollback()
    behaviour.write_text("")
    with LoadRunner(port, clients=4, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        served.restart()
        load.wait_until(lambda r: r.saw(f"gen={served.generation}"))
    assert load.result.failed == 0, load.result.summary()
    served.stop()


def test_revive_follows_a_daemon_and_revives_it(under_huptime, port, tmp_path):
    """Under --revive the daemonizing parent's exit is not a crash; the daemon's is."""
    import os
    import signal

    from support.load import run_load

    pidfile = tmp_path / "daemon.pid"
    served = under_huptime("daemon-revive", [sys.executable, str(SERVER), str(port)],
                           options=["--revive"], env={"HT_PIDFILE": str(pidfile)}).start()
    first = daemon_pid(pidfile)
    assert run_load(port, clients=4, duration=0.5).failed == 0
    assert "--revive:" not in served.log(), "the daemonizing parent's exit is no crash"
    os.kill(first, signal.SIGKILL)
    served.wait_log(rf"--revive: generation 1 \(pid {first}\) was killed by signal 9")
    second = daemon_pid(pidfile, not_this=first)
    served.wait_log("generation 2 serving")
    result = run_load(port, clients=4, duration=0.5)
    assert result.failed == 0 and result.saw("gen=2"), result.summary()
    assert served.log().count("--revive:") == 1
    assert is_alive(second)
