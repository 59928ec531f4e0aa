"""What goes wrong in real deployments: a new version that crashes or hangs at start,
slow requests in flight, signal storms, signals sent to every process of a tree,
and a server that uses SIGHUP itself. Clients must never notice."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from support.load import LoadRunner
from support.proc import live_descendants, signal_masks
from support.served import Served
from support.wait import wait_for


def wait_quiet(served: Served, processes: int, timeout: float = 30.0) -> None:
    """Every restart attempt finished and only `processes` processes are left."""
    def counts() -> tuple[int, int, list[int]]:
        log = served.log()
        return (len(re.findall(r"starting as pid", log)),
                len(re.findall(r"\) ready in|restart failed", log)), live_descendants())

    def quiet() -> bool:
        started, settled, alive = counts()
        return started == settled and len(alive) == processes

    wait_for(quiet, timeout, "quiet", every=0.05,
             detail=lambda: "{} started, {} settled, processes {}".format(*counts()))


@pytest.mark.parametrize("behaviour,expected", [
    ("crash", "exited with status 3 before it was ready"),
    ("hang", "was not ready within 1000 ms"),
])
def test_broken_new_version_is_rolled_back(serve, port, tmp_path, behaviour, expected):
    switch = tmp_path / "behaviour"
    _, served = serve("threaded", options=["--ready-timeout", "1"],
                      env={"HT_BEHAVIOUR_FILE": str(switch)})
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        switch.write_text(behaviour)
        for _ in range(3):
            reason = served.expect_rollback()
            assert expected in reason
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
        # The old generation still serves, alone: no broken child left behind.
        assert live_descendants() == [served.leader]
        switch.write_text("serve")
        served.restart()
        load.wait_until(lambda r: r.saw("gen=2"))
    result = load.result
    assert result.failed == 0, result.summary()
    assert {line.split()[1] for line in result.bodies_seen} == {"gen=1", "gen=2"}


@pytest.mark.parametrize("mode", ["fork", "exec"])
@pytest.mark.parametrize("name", ["threaded", "c-accept4"])
def test_slow_requests_in_flight_are_not_cut(serve, port, name, mode):
    _, served = serve(name, exec_mode=mode == "exec")
    with LoadRunner(port, path="/slow", clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 16)
        for _ in range(10):
            served.restart()
            load.wait_until(lambda r, g=served.generation: r.saw(f"gen={g}"))
    result = load.result
    assert result.failed == 0, result.summary() + "\n" + "\n".join(result.error_samples)
    assert result.min_latency >= 0.3


def test_signal_storm_gives_no_pile_up(serve, port):
    """100 restart signals in 2 s, each to the newest leader: 0 failed, 1 process after."""
    _, served = serve("threaded")
    leader_re = re.compile(r"generation \d+ \(pid (\d+)\) ready")
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(100):
            leaders = leader_re.findall(served.log())
            target = int(leaders[-1]) if leaders else served.leader
            try:
                os.kill(target, signal.SIGHUP)
            except ProcessLookupError:
                pass
            time.sleep(0.02)
        wait_quiet(served, processes=1)
    result = load.result
    assert result.failed == 0, result.summary()
    restarts = len(re.findall(r"\) ready in", served.log()))
    assert 1 <= restarts <= 100
    assert "restart failed" not in served.log()


def test_signal_to_every_process_gives_one_restart(serve, port):
    """`killall -HUP nginx`: master and workers all get it, exactly one restart happens."""
    _, served = serve("nginx")
    tree = [served.leader, *[p for p in live_descendants() if p != served.leader]]
    assert len(tree) >= 3, "master and two workers"
    with LoadRunner(port, clients=8, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for pid in tree:
            os.kill(pid, signal.SIGHUP)
        served.wait_log(r"generation 2 serving")
        wait_quiet(served, processes=3)
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
    assert load.result.failed == 0, load.result.summary()
    assert len(re.findall(r"starting as pid", served.log())) == 1


def test_chosen_signal_leaves_the_programs_own_hup_alone(serve, port):
    """With --signal USR2, nginx keeps its SIGHUP (reload) and USR2 restarts."""
    _, served = serve("nginx", options=["--signal", "USR2"], signum=signal.SIGUSR2)
    with LoadRunner(port, clients=8, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        os.kill(served.leader, signal.SIGHUP)
        served.wait_log(r"reconfiguring")          # nginx's own reload ran
        served.restart()
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
    assert load.result.failed == 0, load.result.summary()
    assert len(re.findall(r"starting as pid", served.log())) == 1


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_every_generation_starts_with_the_first_ones_signals(serve, mode):
    """Signals ignored at the first start (nohup, `trap ''`) stay ignored in every
    generation, and nothing else arrives ignored: the exec path carries every signal
    ignored through execve and the new image's shim must put them back."""
    _, served = serve("c-accept4", exec_mode=mode == "exec",
                      wrapper=["/bin/sh", "-c", "trap '' USR1 URG; exec \"$@\"", "sh"])
    first = signal_masks(served.leader)
    usr1 = 1 << (signal.SIGUSR1 - 1)
    assert int(first["SigIgn"], 16) & usr1
    for _ in range(3):
        served.restart()
        assert signal_masks(served.leader) == first
    served.stop()
