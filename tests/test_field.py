"""Servers as they are built in the field.

- A program that supports inherited sockets checks SO_ACCEPTCONN and skips listen() on a
  socket that already listens: its claimed listener counts all the same.
- A program whose listener the shim never sees (made by raw system calls, as Go's net
  package does): a restart signal never vanishes. It goes to the program's own handler,
  or is dropped rather than ending the server, with one line saying so; `huptime
  --restart` refuses at once with the reason.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import psutil

import pytest

from support.huptime import run_huptime, status_json
from support.load import LoadRunner
from support.proc import is_alive, live_descendants
from support.wait import wait_for
from support.served import LogFile, Served
from support.servers import SERVERS_DIR as SERVERS, server_command

RESTARTS = 5


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_a_claimed_listener_counts_without_listen(serve, port, mode):
    _, served = serve("blocking", env={"HT_LISTEN_IF_NEEDED": "1"}, exec_mode=mode == "exec",
                      options=["--ready-timeout", "5"])
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(RESTARTS):
            served.restart()
            before = load.snapshot().ok
            load.wait_until(lambda r, b=before: r.saw(f"gen={served.generation}") and
                            r.ok >= b + 20)
    assert load.result.failed == 0, load.result.summary()
    assert served.generation == RESTARTS + 1
    served.stop()


def start_unseen(under_huptime, command: list[str], label: str, **options) -> Served:
    """Start command under huptime (options as for Served); the shim never sees it wait
    for clients, so there is no "generation 1 serving" line: the program's own
    "listening on" line is waited for."""
    served = under_huptime(label, command, **options)
    served.leader, logpath = served.starter.launch(served.args, served.env, served.cwd,
                                                   "listening on", 30)
    served.logfile = LogFile(logpath)
    served.generation = 1
    return served


UNSERVED = r"restart signal: no listening socket seen, so no restart; "


@pytest.mark.parametrize("handler", [True, False], ids=["own-handler", "no-handler"])
def test_a_restart_signal_without_a_seen_listener_is_the_programs(
        under_huptime, port, build_dir, handler):
    command = [*server_command("c-rawsock", port, build_dir), *(["handler"] if handler else [])]
    served = start_unseen(under_huptime, command, f"rawsock-{handler}")
    with LoadRunner(port, clients=8, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        started = time.monotonic()
        done = run_huptime("--restart", "--", *command, timeout=10)
        assert done.returncode == 1, done.stderr
        assert "has no listening socket huptime could see" in done.stderr, done.stderr
        assert time.monotonic() - started < 5, "refused at once, not after a timeout"
        for n in range(1, 4):  # one at a time: pending signals of one kind merge
            os.kill(served.leader, signal.SIGHUP)
            if handler:
                served.wait_log(r"program got SIGHUP", count=n)
        if handler:
            served.wait_log(UNSERVED + r"passed to the program's own handler")
        else:
            served.wait_log(UNSERVED + r"ignored \(its default action would end the server\)")
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
    assert load.result.failed == 0, load.result.summary()
    assert is_alive(served.leader)
    assert served.log().count("restart signal: no listening socket seen") == 1, "said once"
    served.stop()


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_the_log_survives_a_daemon_pointing_stdio_at_dev_null(serve, port, tmp_path, mode):
    """huptime's lines, and a new generation's own start-up output, still reach the
    launch's stderr after the program pointed 0-2 at /dev/null."""
    switch = tmp_path / "behaviour"
    _, served = serve("blocking", exec_mode=mode == "exec", options=["--ready-timeout", "5"],
                      env={"HT_DEVNULL_STDIO": "1", "HT_BEHAVIOUR_FILE": str(switch)})
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(2):
            served.restart()  # waits for the shim's lines of each generation
            before = load.snapshot().ok
            load.wait_until(lambda r, b=before: r.saw(f"gen={served.generation}") and
                            r.ok >= b + 20)
        if mode == "fork":  # a broken version says why, on the launch's output
            switch.write_text("crash")
            assert "exited with status 3" in served.expect_rollback()
            served.wait_log(r"^crashing$")
    assert load.result.failed == 0, load.result.summary()
    served.stop()


