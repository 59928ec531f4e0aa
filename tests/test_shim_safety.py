"""The shim never breaks a program: corrupt or foreign state gives one log line and
plain libc behaviour; programs the server runs are not touched."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from huptime.launcher import shim_path
from support.build import free_port
from support.huptime import clean_env
from support.load import run_load
from support.process import WatchedProcess
from support.servers import server_command

BASE = {"HUPTIME_MODE": "fork"}


def shim_env(**settings: str) -> dict[str, str]:
    return clean_env({"LD_PRELOAD": str(shim_path()), **settings})


def under_shim(command: list[str], env: dict[str, str]) -> WatchedProcess:
    """Exec the command with HUPTIME_PID set to its own PID, as the launcher does."""
    return WatchedProcess(["/bin/sh", "-c", 'export HUPTIME_PID=$$; exec "$@"', "sh", *command],
                          env=env)


@pytest.mark.parametrize("settings,logged", [
    ({**BASE, "HUPTIME_FDS": "zz"}, "ignoring HUPTIME_FDS=zz"),
    ({**BASE, "HUPTIME_FDS": "0,1"}, "ignoring inherited descriptor 0"),
    ({**BASE, "HUPTIME_READY_FD": "1"}, "ignoring HUPTIME_READY_FD=1"),
    ({**BASE, "HUPTIME_READY_FD": "99"}, "ignoring HUPTIME_READY_FD=99"),
    ({"HUPTIME_MODE": "sideways"}, "ignoring settings: HUPTIME_MODE=sideways"),
    ({**BASE, "HUPTIME_SIGNAL": "9"}, "ignoring settings: HUPTIME_SIGNAL=9"),
    ({**BASE, "HUPTIME_DRAIN_TIMEOUT_MS": "-1"}, "ignoring settings: HUPTIME_DRAIN_TIMEOUT_MS"),
])
def test_corrupt_state_is_logged_once_and_the_server_serves(port, build_dir, settings, logged):
    with under_shim(server_command("threaded", port, build_dir), shim_env(**settings)) as server:
        server.wait_for_line(f"listening on {port}", timeout=20)
        result = run_load(port, clients=4, duration=0.5)
        assert result.failed == 0 and result.ok > 0, result.summary()
        assert server.output().count(logged) == 1, server.output()
        assert "Traceback" not in server.output()


def test_foreign_process_is_inert(port, build_dir):
    """HUPTIME_PID names another process (the server's own child programs): plain libc,
    SIGHUP keeps its default action."""
    env = shim_env(**BASE, HUPTIME_PID="1")
    with WatchedProcess(server_command("threaded", port, build_dir), env=env) as server:
        server.wait_for_line(f"listening on {port}", timeout=20)
        assert run_load(port, clients=2, duration=0.3).failed == 0
        os.kill(server.pid, signal.SIGHUP)
        assert server.wait(10) == -signal.SIGHUP
        assert "huptime[" not in server.output()


def test_program_closing_all_descriptors_keeps_working(port, tmp_path):
    """os.closerange (close_range) over the shim's own descriptors at start-up."""
    script = tmp_path / "closer.py"
    script.write_text(
        "import os, runpy, sys\n"
        "os.closerange(3, 65536)\n"
        f"sys.path.insert(0, {os.path.join(os.path.dirname(__file__), 'servers')!r})\n"
        f"sys.argv = ['threaded_server.py', '{port}']\n"
        f"runpy.run_path({str(os.path.join(os.path.dirname(__file__), 'servers', 'threaded_server.py'))!r},"
        " run_name='__main__')\n")
    env = shim_env(**BASE, HUPTIME_DEBUG="0")
    with under_shim([sys.executable, str(script)], env) as server:
        server.wait_for_line(f"listening on {port}", timeout=20)
        server.wait_for_line("generation 1 serving", timeout=20)
        os.kill(server.pid, signal.SIGHUP)
        server.wait_for_line("generation 2 serving", timeout=20)
        result = run_load(port, clients=4, duration=0.5)
        assert result.failed == 0 and result.saw("gen=2"), result.summary()


def test_thread_blocked_in_accept_can_be_cancelled(port, tmp_path):
    """accept() stays a cancellation point under the shim's blocking emulation."""
    source = os.path.join(os.path.dirname(__file__), "servers", "cancel_accept.c")
    binary = tmp_path / "cancel_accept"
    subprocess.run(["cc", "-O2", "-pthread", "-o", str(binary), source], check=True, timeout=60)
    with under_shim([str(binary), str(port)], shim_env(**BASE)) as program:
        program.wait_for_line("generation 1 serving", timeout=20)
        assert program.wait_for_line("cancelled", timeout=20) == "cancelled"
        program.wait_for_line(f"listening on {port}", timeout=20)
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
        assert program.wait_for_line("accept", timeout=20) == "accepted"


@pytest.mark.parametrize("how", ["pthread_exit", "cancel"])
def test_process_ends_when_the_programs_threads_have(port, tmp_path, how):
    """A main thread that ends first (pthread_exit, or a cancel) leaves a worker; when
    the worker returns, the process ends with status 0 as it does bare: the shim's
    restart thread does not keep it alive."""
    source = os.path.join(os.path.dirname(__file__), "servers", "main_exits.c")
    binary = tmp_path / "main_exits"
    subprocess.run(["cc", "-O2", "-pthread", "-o", str(binary), source], check=True, timeout=60)
    extra = ["cancel"] if how == "cancel" else []
    # a port each: the first run's connection, closed by the server, may hold its port
    for shim, where in ((False, port), (True, free_port())):
        argv = [str(binary), str(where), *extra]
        with under_shim(argv, shim_env(**BASE)) if shim else WatchedProcess(argv) as program:
            program.wait_for_line(f"listening on {where}", timeout=20)
            with socket.create_connection(("127.0.0.1", where), timeout=10) as client:
                assert client.makefile("rb").readline() == b"bye\n"
            assert program.wait(20) == 0, program.output()


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_children_started_by_subprocess_and_posix_spawn(under_huptime, port, mode):
    """Programs the server starts (vfork/posix_spawn/fork+exec) run with the shim inert,
    and starting them on every request leaves the shim's counts intact: each old
    generation drains at once instead of waiting for connections that never close."""
    from support.load import LoadRunner

    server = os.path.join(os.path.dirname(__file__), "servers", "spawning_server.py")
    served = under_huptime("spawning", [sys.executable, server, str(port)],
                           exec_mode=mode == "exec", options=["--drain-timeout", "60"]).start()
    with LoadRunner(port, clients=4, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        for _ in range(3):
            before = load.snapshot().ok
            served.restart()
            load.wait_until(lambda r, b=before: r.saw(f"gen={served.generation}") and r.ok >= b + 20)
    assert load.result.failed == 0, load.result.summary()
    if mode == "fork":  # the last old generation may still be finishing its drain
        served.wait_log(r"generation 3 drained", 10)
    log = served.log()
    for kind in ("subprocess", "posix_spawn"):
        line = f"helper via {kind}: listener nonblocking=False hup caught=False"
        assert log.count(line) == 4, f"{line!r} once per generation:\n{log}"
    assert "drain timeout" not in log and "Traceback" not in log, log
    if mode == "fork":
        assert log.count("drained") == 3, log
    served.stop()


def callgrind_instructions(tmp_path, nofile: int, env: dict[str, str]) -> int:
    """Instructions of /bin/true under the active shim with RLIMIT_NOFILE = nofile
    (callgrind counts instructions: the same for the same run, whatever the load)."""
    out = tmp_path / f"callgrind-{nofile}.out"
    script = (f"ulimit -n {nofile} && export HUPTIME_PID=$$ && "
              f'exec valgrind --tool=callgrind --callgrind-out-file="{out}" /bin/true')
    done = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    totals = [line for line in out.read_text().splitlines() if line.startswith(("summary:", "totals:"))]
    return int(totals[0].split()[1])


def test_start_up_cost_does_not_grow_with_rlimit_nofile(tmp_path):
    """The shim never loops over the descriptor table at start (the original huptime
    did: +11.6 ms at 20,000). Instructions, not time: the comparison is exact."""
    if not shutil.which("valgrind"):
        pytest.fail("valgrind is needed here (.ci/run installs it)")
    env = shim_env(**BASE)
    small = callgrind_instructions(tmp_path, 1024, env)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    large_limit = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
    if large_limit < 8192:
        pytest.skip(f"the hard RLIMIT_NOFILE here is {large_limit}: too low to compare")
    large = callgrind_instructions(tmp_path, large_limit, env)
    assert abs(large - small) < max(20000, small // 50), (small, large)
