"""Programs the preload cannot enter: refused at once, and restarted with --listen.

The server is a static Go binary built here (servers/listen_server.go, CGO_ENABLED=0):
it takes fd 3 when LISTEN_PID is its own PID, sends READY=1 to NOTIFY_SOCKET, and
drains on SIGTERM. huptime binds, holds the sockets, and passes them to each new
generation; load runs through every restart.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from support.build import build_c, root_only_port
from support.huptime import clean_env, run_huptime, status_json
from support.load import LoadRunner, run_load
from support.proc import live_descendants
from support.served import Served
from support.servers import SERVERS_DIR
from support.wait import wait_for

GO_SOURCE = SERVERS_DIR / "listen_server.go"
MARKER_SOURCE = r"""
#include <stdio.h>
int main(int argc, char **argv) { FILE *f = fopen(argv[1], "w"); return f ? 0 : 1; }
"""


@pytest.fixture(scope="session")
def go_server(build_dir) -> Path:
    """The static Go test server, built once per session."""
    go = shutil.which("go")
    if not go:
        if os.environ.get("HUPTIME_REQUIRE_GO"):
            pytest.fail("go is required here (HUPTIME_REQUIRE_GO) but not installed")
        pytest.skip("go is not installed (Debian: golang-go)")
    out = build_dir / "listen-server"
    if not out.exists():
        env = {**os.environ, "CGO_ENABLED": "0",
               "GOCACHE": os.environ.get("GOCACHE", str(build_dir / "gocache")),
               "GOPATH": str(build_dir / "gopath")}
        subprocess.run([go, "build", "-o", str(out), str(GO_SOURCE)], env=env, check=True,
                       timeout=600, capture_output=True)
    return out


class Listening(Served):
    """A --listen instance: the restart signal and SIGTERM go to huptime itself,
    which stays the programs' parent (self.leader follows the program's PID)."""

    supervisor = 0

    def start(self, timeout: float = 30.0) -> Listening:
        super().start(timeout)
        self.supervisor = self.leader
        return self

    def signal(self) -> None:
        os.kill(self.supervisor, self.signum)

    def stop(self, timeout: float = 30.0) -> None:
        os.kill(self.supervisor, signal.SIGTERM)
        wait_for(lambda: not live_descendants(), timeout,
                 lambda: f"end after SIGTERM; still running: {live_descendants()}")


@pytest.fixture
def listening(xprocess, go_server, tmp_path):
    """listening(options, env=None): the Go server under `huptime OPTIONS --`, started."""
    from support.served import XprocessStarter

    def start(options: list[str], env: dict[str, str] | None = None,
              label: str = "go-listen", program: Path | None = None) -> Listening:
        behaviour = tmp_path / "behaviour"
        behaviour.touch()
        env = {"HT_BEHAVIOUR_FILE": str(behaviour), **(env or {})}
        served = Listening(XprocessStarter(xprocess, label), [str(program or go_server)],
                           options=options, env=env)
        served.behaviour = behaviour
        return served.start()
    return start


# --- refusing what the preload cannot enter ----------------------------------

@pytest.fixture
def unpreloadable(tmp_path, build_dir, go_server):
    """kind -> a program the shim cannot enter, that would write its argv[1] if run."""
    source = tmp_path / "marker.c"
    source.write_text(MARKER_SOURCE)
    static = build_c(build_dir, source, "marker-static", ["-static"])
    dynamic = build_c(build_dir, source, "marker-dynamic")
    setuid = tmp_path / "marker-setuid"
    shutil.copy(dynamic, setuid)
    script = tmp_path / "marker-script"
    script.write_text(f"#!{static}\n")
    script.chmod(0o755)
    programs = {"static": (static, "statically linked"), "go": (go_server, "Go program"),
                "script": (script, "statically linked")}
    if os.geteuid() == 0:
        os.chown(setuid, 65534, 65534)
        setuid.chmod(0o4755)
        programs["setuid"] = (setuid, "set-user-ID")
    return programs


@pytest.mark.parametrize("kind", ["static", "go", "setuid", "script"])
def test_programs_the_preload_cannot_enter_are_refused_before_they_start(
        unpreloadable, tmp_path, kind):
    if kind not in unpreloadable:
        pytest.skip("making a set-user-ID program of another user needs root")
    program, why = unpreloadable[kind]
    marker = tmp_path / f"ran-{kind}"
    done = run_huptime("--", str(program), str(marker), env=clean_env())
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and why in lines[0] and "--listen" in lines[0], done.stderr
    assert not marker.exists()


def test_a_dynamic_program_is_not_refused(tmp_path, build_dir):
    source = tmp_path / "marker.c"
    source.write_text(MARKER_SOURCE)
    dynamic = build_c(build_dir, source, "marker-dynamic")
    marker = tmp_path / "ran"
    done = run_huptime("--", str(dynamic), str(marker), env=clean_env())
    assert done.returncode == 0, done
    assert marker.exists()


# --- --listen ------------------------------------------------------------------

@pytest.mark.parametrize("ready,restarts,seen", [
    ("auto", 20, r"READY=1 on NOTIFY_SOCKET|seen in /proc"),
    ("proc", 5, r"seen in /proc"),
    ("notify", 5, r"READY=1 on NOTIFY_SOCKET"),
    ("delay:0.2", 3, r"alive after 0.2 s"),
])
def test_a_static_go_server_restarts_under_load(listening, port, ready, restarts, seen):
    served = listening(["--listen", f"127.0.0.1:{port}", "--ready", ready])
    fds = len(os.listdir(f"/proc/{served.supervisor}/fd"))
    with LoadRunner(port, clients=8, duration=120.0, path="/slow") as load:
        load.wait_until(lambda r: r.ok >= 20)
        for _ in range(restarts):
            served.restart()
            before = load.snapshot().ok
            load.wait_until(lambda r, b=before: r.saw(f"gen={served.generation}") and r.ok >= b + 8)
    assert load.result.failed == 0, load.result.summary()
    readies = re.findall(r"ready in \d+ ms \((.*)\)", served.log())
    assert len(readies) == restarts and all(re.search(seen, how) for how in readies), readies
    # Old generations are gone: only huptime and the serving program are left.
    wait_for(lambda: len(live_descendants()) == 2, 30, lambda: str(live_descendants()))
    count = lambda: len(os.listdir(f"/proc/{served.supervisor}/fd"))  # noqa: E731
    wait_for(lambda: count() == fds, 10, lambda: f"{count()} fds, {fds} at start")  # none kept
    served.stop()


def test_a_dynamic_python_server_waiting_in_poll_is_seen_ready_in_proc(xprocess, port):
    """--listen for a program the shim could enter too: no preload, readiness read from
    the pollfd array in /proc/PID/mem."""
    from support.served import XprocessStarter
    command = [sys.executable, str(SERVERS_DIR / "activated_server.py")]
    served = Listening(XprocessStarter(xprocess, "py-listen"), command,
                       options=["--listen", f"127.0.0.1:{port}", "--ready", "proc"]).start()
    result = served.restarts_under_load(port, 5, path="/slow")
    assert result.failed == 0, result.summary()
    assert "LD_PRELOAD" not in open(f"/proc/{served.leader}/environ").read()
    served.stop()


def test_a_broken_new_version_is_rolled_back(listening, port):
    served = listening(["--listen", f"127.0.0.1:{port}", "--ready-timeout", "2"])
    command = served.command
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        served.behaviour.write_text("crash")
        done = run_huptime("--restart", "--", *command)
        crashed = time.monotonic()
        assert done.returncode == 1 and "exited with status 3 before it was ready" in \
            done.stderr, done
        served.behaviour.write_text("hang")
        done = run_huptime("--restart", "--", *command)
        assert done.returncode == 1 and "not ready within --ready-timeout 2 s" in done.stderr, done
        [instance] = status_json(command)
        assert instance["generation"] == 1 and instance["last_failure"], instance
        served.behaviour.write_text("")
        done = run_huptime("--restart", "--", *command)
        assert done.returncode == 0, done
        load.wait_until(lambda r: r.saw("gen=4"))
    assert load.result.failed == 0, load.result.summary()
    assert not load.result.saw("gen=2") and not load.result.saw("gen=3")
    # Once the crashed generation's grace (5 s) is over, huptime sleeps: it once woke
    # without end for a generation that had nothing left to end.
    time.sleep(max(0.0, crashed + 6 - time.monotonic()))
    huptime = psutil.Process(served.supervisor)
    before = sum(huptime.cpu_times()[:2])
    time.sleep(2)
    spent = sum(huptime.cpu_times()[:2]) - before
    assert spent < 0.3, f"huptime used {spent:.2f} s of CPU in 2 s with nothing to do"
    served.stop()


def test_a_unix_socket_and_the_control_commands(listening, tmp_path):
    path = tmp_path / "s.sock"
    served = listening(["--listen", f"web=unix:{path}"])
    with LoadRunner(0, unix=str(path), clients=4, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        for n in (2, 3):
            done = run_huptime("--restart", "--", *served.command)
            assert done.returncode == 0 and f"generation {n}" in done.stdout, done
            load.wait_until(lambda r, n=n: r.saw(f"gen={n}"))
    assert load.result.failed == 0, load.result.summary()
    [instance] = status_json(served.command)
    assert instance["mode"] == "listen" and instance["listeners"] == [f"unix:{path}"], instance
    done = run_huptime("--stop", "--", *served.command)
    assert done.returncode == 0, done
    assert not live_descendants()


def test_multi_copies_and_revive(listening, port):
    served = listening(["--listen", f"127.0.0.1:{port}", "--multi", "2"])
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: len({b for b in r.bodies_seen}) >= 2)
        done = run_huptime("--restart", "--", *served.command)
        assert done.returncode == 0 and "2 copies serving" in done.stdout, done
        load.wait_until(lambda r: sum("gen=2" in b for b in r.bodies_seen) >= 2)
    assert load.result.failed == 0, load.result.summary()
    [instance] = status_json(served.command)
    program = instance["pid"]
    os.kill(program, signal.SIGKILL)
    served.wait_log(rf"\(pid {program}\) was killed by signal 9 .* started again")
    wait_for(lambda: run_load(port, clients=1, max_requests=5).ok == 5, 30, "served again")
    served.stop()


@pytest.fixture
def public_copy(go_server):
    """The Go server copied where user nobody may run it (the test's own directories
    are private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="huptime-listen-"))
    try:
        directory.chmod(0o755)
        program = directory / "listen-server"
        shutil.copy(go_server, program)
        yield program
    finally:
        shutil.rmtree(directory)


