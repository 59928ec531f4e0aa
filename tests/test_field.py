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
import time

import pytest

from support.huptime import run_huptime
from support.load import LoadRunner
from support.proc import is_alive, live_descendants
from support.wait import wait_for
from support.served import LogFile, Served
from support.servers import server_command

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
