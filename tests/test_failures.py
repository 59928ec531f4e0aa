"""What goes wrong in real deployments: a new version that crashes or hangs at start,
slow requests in flight, signal storms, signals sent to every process of a tree,
and a server that uses SIGHUP itself. Clients must never notice."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from harness import Served
from support.tree import live_descendants
from servers_under_test import make_server
from support.load import LoadRunner


def served_server(xprocess, name, port, tmp_path, build_dir, *, exec_mode=False, options=(),
                  env=None, nginx=None):
    server = make_server(name, port, tmp_path, build_dir, nginx)
    served = Served(xprocess, name, server.command, exec_mode=exec_mode,
                    options=list(options), env=env)
    return server, served.start()


def wait_quiet(served: Served, processes: int, timeout: float = 30.0) -> None:
    """Every restart attempt finished and only `processes` processes are left."""
    deadline = time.monotonic() + timeout
    while True:
        log = served.log()
        started = len(re.findall(r"starting as pid", log))
        settled = len(re.findall(r"\) ready in|restart failed", log))
        alive = live_descendants()
        if started == settled and len(alive) == processes:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not quiet: {started} started, {settled} settled, "
                               f"processes {alive}")
        time.sleep(0.05)


@pytest.mark.parametrize("behaviour,expected", [
    ("crash", "exited with status 3 before it was ready"),
    ("hang", "was not ready within 1000 ms"),
])
def test_broken_new_version_is_rolled_back(xprocess, port, tmp_path, build_dir, behaviour, expected):
    switch = tmp_path / "behaviour"
    _, served = served_server(xprocess, "threaded", port, tmp_path, build_dir,
                              options=["--ready-timeout", "1"],
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
def test_slow_requests_in_flight_are_not_cut(xprocess, port, tmp_path, build_dir, name, mode):
    _, served = served_server(xprocess, name, port, tmp_path, build_dir, exec_mode=mode == "exec")
    with LoadRunner(port, path="/slow", clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 16)
        for _ in range(10):
            served.restart()
            load.wait_until(lambda r, g=served.generation: r.saw(f"gen={g}"))
    result = load.result
    assert result.failed == 0, result.summary() + "\n" + "\n".join(result.error_samples)
    assert result.min_latency >= 0.3


def test_signal_storm_gives_no_pile_up(xprocess, port, tmp_path, build_dir):
    """100 restart signals in 2 s, each to the newest leader: 0 failed, 1 process after."""
    _, served = served_server(xprocess, "threaded", port, tmp_path, build_dir)
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


def test_signal_to_every_process_gives_one_restart(xprocess, port, tmp_path, build_dir, nginx_bin):
    """`killall -HUP nginx`: master and workers all get it, exactly one restart happens."""
    _, served = served_server(xprocess, "nginx", port, tmp_path, build_dir, nginx=nginx_bin)
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


def test_chosen_signal_leaves_the_programs_own_hup_alone(xprocess, port, tmp_path, build_dir, nginx_bin):
    """With --signal USR2, nginx keeps its SIGHUP (reload) and USR2 restarts."""
    _, served = served_server(xprocess, "nginx", port, tmp_path, build_dir, nginx=nginx_bin,
                              options=["--signal", "USR2"])
    served.signum = signal.SIGUSR2
    with LoadRunner(port, clients=8, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        os.kill(served.leader, signal.SIGHUP)
        served.wait_log(r"reconfiguring")          # nginx's own reload ran
        served.restart()
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
    assert load.result.failed == 0, load.result.summary()
    assert len(re.findall(r"starting as pid", served.log())) == 1


def signal_state(pid: int) -> dict[str, str]:
    """Ignored, caught and blocked signal masks of a process, from /proc."""
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key in ("SigIgn", "SigCgt", "SigBlk"):
            fields[key] = value.strip()
    return fields


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_every_generation_starts_with_the_first_ones_signals(xprocess, port, tmp_path, build_dir, mode):
    """Signals ignored at the first start (nohup, `trap ''`) stay ignored in every
    generation, and nothing else arrives ignored: the exec path carries every signal
    ignored through execve and the new image's shim must put them back."""
    server = make_server("c-accept4", port, tmp_path, build_dir, None)
    served = Served(xprocess, "c-accept4", server.command, exec_mode=mode == "exec")
    served.args = ["/bin/sh", "-c", "trap '' USR1 URG; exec \"$@\"", "sh", *served.args]
    served.start()
    first = signal_state(served.leader)
    usr1 = 1 << (signal.SIGUSR1 - 1)
    assert int(first["SigIgn"], 16) & usr1
    for _ in range(3):
        served.restart()
        assert signal_state(served.leader) == first
    served.stop()
