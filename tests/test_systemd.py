"""systemd, spoken natively.

Socket activation, for real: systemd-socket-activate (Debian's systemd package) binds,
then execs huptime with LISTEN_FDS; the unmodified server under it binds the same
address itself and must get the passed socket, in every generation. sd_notify: the
tests play systemd's side of NOTIFY_SOCKET and check each message's sender and fields.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from support.build import free_port
from support.huptime import HUPTIME, clean_env
from support.load import LoadRunner, run_load
from support.notify import ServiceManager
from support.proc import live_descendants
from support.served import Served, XprocessStarter
from support.servers import SERVERS_DIR, server_command
from support.wait import wait_for

ACTIVATE = shutil.which("systemd-socket-activate")
RESTARTS = 5

needs_activate = pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate is not "
                                                         "installed (Debian: systemd)")


def start_activated(xprocess, name: str, command: list[str], ports: list[int],
                    **options) -> Served:
    """command under huptime under systemd-socket-activate listening on ports; the
    activator execs huptime at the first connection, which is made here (and must be
    answered)."""
    wrapper = [ACTIVATE, *(f"--listen=127.0.0.1:{p}" for p in ports)]
    served = Served(XprocessStarter(xprocess, name), command, wrapper=wrapper, **options)
    answered = []
    poke = threading.Thread(target=lambda: answered.append(wait_for(
        lambda: run_load(ports[0], clients=1, max_requests=1, timeout=30).ok, 30,
        "the first connection answered")))
    poke.start()
    served.start()
    poke.join(60)
    assert answered == [1]
    return served


@needs_activate
@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_an_unmodified_server_serves_from_the_passed_socket(xprocess, port, build_dir, mode):
    served = start_activated(xprocess, f"activate-{mode}", server_command("threaded", port,
                             build_dir), [port], exec_mode=mode == "exec")
    result = served.restarts_under_load(port, RESTARTS, warm=50)
    assert result.failed == 0, result.summary()
    assert "Address already in use" not in served.log()
    served.stop()


@needs_activate
def test_a_passed_socket_the_program_does_not_bind_stays_open(xprocess, port, build_dir):
    other = free_port()
    served = start_activated(xprocess, "activate-two", server_command("threaded", port,
                             build_dir), [port, other])
    served.wait_log(r"generation 1: 1 inherited listener not bound by the program within "
                    r"\d+ ms; left open and unused")
    assert run_load(port, clients=2, max_requests=10).ok == 10
    served.stop()


# --- sd_notify: playing systemd's side ---------------------------------------

@pytest.fixture
def manager(tmp_path):
    found = ServiceManager(tmp_path / "notify")
    yield found
    found.close()


def expect_reloading(message: tuple[int, dict[str, str]], main: int) -> None:
    pid, fields = message
    assert pid == main and fields.get("RELOADING") == "1", message
    assert abs(int(fields["MONOTONIC_USEC"]) - time.monotonic_ns() // 1000) < 60_000_000


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_notify_ready_reloading_and_the_main_pid_handover(serve, port, manager, tmp_path, mode):
    behaviour = tmp_path / "behaviour"
    behaviour.touch()
    _, served = serve("threaded", exec_mode=mode == "exec", options=["--ready-timeout", "5"],
                      env={"NOTIFY_SOCKET": manager.path, "HT_BEHAVIOUR_FILE": str(behaviour)})
    main = served.leader
    pid, fields = manager.next()
    assert pid == main and fields["READY"] == "1" and "generation 1 serving" in fields["STATUS"]
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        for n in (2, 3):
            served.restart()
            expect_reloading(manager.next(), main)
            pid, fields = manager.next()
            assert pid == main and fields["READY"] == "1", (pid, fields)
            if mode == "fork":  # one message from the old main PID names the new one
                assert fields["MAINPID"] == str(served.leader) != str(main), fields
                main = served.leader
            else:
                assert "MAINPID" not in fields and served.leader == main
            assert f"generation {n} serving" in fields["STATUS"], fields
        if mode == "fork":
            behaviour.write_text("crash")
            served.expect_rollback()
            expect_reloading(manager.next(), main)
            pid, fields = manager.next()
            assert pid == main and fields["READY"] == "1" and "MAINPID" not in fields, fields
            assert "restart failed: generation 4" in fields["STATUS"], fields
            assert "exited with status 3" in fields["STATUS"], fields
    assert load.result.failed == 0, load.result.summary()
    assert manager.pending() == []
    served.stop()


def test_the_program_never_sees_the_service_managers_socket(manager):
    done = subprocess.run([*HUPTIME, "--", sys.executable, "-c",
                           "import os; print('seen:', os.environ.get('NOTIFY_SOCKET'))"],
                          capture_output=True, text=True, timeout=60,
                          env=clean_env({"NOTIFY_SOCKET": manager.path}))
    assert done.returncode == 0 and manager.path not in done.stdout, done
    assert re.search(r"seen: @huptime-notify-\d+$", done.stdout.strip()), done.stdout


def test_notify_from_a_supervisor_that_stays_the_main_pid(serve, port, manager, tmp_path):
    """--revive (and --multi, --listen, PID 1): huptime's own process stays the main PID
    and speaks for the service; the program's generations never do."""
    behaviour = tmp_path / "behaviour"
    behaviour.touch()
    _, served = serve("threaded", options=["--revive", "--ready-timeout", "5"],
                      env={"NOTIFY_SOCKET": manager.path, "HT_BEHAVIOUR_FILE": str(behaviour)})
    main = served.leader  # the supervisor: the shim's log names generations, not it
    pid, fields = manager.next()
    assert pid == main and fields["READY"] == "1" and "generation 1" in fields["STATUS"]
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        os.kill(main, signal.SIGHUP)
        expect_reloading(manager.next(), main)
        pid, fields = manager.next()
        assert pid == main and fields["READY"] == "1" and "generation 2" in fields["STATUS"]
        behaviour.write_text("crash")
        os.kill(main, signal.SIGHUP)
        expect_reloading(manager.next(), main)
        pid, fields = manager.next()
        assert pid == main and fields["READY"] == "1", fields
        assert "restart failed: generation 3" in fields["STATUS"], fields
    assert load.result.failed == 0, load.result.summary()
    os.kill(main, signal.SIGTERM)
    pid, fields = manager.next()
    assert pid == main and fields["STOPPING"] == "1", fields
    wait_for(lambda: not live_descendants(), 30, "stopped")


