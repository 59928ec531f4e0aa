"""--restart, --status and --stop against real servers, and what they must never touch.

Each test gets its own runtime directory ($XDG_RUNTIME_DIR), so the instances it
sees are exactly the ones it started.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time

import pytest

from support.huptime import HUPTIME, status_json
from support.huptime import run_huptime as control
from support.load import LoadRunner
from support.process import WatchedProcess
from support.proc import is_alive, live_descendants
from support.wait import wait_for

RESTARTS = 5


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_restart_waits_for_the_new_generation_under_load(serve, port, runtime, mode):
    server, served = serve("threaded", label="control", exec_mode=mode == "exec")
    [inst] = status_json(server.command)
    assert (inst["pid"], inst["generation"], inst["mode"]) == (served.leader, 1, mode)
    assert inst["listeners"] == [f"127.0.0.1:{port}"]
    assert inst["signal"] == "HUP" and inst["draining"] == []

    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for n in range(2, RESTARTS + 2):
            done = control("--restart", "--", *server.command)
            assert done.returncode == 0, done.stderr
            assert f"generation {n} (pid " in done.stdout and "serving" in done.stdout
            # When --restart returns, the new generation is already serving.
            [inst] = status_json(server.command)
            assert inst["generation"] == n
            before = load.snapshot().ok
            load.wait_until(lambda r, b=before, n=n: r.saw(f"gen={n}") and r.ok >= b + 20)
    assert load.result.failed == 0, load.result.summary()
    if mode == "exec":
        assert inst["pid"] == served.leader, "exec mode keeps the PID"

    text = control("--status", "--", *server.command)
    assert text.returncode == 0
    assert f"generation {RESTARTS + 1}  pid {inst['pid']}  serving" in text.stdout
    assert f"127.0.0.1:{port}" in text.stdout

    done = control("--stop", "--", *server.command)
    assert done.returncode == 0, done.stderr
    assert "exited on SIGTERM" in done.stdout
    assert live_descendants() == [], "--stop returns once every process is gone"
    assert list(runtime.iterdir()) == [], "the record of a stopped instance is removed"
    assert control("--status", "--", *server.command).returncode == 3


def test_restart_reports_a_rollback_and_the_old_generation_keeps_serving(
        serve, tmp_path, runtime):
    behaviour = tmp_path / "behaviour"
    server, served = serve("threaded", label="control-rollback", options=["--ready-timeout", "5"],
                           env={"HT_BEHAVIOUR_FILE": str(behaviour)})
    behaviour.write_text("crash")
    done = control("--restart", "--", *server.command)
    assert done.returncode == 1
    assert "restart failed" in done.stderr and "exited with status 3 before it was ready" in done.stderr
    assert f"generation 1 (pid {served.leader}) keeps serving" in done.stderr

    behaviour.write_text("hang")
    done = control("--restart", "--", *server.command)
    assert done.returncode == 1 and "was not ready within 5000 ms" in done.stderr

    [inst] = status_json(server.command)
    assert (inst["pid"], inst["generation"]) == (served.leader, 1)
    behaviour.write_text("")
    assert control("--restart", "--", *server.command).returncode == 0


def test_restart_reports_an_exec_image_that_dies(serve, tmp_path, runtime):
    behaviour = tmp_path / "behaviour"
    server, served = serve("threaded", label="control-exec-dies", exec_mode=True,
                           env={"HT_BEHAVIOUR_FILE": str(behaviour)})
    behaviour.write_text("crash")
    done = control("--restart", "--", *server.command)
    assert done.returncode == 1
    assert f"pid {served.leader} exited during the restart" in done.stderr
    assert control("--status").returncode == 3


def test_status_shows_a_draining_generation_and_its_connection(
        serve, port, runtime):
    server, served = serve("threaded", label="control-drain", options=["--drain-timeout", "60"])
    held = socket.create_connection(("127.0.0.1", port))
    held.sendall(b"GET / HTTP/1.0\r\n")  # the head is not finished: the server waits
    wait_for(lambda: status_json(server.command)[0]["connections"] == 1, what="1 connection")
    assert control("--restart", "--", *server.command).returncode == 0

    [inst] = status_json(server.command)
    assert inst["generation"] == 2 and inst["pid"] != served.leader
    [old] = inst["draining"]
    assert (old["generation"], old["pid"], old["state"], old["connections"]) == \
        (1, served.leader, "draining", 1)
    assert f"generation 1  pid {served.leader}  draining  1 connection" in \
        control("--status").stdout

    held.sendall(b"\r\n")
    held.settimeout(30)
    reply = b""
    while chunk := held.recv(4096):
        reply += chunk
    held.close()
    assert b"gen=1" in reply, "the old generation finishes the request it holds"
    wait_for(lambda: status_json(server.command)[0]["draining"] == [], what="the old generation to exit")
    wait_for(lambda: not is_alive(served.leader), what="the old leader to exit")


IGNORES_TERM = """import signal, socket, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
while True:
    s.accept()[0].close()