def test_a_rolled_back_generation_finishes_the_clients_it_took(under_huptime, port, build_dir,
                                                                 tmp_path):
    """A program that accepts where the shim cannot see it wait (a raw accept4 system call,
    as io_uring servers do) is never ready: at --ready-timeout (2 s) the new generation is
    rolled back. The clients it took off the shared queue meanwhile (it holds each 0.5 s)
    are answered, not reset: it stops accepting, finishes them and exits by itself; the
    old generation serves on. Its first restart signal ends the wait for readiness of a
    generation that reports to nobody, so the signal is not kept forever."""
    switch = tmp_path / "behaviour"
    served = start_unseen(under_huptime, server_command("c-rawaccept", port, build_dir),
                          "rawaccept", options=["--ready-timeout", "2", "--drain-timeout", "30"],
                          env={"HT_BEHAVIOUR_FILE": str(switch)})
    with LoadRunner(port, clients=8, duration=60.0, timeout=10.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        switch.write_text("slow")
        assert "was not ready within 2000 ms" in served.expect_rollback()
        assert load.snapshot().saw("gen=2"), "generation 2 took clients before its rollback"
        log = served.log()
        assert "a restart signal came before the shim saw the program wait" in log
        assert re.search(r"rollback: generation 2 \(pid \d+\) holds \d+ connections?", log), log
        assert "generation 2: generation 1 gave this restart up" in log
        served.wait_log(r"generation 2 \(pid \d+\) finished its connections in \d+ ms")
        wait_for(lambda: live_descendants() == [served.leader], 10,
                 lambda: f"only generation 1 left: {live_descendants()}")
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
    assert load.result.failed == 0, load.result.summary()
    served.stop()


def answered_by(load: LoadRunner, words: str, count: int = 20) -> None:
    """Wait until a reply's body had `words` and `count` more requests succeeded."""
    before = load.snapshot().ok
    load.wait_until(lambda r: any(words in body for body in r.bodies_seen) and
                    r.ok >= before + count)


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_a_program_that_execs_itself_keeps_its_generation(serve, port, mode):
    """A server that reloads by exec'ing itself, same PID, keeping its listener open
    (tests/servers/reexec_server.c, on SIGUSR2): the new image's listener is still the
    generation's, blocking as the program expects; restarts keep working, and start the
    program as it was first started (not with the descriptor numbers its own exec
    passed). Under load, re-execs and restarts in turn: 0 failed."""
    _, served = serve("c-reexec", exec_mode=mode == "exec")
    with LoadRunner(port, clients=8, duration=120.0, timeout=10.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(2):
            start = served.logfile.poll()
            os.kill(served.leader, signal.SIGUSR2)
            served.logfile.wait(rf"generation {served.generation}: pid {served.leader} is a new "
                                r"image \(.*\) with 1 listening socket kept", 10, start)
            answered_by(load, f"gen={served.generation} image=1")
            served.restart()
            answered_by(load, f"gen={served.generation} image=0")
    assert load.result.failed == 0, load.result.summary()
    assert "accept:" not in served.log(), "the program's accept never failed"
    [inst] = status_json()
    assert inst["generation"] == 3 and inst["pid"] == served.leader
    served.stop()


def test_workers_started_by_exec_make_a_restart_refused(under_huptime, port):
    """A parent that binds and starts its workers by fork+exec (a new program each, the
    listener passed by number): the shim does not follow them (its state does not cross
    their exec), so they could never be told to stop accepting and would be ended with
    the clients they hold. A restart is refused before anything starts, with the reason,
    and the server serves on undisturbed."""
    command = [sys.executable, str(SERVERS / "exec_workers_server.py"), str(port)]
    served = start_unseen(under_huptime, command, "exec-workers")
    workers = psutil.Process(served.leader).children()
    assert len(workers) == 2
    refused = (rf"restart refused: pid ({'|'.join(str(w.pid) for w in workers)}) "
               rf"\(python[\d.]*\) holds the listener 127\.0\.0\.1:{port}, but it runs a "
               r"program the leader started by exec")
    with LoadRunner(port, clients=8, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        done = run_huptime("--restart", "--", *command, timeout=30)
        assert done.returncode == 1, done.stderr
        assert "was started by exec, which huptime does not follow" in done.stderr, done.stderr
        served.wait_log(refused, 10)
        os.kill(served.leader, signal.SIGHUP)  # the signal itself: refused the same way
        served.wait_log(refused, 10, count=2)
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
    assert load.result.failed == 0, load.result.summary()
    assert psutil.Process(served.leader).children() == workers, "nothing was restarted"
    assert "generation 2 starting" not in served.log()
    served.stop()
