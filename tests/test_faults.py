"""Faults from outside while a restart runs: a new generation killed or stopped before
it is ready, a worker or the leader of a draining generation killed, restart signals
during a drain, the instance record removed under a running server. Every case runs
under load and clients must not notice; afterwards nothing the server started may
be left running, stopped or orphaned.

Exec mode (--exec) has one process that drains and then becomes the new image: there
is no new generation beside the old one, no readiness pipe, no ready timeout and no
rollback (docs/protocol.md, "Restart, exec mode"). So the cases about a new generation
before it is ready (1, 2) and about the old leader dying while another generation
serves (4) do not apply to it: a SIGKILL there is simply the end of the server, as
for any process. Cases 3, 5 and 6 run in both modes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
from pathlib import Path

import psutil
import pytest

from support.huptime import run_huptime, status_json
from support.load import LoadRunner
from support.proc import is_alive, live_descendants
from support.served import Served
from support.wait import wait_for

SERVERS = Path(__file__).resolve().parent / "servers"
CLIENTS = 8
# The tests keep a generation draining with a request in progress (head not finished).
# --drain-idle 0: that connection is never shut down as idle, so the test is about its
# fault, not about how idle is told from busy.
KEEP_HELD = ["--drain-idle", "0"]


def slow_start(under_huptime, port: int, switch: Path, label: str,
               options: list[str]) -> Served:
    """tests/servers/slow_start_server.py under huptime, started and serving; it
    starts slowly once `switch` says `slow SECONDS`."""
    command = [sys.executable, str(SERVERS / "slow_start_server.py"), str(port)]
    return under_huptime(label, command, options=options,
                         env={"HT_BEHAVIOUR_FILE": str(switch)}).start()


def starting_pid(served: Served, generation: int, timeout: float = 30.0) -> int:
    """The PID of the process the leader started as `generation` (fork mode)."""
    return int(served.wait_log(rf"generation {generation} starting as pid (\d+)",
                               timeout).group(1))


def state_of(pid: int) -> str:
    """psutil's status of pid ("stopped", "zombie", ...), or "gone"."""
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return "gone"


def hold_connection(port: int) -> socket.socket:
    """A connection whose request head is not finished: the server keeps it open."""
    held = socket.create_connection(("127.0.0.1", port), timeout=30)
    held.sendall(b"GET / HTTP/1.0\r\n")
    return held


def serve_holding(serve, port: int, name: str, **options):
    """Server `name` started under huptime (options as for `serve`) with one connection
    held open on it, half a request, that the shim counts; returns (served, held)."""
    _, served = serve(name, **options)
    held = hold_connection(port)
    wait_for(lambda: status_json()[0]["connections"] == 1, 10, "the held connection")
    return served, held


def finish(held: socket.socket) -> bytes:
    """End the held request; the whole reply."""
    held.sendall(b"\r\n")
    reply = b""
    while chunk := held.recv(4096):
        reply += chunk
    held.close()
    return reply


def more_ok(load: LoadRunner, count: int = 50) -> None:
    """Wait until `count` more requests succeeded: the server still serves."""
    before = load.snapshot().ok
    load.wait_until(lambda r: r.ok >= before + count)


# --- 1, 2: the new generation killed or stopped before it is ready (fork mode) -------