def test_user_runs_the_program_unprivileged_on_a_privileged_port(listening, public_copy):
    if os.geteuid() != 0:
        pytest.skip("--user needs root")
    port = root_only_port(0)
    if not port:
        pytest.skip("every port may be bound without root here")
    served = listening(["--listen", f"127.0.0.1:{port}", "--user", "nobody"],
                       program=public_copy)
    result = run_load(port, clients=2, max_requests=10)
    assert result.ok == 10 and result.saw("uid=65534"), result.summary()
    served.restart()
    result = run_load(port, clients=2, max_requests=10)
    assert result.saw("gen=2") and result.saw("uid=65534"), result.summary()
    served.stop()


@pytest.mark.parametrize("args,message", [
    (["--ready", "proc"], "--ready goes with --listen"),
    (["--user", "nobody"], "--user goes with --listen"),
    (["--listen", "localhost:80"], "not an IP address"),
    (["--listen", "127.0.0.1:0"], "port from 1 to 65535"),
    (["--listen", "unix:relative"], "absolute path"),
    (["--listen", ":8080", "--exec"], "--exec does not apply to --listen"),
    (["--listen", ":8080", "--ready", "later"], "expected auto, notify, proc or delay"),
    (["--listen", ":8080", "--user", "no-such-user-here"], "no such user"),
])
def test_listen_usage_errors(args, message):
    done = run_huptime(*args, "--", "/bin/true", env=clean_env())
    assert done.returncode == 2 and message in done.stderr, done
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_an_address_in_use_is_one_line_and_nothing_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        marker = tmp_path / "ran"
        done = run_huptime("--listen", f"127.0.0.1:{port}", "--", "/usr/bin/touch", str(marker),
                           env=clean_env())
    assert done.returncode == 1 and "Address already in use" in done.stderr, done
    assert not marker.exists()


