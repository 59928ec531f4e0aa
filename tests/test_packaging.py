"""What packages ship beside the code: the man page, shell completion, the systemd
units (their commands run for real here), and the wheel."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.huptime import HUPTIME, run_huptime
from support.notify import ServiceManager
from support.proc import live_descendants
from support.process import WatchedProcess
from support.wait import wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_the_packages_carry_the_package_version():
    from huptime import __version__

    spec = (ROOT / "rpm" / "huptime.spec").read_text()
    assert re.search(rf"^Version:\s+{re.escape(__version__)}$", spec, re.M)
    changelog = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    assert changelog.startswith(f"huptime ({__version__}"), changelog


def test_the_man_page_is_current():
    from huptime.manpage import render

    assert (ROOT / "docs" / "huptime.1").read_text() == render(), "run `make man`"


@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort -F _huptime_completion"),
                                          ("zsh", "#compdef huptime"),
                                          ("fish", "complete --no-files --command huptime")])
def test_shell_completion_scripts(shell, marker):
    done = run_huptime(env={"_HUPTIME_COMPLETE": f"{shell}_source"})
    assert done.returncode == 0 and marker in done.stdout, done.stdout + done.stderr


def unit_command(unit: configparser.ConfigParser, key: str, port: int) -> list[str]:
    """ExecStart/ExecReload of a unit, with this test's Python, huptime and port."""
    argv = shlex.split(unit["Service"][key])
    argv = [a.replace("8000", str(port)) for a in argv]
    if argv[0] == "/usr/bin/huptime":
        argv = [*HUPTIME, *argv[1:]]
    return [sys.executable if a == "/usr/bin/python3" else a for a in argv]


@pytest.mark.parametrize("name", ["huptime-exec.service", "huptime-fork.service"])
def test_the_systemd_units_start_reload_and_stop(name, port, tmp_path):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "docs" / "systemd" / name)
    service = unit["Service"]
    assert service["Type"] == "simple"
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONUNBUFFERED": "1"}
    with WatchedProcess(unit_command(unit, "ExecStart", port), env=env, cwd=tmp_path) as main:
        main.wait_for_line("generation 1 serving", 30)
        reload = subprocess.run(unit_command(unit, "ExecReload", port), capture_output=True,
                                text=True, timeout=120, env=env)
        assert reload.returncode == 0, reload.stderr
        assert re.search(r"generation 2 \(pid \d+\) serving", reload.stdout), reload.stdout
        main.popen.send_signal(signal.SIGTERM)  # systemctl stop: SIGTERM to the main PID
        assert main.wait(30) in (0, -signal.SIGTERM, 143)


def test_the_wheel_is_a_platform_wheel_with_a_plain_shim(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    [wheel] = list(tmp_path.glob("*.whl"))
    assert re.fullmatch(r"huptime-[\d.]+-py3-none-linux_\w+\.whl", wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "huptime/libhuptime.so" in names and "huptime/cli.py" in names
        # The launcher reads the shim's protocol definition at run time.
        assert z.read("huptime/protocol.h") == (ROOT / "csrc" / "protocol.h").read_bytes()
        shim = tmp_path / "libhuptime.so"
        shim.write_bytes(z.read("huptime/libhuptime.so"))
    symbols = subprocess.run(["nm", "-D", "--undefined-only", str(shim)], capture_output=True,
                             text=True, check=True).stdout
    assert "Py" not in symbols, "the shim needs no Python"
    loaded = subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(shim)!r})"],
                            env={**os.environ, "LD_BIND_NOW": "1"}, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr


@pytest.mark.parametrize("name", ["huptime-notify.service", "huptime-notify-reload.service"])
def test_the_notify_units_tell_systemd_ready_reloading_and_the_new_main_pid(name, port,
                                                                             tmp_path):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "docs" / "systemd" / name)
    service = unit["Service"]
    assert service["Type"] in ("notify", "notify-reload") and service["NotifyAccess"] == "main"
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    manager = ServiceManager(tmp_path / "notify")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONUNBUFFERED": "1",
           "NOTIFY_SOCKET": manager.path}
    try:
        with WatchedProcess(unit_command(unit, "ExecStart", port), env=env, cwd=tmp_path) as main:
            pid, fields = manager.next()
            assert pid == main.popen.pid and fields["READY"] == "1", fields
            if "ExecReload" in service:  # systemctl reload runs it and waits for it
                reload = subprocess.run(unit_command(unit, "ExecReload", port),
                                        capture_output=True, text=True, timeout=120, env=env)
                assert reload.returncode == 0, reload.stderr
            else:  # notify-reload: systemd sends ReloadSignal= to the main PID
                os.kill(pid, getattr(signal, service["ReloadSignal"]))
            assert manager.next()[1]["RELOADING"] == "1"
            sender, fields = manager.next()
            assert sender == pid and fields["READY"] == "1" and int(fields["MAINPID"]) != pid
            os.kill(int(fields["MAINPID"]), signal.SIGTERM)  # systemctl stop
            main.wait(30)
            wait_for(lambda: not live_descendants(), 30, "the service stopped")
    finally:
        manager.close()