def test_sigkill_of_the_new_generation_before_ready_rolls_back(under_huptime, port, tmp_path):
    switch = tmp_path / "behaviour"
    served = slow_start(under_huptime, port, switch, "fault-kill-new",
                        ["--ready-timeout", "30"])
    with LoadRunner(port, clients=CLIENTS, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        switch.write_text("slow 30")  # would be ready after 30 s: the window is ours
        start = served.logfile.poll()
        served.signal()
        new = starting_pid(served, 2)
        served.wait_log(rf"pid {new} starting slowly")
        os.kill(new, signal.SIGKILL)
        reason = served.logfile.wait(r"restart failed: (.*)", 10, start)[2].group(1)
        assert f"generation 2 (pid {new}) was killed by signal 9 before it was ready" in reason
        assert "generation 1 keeps serving" in reason
        more_ok(load)
        assert live_descendants() == [served.leader], "the killed generation is reaped"
        assert status_json()[0]["generation"] == 1
        switch.write_text("")  # the next restart still works
        served.restart()
        load.wait_until(lambda r: r.saw("gen=2"))
    result = load.result
    assert result.failed == 0, result.summary()
    assert {line.split()[1] for line in result.bodies_seen} == {"gen=1", "gen=2"}


def test_sigstop_of_the_new_generation_ends_at_the_ready_timeout(under_huptime, port, tmp_path):
    switch = tmp_path / "behaviour"
    served = slow_start(under_huptime, port, switch, "fault-stop-new",
                        ["--ready-timeout", "3"])
    with LoadRunner(port, clients=CLIENTS, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        switch.write_text("slow 1")  # ready well within 3 s, unless stopped
        start = served.logfile.poll()
        served.signal()
        new = starting_pid(served, 2)
        served.wait_log(rf"pid {new} starting slowly")
        os.kill(new, signal.SIGSTOP)
        assert wait_for(lambda: state_of(new) == psutil.STATUS_STOPPED, 5, "the stop")
        reason = served.logfile.wait(r"restart failed: (.*)", 10, start)[2].group(1)
        assert f"generation 2 (pid {new}) was not ready within 3000 ms" in reason
        more_ok(load)
        assert state_of(new) == "gone", "the stopped generation is killed and reaped"
        assert live_descendants() == [served.leader]
        served.restart()  # the file still says slow 1: ready in time when not stopped
        load.wait_until(lambda r: r.saw("gen=2"))
    result = load.result
    assert result.failed == 0, result.summary()


# --- 3: a worker of a draining generation killed ------------------------------------

def generation_processes(leader: int) -> list[int]:
    """The leader and every process below it (for a serving generation: its workers)."""
    try:
        return [leader, *(p.pid for p in psutil.Process(leader).children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def holder(pids: list[int], held: socket.socket) -> int:
    """Which of pids holds the server end of the held connection."""
    client = held.getsockname()
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.raddr and tuple(c.raddr) == client for c in conns):
            return pid
    raise AssertionError(f"no process of {pids} holds {client}")


def old_generation_gone(old: int, leader: int) -> bool:
    """The old leader has exited and every live process is the serving generation's
    (`leader` and its workers): nothing of the old one is left, orphaned or not."""
    return not is_alive(old) and set(live_descendants()) == set(generation_processes(leader))


def nothing_left_but(leader: int) -> str:
    """wait_for's `what`: every process gone but those of the generation led by leader."""
    return (f"end of every process but {generation_processes(leader)} (leader {leader} and "
            f"its workers); running: {[(p, state_of(p)) for p in live_descendants()]}")


def workers_of(leader: int) -> list[int]:
    """The leader's children (before a restart: its workers)."""
    return [p.pid for p in psutil.Process(leader).children()]


def start_drain(served: Served, exec_mode: bool) -> None:
    """Restart; return once generation 1 drains and holds only the held connection
    (the load's requests it had taken are answered: none is cut by a kill after)."""
    if exec_mode:
        start = served.logfile.poll()
        served.signal()
        served.logfile.wait(r"generation 1 stops accepting and drains", 10, start)
    else:
        served.restart()
    wait_for(lambda: [(g["generation"], g["connections"]) for g in status_json()[0]["draining"]]
             == [(1, 1)], 10, "generation 1 draining only the held connection")


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_sigkill_of_an_idle_worker_of_a_draining_generation(serve, port, mode):
    """nginx (master + 2 workers) drains a held connection in one worker; the other
    worker is killed. The master respawns it (fork is allowed until the drain ends);
    once the held request is answered the generation ends, all of it."""
    exec_mode = mode == "exec"
    served, held = serve_holding(serve, port, "nginx", exec_mode=exec_mode,
                                 options=["--drain-timeout", "20", *KEEP_HELD])
    old = served.leader
    busy = holder(workers_of(old), held)
    [idle] = [w for w in workers_of(old) if w != busy]
    # Exec mode: clients wait in the accept queue while the leader drains.
    with LoadRunner(port, clients=CLIENTS, duration=60.0, timeout=10.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        start_drain(served, exec_mode)
        os.kill(idle, signal.SIGKILL)
        served.wait_log(rf"worker process {idle} exited on signal 9", 10)
        assert is_alive(old) and is_alive(busy), "the generation still drains"
        assert b"200 OK" in finish(held)
        if exec_mode:
            served.wait_log(r"generation 2 serving", 15)
            assert not is_alive(busy) and not is_alive(idle)
            wait_for(lambda: set(live_descendants()) == set(generation_processes(old))
                     and len(live_descendants()) == 3, 10,
                     lambda: nothing_left_but(old))
        else:
            wait_for(lambda: old_generation_gone(old, served.leader), 10,
                     lambda: nothing_left_but(served.leader))
        more_ok(load)
    assert load.result.failed == 0, load.result.summary()
    # It ended because its connections were done, not at the drain timeout.
    assert exec_mode or re.search(r"generation 1 drained \d+ connections? in", served.log())
    assert "still open after the drain timeout" not in served.log()


def drain_with_holder_killed(serve, port, exec_mode: bool):
    """nginx drains one held connection (--drain-timeout 30 s); the worker holding it
    is killed (its client sees the connection end: that is what a killed worker
    does). Returns (served, old leader, load) with the load still running."""
    served, held = serve_holding(serve, port, "nginx", exec_mode=exec_mode,
                                 options=["--drain-timeout", "30", *KEEP_HELD])
    old = served.leader
    busy = holder(workers_of(old), held)
    load = LoadRunner(port, clients=CLIENTS, duration=60.0, timeout=10.0).start()
    try:
        load.wait_until(lambda r: r.ok >= 50)
        start_drain(served, exec_mode)
        os.kill(busy, signal.SIGKILL)
        assert closed_by_server(held) == b""
    except BaseException:
        load.stop()
        raise
    return served, old, load


def closed_by_server(held: socket.socket, timeout: float = 10.0) -> bytes:
    """What the client of a killed or stopped process gets, sending nothing more (a
    byte sent could still be answered by a process the signal has not reached yet):
    end of file or a reset gives b"", anything else is what the server wrote."""
    held.settimeout(timeout)
    reply = b""
    try:
        while chunk := held.recv(4096):
            reply += chunk
    except ConnectionResetError:
        pass
    finally:
        held.close()
    return reply


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_sigkill_of_the_worker_holding_a_draining_connection(serve, port, mode):
    """The killed worker never closes its connection, the kernel does: the generation
    holds nothing any more and ends at once, not at --drain-timeout (30 s here), and
    leaves nothing behind."""
    served, old, load = drain_with_holder_killed(serve, port, mode == "exec")
    try:
        if mode == "exec":
            served.wait_log(r"generation 2 serving", 5)
            wait_for(lambda: set(live_descendants()) == set(generation_processes(old))
                     and len(live_descendants()) == 3, 5, lambda: nothing_left_but(old))
        else:
            wait_for(lambda: old_generation_gone(old, served.leader), 5,
                     lambda: nothing_left_but(served.leader) + f"; status {status_json()}")
        more_ok(load)
    finally:
        load.stop()
    assert load.result.failed == 0, load.result.summary()
    assert "drain timeout" not in served.log()


def test_a_drain_timeout_ends_the_generation_on_sigterm(serve, port):
    """Where a worker's connection outlives --drain-timeout (1 s here) the generation
    is ended by SIGTERM: the master must get to exit cleanly, not be SIGKILLed."""
    served, held = serve_holding(serve, port, "nginx", options=["--drain-timeout", "1", *KEEP_HELD])
    old = served.leader
    with LoadRunner(port, clients=CLIENTS, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        start_drain(served, exec_mode=False)
        served.wait_log(r"generation 1: 1 connection still open after the drain timeout")
        assert closed_by_server(held) == b""
        wait_for(lambda: old_generation_gone(old, served.leader), 10,
                 lambda: nothing_left_but(served.leader))
    assert load.result.failed == 0, load.result.summary()
    assert "did not exit on SIGTERM" not in served.log()
    assert not re.search(rf"\b{old}#{old}: start worker process", served.log().split(
        "after the drain timeout", 1)[1]), "no worker is started once the drain is over"


# --- 4: the old leader killed while it drains (fork mode) ----------------------------

def assert_status_shows_only(leader: int, generation: int) -> None:
    """`huptime --status` names the serving generation and no dead one."""
    [inst] = status_json()
    assert (inst["generation"], inst["pid"], inst["draining"]) == (generation, leader, [])
    text = run_huptime("--status").stdout
    assert f"generation {generation}  pid {leader}  serving" in text
    assert text.count("  generation ") == 1, text


def test_sigkill_of_the_old_leader_while_it_drains(serve, port):
    """One process per generation: the new one keeps serving, --status forgets the
    dead one at once, nothing is left."""
    served, held = serve_holding(serve, port, "c-accept4", options=KEEP_HELD)
    old = served.leader
    with LoadRunner(port, clients=CLIENTS, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        start_drain(served, exec_mode=False)
        os.kill(old, signal.SIGKILL)
        assert closed_by_server(held) == b""
        wait_for(lambda: not is_alive(old), 5, "the old leader's end")
        assert_status_shows_only(served.leader, 2)
        more_ok(load)
        assert live_descendants() == [served.leader]
        served.restart()  # the new generation restarts as usual
        load.wait_until(lambda r: r.saw("gen=3"))
        assert_status_shows_only(served.leader, 3)
    assert load.result.failed == 0, load.result.summary()


def test_sigkill_of_the_old_leader_leaves_no_orphaned_workers(serve, port):
    served, held = serve_holding(serve, port, "nginx", options=KEEP_HELD)
    old = served.leader
    old_workers = workers_of(old)
    with LoadRunner(port, clients=CLIENTS, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        start_drain(served, exec_mode=False)
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: not is_alive(old), 5, "the old leader's end")
        assert_status_shows_only(served.leader, 2)
        more_ok(load)
        try:
            wait_for(lambda: old_generation_gone(old, served.leader), 5,
                     lambda: nothing_left_but(served.leader)
                     + f"; generation 1's workers were {old_workers}")
        finally:
            held.close()
    assert load.result.failed == 0, load.result.summary()


# --- 5: the restart signal during a drain --------------------------------------------

def restarts_started(served: Served) -> int:
    return len(re.findall(r"starting as pid|restart \(exec\):", served.log()))


def test_restart_signal_during_a_drain_fork_mode(serve, port):
    """Fork mode. To the draining old leader: ignored (a draining generation does not
    restart; it only finishes its connections and exits). To the new leader: it
    restarts again as usual, while the old one still drains; generation 3 serves,
    then 1 and 2 end. Clients see nothing of it."""
    served, held = serve_holding(serve, port, "c-accept4", options=KEEP_HELD)
    first = served.leader
    with LoadRunner(port, clients=CLIENTS, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        start_drain(served, exec_mode=False)
        os.kill(first, signal.SIGHUP)   # ignored: generation 1 drains
        second = served.leader
        served.restart()                # generation 2 restarts: generation 3
        load.wait_until(lambda r: r.saw("gen=3"))
        wait_for(lambda: not is_alive(second), 10, "generation 2's end")
        [inst] = status_json()
        assert inst["generation"] == 3
        assert [(g["generation"], g["pid"], g["state"]) for g in inst["draining"]] == \
            [(1, first, "draining")], "generation 1 still drains its held connection"
        os.kill(first, signal.SIGHUP)   # still ignored
        assert b"gen=1" in finish(held), "generation 1 answers the request it holds"
        wait_for(lambda: live_descendants() == [served.leader], 10,
                 lambda: f"generation 3 alone; running {live_descendants()}")
    assert load.result.failed == 0, load.result.summary()
    assert restarts_started(served) == 2, "only the serving leader restarted"
    assert "generation 1 drained" in served.log()


def test_restart_signal_during_a_drain_exec_mode(serve, port):
    """Exec mode: the draining leader is also the next generation, so a restart
    signal that arrives while it drains is not ignored but kept for later: the new
    image gets HUPTIME_PENDING and restarts once more as soon as it is ready
    (generation 3). Clients wait in the accept queue meanwhile; none fails."""
    served, held = serve_holding(serve, port, "c-accept4", options=KEEP_HELD, exec_mode=True)
    leader = served.leader
    with LoadRunner(port, clients=CLIENTS, duration=60.0, timeout=10.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        start_drain(served, exec_mode=True)
        os.kill(leader, signal.SIGHUP)  # during the drain
        os.kill(leader, signal.SIGHUP)  # coalesced with the one before
        assert b"gen=1" in finish(held)
        served.wait_log(r"generation 3 serving", 15)
        load.wait_until(lambda r: r.saw("gen=3"))
        assert status_json()[0]["generation"] == 3
        assert live_descendants() == [leader]
    assert load.result.failed == 0, load.result.summary()
    assert restarts_started(served) == 2


# --- 6: the instance record removed under a running server ----------------------------

@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_removed_record_leaves_serving_and_signal_restarts_alone(serve, port, mode):
    server, served = serve("c-accept4", exec_mode=mode == "exec")
    record = Path(status_json()[0]["record"])
    with LoadRunner(port, clients=CLIENTS, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        shutil.rmtree(record)
        more_ok(load)
        served.restart()                # by signal: needs no record
        load.wait_until(lambda r: r.saw("gen=2"))
        for action in ("--status", "--restart", "--stop"):
            done = run_huptime(action, "--", *server.command)
            assert done.returncode != 0, (action, done.stdout)
            assert done.stderr.count("\n") == 1 and done.stdout == "", (action, done.stderr)
        assert run_huptime("--status").returncode != 0
        more_ok(load)                   # --stop did not stop it
        served.restart()
        load.wait_until(lambda r: r.saw("gen=3"))
        wait_for(lambda: live_descendants() == [served.leader], 10,
                 lambda: f"generation 3 alone; running {live_descendants()}")
    assert load.result.failed == 0, load.result.summary()
    assert not record.exists(), "nothing recreated a half record"
    assert "no instance record in" in served.log()


def test_control_commands_say_the_record_is_gone(serve, port):
    server, served = serve("c-accept4")
    shutil.rmtree(status_json()[0]["record"])
    for action in ("--status", "--restart", "--stop"):
        done = run_huptime(action, "--", *server.command)
        assert done.returncode != 0 and done.stderr.count("\n") == 1, (action, done.stderr)
        assert "record" in done.stderr, (action, done.stderr)
    assert is_alive(served.leader)