def test_a_first_start_that_fails_ends_huptime_with_its_status(go_server, tmp_path, port):
    behaviour = tmp_path / "behaviour"
    behaviour.write_text("crash")
    done = run_huptime("--listen", f"127.0.0.1:{port}", "--", str(go_server),
                       env=clean_env({"HT_BEHAVIOUR_FILE": str(behaviour)}))
    assert done.returncode == 3, done
    assert "generation 1 (pid" in done.stderr and "exited with status 3" in done.stderr, done
    assert not live_descendants()


def test_sockets_systemd_passed_to_huptime_are_passed_on(xprocess, go_server, port):
    """systemd's own systemd-socket-activate starts huptime with LISTEN_FDS: that
    socket goes first (fd 3, the one the Go server takes), --listen's after it."""
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        pytest.skip("systemd-socket-activate is not installed (Debian: systemd)")
    from support.served import XprocessStarter
    other = root_only_port(0) or port + 1
    served = Listening(XprocessStarter(xprocess, "socket-activate"), [str(go_server)],
                       options=["--listen", f"extra=127.0.0.1:{other}"],
                       wrapper=[activate, "-l", f"127.0.0.1:{port}", "--fdname=web"])
    first = []  # systemd-socket-activate execs huptime on the first connection only
    poke = threading.Thread(target=lambda: first.append(wait_for(
        lambda: run_load(port, clients=1, max_requests=1, timeout=30).ok, 30, "first reply")))
    poke.start()
    served.start()
    poke.join(60)
    assert first == [1]
    program = int(re.search(r"generation 1 serving \(pid (\d+)", served.log()).group(1))
    environ = dict(line.split("=", 1) for line in
                   Path(f"/proc/{program}/environ").read_text().split("\0") if "=" in line)
    assert environ["LISTEN_FDS"] == "2" and environ["LISTEN_FDNAMES"] == "web:extra", environ
    result = served.restarts_under_load(port, 3)
    assert result.failed == 0, result.summary()
    served.stop()


