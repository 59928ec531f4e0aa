"""--check CMD refuses a restart into a version that fails its pre-flight check, and
--drain-signal lets a program drain its own way (nginx QUIT). Real servers, under load."""

from __future__ import annotations

import pytest

from support.huptime import run_huptime, status_json
from support.load import LoadRunner
from support.proc import live_descendants
from support.wait import wait_for

# Fails, with a line of output, while the file BROKEN exists in the start directory.
CHECK = 'echo "checking"; test ! -e BROKEN || { echo "config error on line 3" >&2; exit 1; }'


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_a_failing_check_refuses_the_restart_and_says_why(serve, port, tmp_path, mode):
    _, served = serve("c-accept4", options=["--check", CHECK], exec_mode=mode == "exec",
                      cwd=tmp_path)
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        served.restart()  # the check passes
        (tmp_path / "BROKEN").write_text("")
        done = run_huptime("--restart", "--", *served.command)
        assert done.returncode == 1, done.stderr
        assert "--check exited with status 1: checking | config error on line 3" in done.stderr
        served.wait_log(r"restart refused: --check exited with status 1: checking \| config "
                        r"error on line 3; generation 2 keeps serving")
        [inst] = status_json()
        assert inst["generation"] == 2
        assert inst["last_failure"] == {
            "generation": 3, "reason": "--check exited with status 1: checking | config error "
                                       "on line 3"}
        text = run_huptime("--status").stdout
        assert "last restart failed: generation 3 --check exited with status 1" in text
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
        (tmp_path / "BROKEN").unlink()
        served.restart()
        load.wait_until(lambda r: r.saw("gen=3"))
    assert load.result.failed == 0, load.result.summary()
    assert status_json()[0]["last_failure"] is None
    served.stop()


def test_a_check_that_hangs_is_ended_at_the_ready_timeout(serve, port, tmp_path):
    marker = tmp_path / "check-ran"
    _, served = serve("c-accept4", options=["--ready-timeout", "1", "--check",
                                            f"touch {marker}; exec sleep 60"])
    with LoadRunner(port, clients=4, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        reason = run_huptime("--restart", "--", *served.command).stderr
        assert "--check did not finish within 1000 ms" in reason
        assert marker.exists()
        wait_for(lambda: live_descendants() == [served.leader], 10,
                 "the check's process to be gone", detail=lambda: str(live_descendants()))
    assert load.result.failed == 0, load.result.summary()
    served.stop()


def test_drain_signal_lets_nginx_stop_its_own_way(serve, port):
    _, served = serve("nginx", options=["--drain-signal", "QUIT", "--drain-timeout", "60"])
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(3):
            old = served.leader
            served.restart()
            served.wait_log(rf"sending signal 3 to pid {old} \(--drain-signal\)")
            wait_for(lambda: old not in live_descendants(), 20,
                     f"the old nginx master {old} to exit")
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
    assert load.result.failed == 0, load.result.summary()
    served.stop()


def test_a_failing_check_keeps_a_multi_pool_on_its_version(serve, port, tmp_path):
    """--multi 2: each copy checks before its own restart; a failing check refuses it."""
    server, served = serve("threaded", options=["--multi", "2", "--check", CHECK], cwd=tmp_path)
    wait_for(lambda: len([g for g in status_json()[0]["generations"]
                          if g["state"] == "serving"]) == 2, 20, "2 copies serving")
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        (tmp_path / "BROKEN").write_text("")
        done = run_huptime("--restart", "--", *server.command)
        assert done.returncode == 1, done.stderr
        assert "--check exited with status 1: checking | config error on line 3" in done.stderr
        (tmp_path / "BROKEN").unlink()
        done = run_huptime("--restart", "--", *server.command)
        assert done.returncode == 0, done.stderr
        load.wait_until(lambda r: r.saw("gen=2"))
    assert load.result.failed == 0, load.result.summary()