"""


def test_stop_kills_what_ignores_sigterm_after_the_timeout(under_huptime, port, tmp_path, runtime):
    script = tmp_path / "stubborn.py"
    script.write_text(IGNORES_TERM)
    command = [sys.executable, str(script), str(port)]
    served = under_huptime("control-stubborn", command).start()
    started = time.monotonic()
    done = control("--stop", "--timeout", "1", "--", *command)
    assert done.returncode == 0, done.stderr
    assert "killed after 1 s" in done.stdout
    assert time.monotonic() - started >= 1.0
    assert not is_alive(served.leader)


def test_a_lookalike_process_is_never_found_or_signalled(port, tmp_path, runtime):
    """Same command line, not started by huptime; then a forged record naming it."""
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with WatchedProcess(command) as stranger:
        stranger.wait_for_line("Serving HTTP", 20)
        for action in ("--status", "--restart", "--stop"):
            done = control(action, "--", *command)
            assert done.returncode == 3 and "no running instance" in done.stderr, action

        forged = runtime / f"{stranger.pid}-forged"
        runtime.mkdir(mode=0o700)
        forged.mkdir(mode=0o700)
        (forged / "instance.json").write_text(json.dumps(
            {"version": 1, "pid": stranger.pid, "command": command, "program": sys.executable,
             "mode": "fork", "signal": 1, "started": time.time()}))
        page = bytearray(4096)  # a well-formed page naming the stranger as a leader
        page[16:24] = stranger.pid.to_bytes(4, "little") + (1).to_bytes(4, "little")
        page[12:16] = (1).to_bytes(4, "little")
        (forged / "gen-1").write_bytes(bytes(page))
        for action in ("--status", "--restart", "--stop"):
            done = control(action, "--", *command)
            assert done.returncode == 3, (action, done.stdout, done.stderr)
        time.sleep(0.2)  # a signal, had one been sent, has had time to act
        assert is_alive(stranger.pid), "the stranger was signalled"
        assert stranger.popen.poll() is None


def test_control_command_errors_are_one_line(runtime):
    cases = [
        (["--restart"], 2, "--restart needs the COMMAND"),
        (["--json", "--restart", "x"], 2, "--json goes with --status"),
        (["--status", "--stop", "x"], 2, "--status and --stop exclude each other"),
        (["--exec", "--status"], 2, "--exec applies to starting a server, not to --status"),
        (["--timeout", "0", "--stop", "x"], 2, "--timeout needs"),
        (["--json", "true"], 2, "--json goes with --restart, --status or --stop"),
        (["--status"], 3, "no running instance"),
        (["--stop", "no-such-server"], 3, "no running instance of 'no-such-server'"),
    ]
    for args, status, text in cases:
        done = control(*args)
        assert done.returncode == status, (args, done.stderr)
        assert text in done.stderr and done.stderr.count("\n") == 1, (args, done.stderr)


def test_an_unsafe_runtime_directory_is_refused_not_used(runtime, port):
    runtime.mkdir(mode=0o700)
    runtime.chmod(0o777)
    done = control("--status")
    assert done.returncode == 1 and "is not a private directory" in done.stderr
    # Starting a server still works: it runs without a record, and says so.
    with WatchedProcess([*HUPTIME, sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                         str(port)]) as server:
        server.wait_for_line("generation 1 serving", 20)
        assert "warning: no instance record" in server.output()
        assert list(runtime.iterdir()) == []
        server.popen.send_signal(signal.SIGTERM)
        server.wait(10)


def test_a_page_being_created_is_not_pruned(serve, runtime):
    """A gen-N file whose version is not written yet (a generation mapping it right
    now) survives the pruning every control command does."""
    serve("threaded", label="control-prune")
    [record] = list(runtime.iterdir())
    fresh = record / "gen-7"
    fresh.write_bytes(bytes(4096))  # as open(O_TRUNC) + ftruncate leave it
    assert control("--status").returncode == 0
    assert fresh.exists(), "pruned while its generation may still be writing it"