def test_an_old_generation_that_ignores_the_drain_signal_is_killed_after_drain_timeout(
        listening, port):
    served = listening(["--listen", f"127.0.0.1:{port}", "--drain-signal", "WINCH",
                        "--drain-timeout", "1"])
    old = int(re.search(r"generation 1 serving \(pid (\d+)", served.log()).group(1))
    served.restart()
    served.wait_log(r"generation 2 serving; generation 1 gets SIGWINCH")
    served.wait_log(r"generation 1 still runs after its time; SIGKILL", timeout=10)
    wait_for(lambda: not os.path.exists(f"/proc/{old}"), 10, f"pid {old} gone")
    assert run_load(port, clients=1, max_requests=3).saw("gen=2")
    served.stop()


def test_listen_mode_speaks_sd_notify_for_the_service(listening, port, tmp_path):
    from support.notify import ServiceManager
    manager = ServiceManager(tmp_path / "notify")
    try:
        served = listening(["--listen", f"127.0.0.1:{port}"],
                           env={"NOTIFY_SOCKET": manager.path})
        pid, fields = manager.next()
        assert pid == served.supervisor and fields["READY"] == "1", (pid, fields)
        served.restart()
        pid, fields = manager.next()
        assert pid == served.supervisor and fields["RELOADING"] == "1", fields
        pid, fields = manager.next()
        assert fields["READY"] == "1" and "generation 2 serving" in fields["STATUS"], fields
        served.stop()
        assert manager.next()[1]["STOPPING"] == "1"
    finally:
        manager.close()