# --- the fd store ----------------------------------------------------------------

def start_from_store(manager, command: list[str], log_path: Path) -> subprocess.Popen:
    """Start huptime as systemd does after `systemctl restart` with a unit's fd store:
    the stored descriptors at 3.., LISTEN_FDS, LISTEN_PID its own PID, the names."""
    stored = list(manager.stored)

    def place() -> None:  # in the child: the stored listeners at 3, 4, ...
        high = [os.dup(fd) for fd in stored]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)

    env = clean_env({"LISTEN_FDS": str(len(stored)),
                     "LISTEN_FDNAMES": ":".join(["huptime"] * len(stored))})
    script = 'export LISTEN_PID=$$; exec "$@"'  # the PID the exec keeps
    with open(log_path, "ab") as log:
        return subprocess.Popen(["/bin/sh", "-c", script, "sh", *HUPTIME, "--", *command],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=place, pass_fds=list(range(3, 3 + len(stored))))


@pytest.mark.parametrize("options", [[], ["--revive"]], ids=["shim", "supervisor"])
def test_the_fd_store_keeps_the_queue_through_a_crash_of_every_process(
        serve, port, manager, tmp_path, options):
    _, served = serve("threaded", options=options,
                      env={"NOTIFY_SOCKET": manager.path, "FDSTORE": "1"})
    wait_for(lambda: manager.pending() is not None and manager.stored, 10,
             "listeners in the fd store")  # pending() reads what came, stored() keeps fds
    assert len(manager.stored) == 1
    for pid in live_descendants():  # every process of the service dies at once
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not live_descendants(), 10, "the crash")
    served.reap()
    # Clients that connect now wait in the stored listener's queue.
    with LoadRunner(port, clients=4, duration=60.0, timeout=30.0) as load:
        time.sleep(0.3)  # they are queued now: nothing accepts
        assert load.snapshot().total == 0
        log_path = tmp_path / "second-start.log"
        second = start_from_store(manager, served.command, log_path)
        load.wait_until(lambda r: r.ok >= 40, timeout=30)
    assert load.result.failed == 0, load.result.summary()
    assert "generation 1 serving" in log_path.read_text()
    second.send_signal(signal.SIGTERM)
    second.wait(30)
    wait_for(lambda: not live_descendants(), 30, "stopped")


def test_stopping_when_the_serving_program_ends(manager):
    program = ("import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
               "s.settimeout(1.0)\ntry:\n    s.accept()\nexcept OSError:\n    pass")
    done = subprocess.run([*HUPTIME, "--", sys.executable, "-c", program], capture_output=True,
                          text=True, timeout=60, env=clean_env({"NOTIFY_SOCKET": manager.path}))
    assert done.returncode == 0, done
    messages = manager.pending()
    assert [list(fields)[0] for _, fields in messages] == ["READY", "STOPPING"], messages
    assert len({pid for pid, _ in messages}) == 1


@pytest.mark.parametrize("options", [[], ["--revive"]], ids=["main", "supervised"])
def test_a_program_that_speaks_sd_notify_is_cut_over_only_after_its_ready(
        under_huptime, port, manager, options):
    """Its READY=1 (sent HT_NOTIFY_DELAY after it serves) counts: once generation 1 sent
    one, each new generation is ready only after its own; its STATUS= is passed on from
    the main process; its STOPPING=1 and MAINPID=1 never reach the service manager."""
    command = [sys.executable, str(SERVERS_DIR / "notifying_server.py"), str(port)]
    served = under_huptime("notifying", command, options=[*options, "--ready-timeout", "10"],
                           env={"NOTIFY_SOCKET": manager.path, "HT_NOTIFY_DELAY": "0.6"}).start()
    served.wait_log(r"the program speaks sd_notify")
    main = served.leader  # huptime's process (the supervisor with --revive)
    messages = manager.pending()
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        for _ in range(2):
            served.restart()
        messages += manager.pending()
    assert load.result.failed == 0, load.result.summary()
    took = [int(ms) for ms in re.findall(r"ready in (\d+) ms", served.log())]
    assert len(took) == 2 and min(took) >= 550, took  # waited for the program's READY=1
    statuses = [fields.get("STATUS", "") for _, fields in messages]
    if not options:  # passed on by the main process; a supervisor speaks for itself
        assert "app generation 1 warmed up" in statuses, messages
    assert all("STOPPING" not in fields and fields.get("MAINPID") != "1"
               for _, fields in messages), messages
    os.kill(main if options else served.leader, signal.SIGTERM)
    wait_for(lambda: not live_descendants(), 30, "stopped")
