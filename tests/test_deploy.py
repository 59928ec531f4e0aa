"""docs/deploy.md's playbook, run for real: ansible-playbook (ansible-core) against
localhost, two huptime instances standing in for two hosts, one at a time."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.build import free_port
from support.huptime import status_json
from support.load import LoadRunner
from support.proc import live_descendants
from support.servers import server_command
from support.wait import wait_for

ROOT = Path(__file__).parent.parent
PLAYBOOK = re.search(r"```yaml\n(.*?)```", (ROOT / "docs" / "deploy.md").read_text(), re.S)[1]
ANSIBLE = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or \
    shutil.which("ansible-playbook")

pytestmark = pytest.mark.skipif(not ANSIBLE, reason="ansible-core is not installed")


@pytest.fixture
def two_hosts(under_huptime, build_dir, tmp_path):
    """Two instances of the threaded server, each with its behaviour file (the
    "deployed version"), as (port, behaviour file, Served)."""
    hosts = []
    for name in ("host1", "host2"):
        port = free_port()
        behaviour = tmp_path / f"{name}.behaviour"
        behaviour.touch()
        served = under_huptime(name, server_command("threaded", port, build_dir),
                               env={"HT_BEHAVIOUR_FILE": str(behaviour)},
                               options=["--ready-timeout", "5"]).start()
        hosts.append((port, behaviour, served))
    yield hosts
    for _, _, served in hosts:  # the serving leader: ansible may have restarted it
        [instance] = status_json(served.command)
        os.kill(instance["pid"], signal.SIGTERM)
    wait_for(lambda: not live_descendants(), 30, lambda: f"both stopped: {live_descendants()}")


def run_playbook(tmp_path: Path, hosts) -> subprocess.CompletedProcess:
    (tmp_path / "playbook.yml").write_text(PLAYBOOK)
    lines = ["[app]"]
    for i, (_, _, served) in enumerate(hosts, 1):
        command = shlex.join(served.command)
        lines.append(f"host{i} ansible_connection=local ansible_python_interpreter="
                     f"{sys.executable} huptime_command={shlex.quote(command)}")
    (tmp_path / "inventory").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
           "ANSIBLE_HOME": str(tmp_path / "ansible-home")}
    return subprocess.run([ANSIBLE, "-i", str(tmp_path / "inventory"),
                           str(tmp_path / "playbook.yml")], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)


def test_a_good_version_rolls_every_host(two_hosts, tmp_path):
    loads = [LoadRunner(port, clients=4, duration=120.0).start() for port, _, _ in two_hosts]
    done = run_playbook(tmp_path, two_hosts)
    results = [load.stop() for load in loads]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    for (port, _, served), result in zip(two_hosts, results):
        assert result.failed == 0, result.summary()
        served.wait_log(r"generation 2 serving")


def test_a_broken_version_stops_the_rollout_at_the_first_host(two_hosts, tmp_path):
    for _, behaviour, _ in two_hosts:
        behaviour.write_text("crash")  # the new version is deployed everywhere, and broken
    loads = [LoadRunner(port, clients=4, duration=120.0).start() for port, _, _ in two_hosts]
    done = run_playbook(tmp_path, two_hosts)
    results = [load.stop() for load in loads]
    assert done.returncode != 0, done.stdout[-3000:]
    assert "restart failed" in done.stdout and "exited with status 3" in done.stdout
    (_, _, first), (_, _, second) = two_hosts
    assert "restart failed: generation 2" in first.log()
    assert "restart:" not in second.log(), second.log()  # never touched
    for result in results:
        assert result.failed == 0 and result.saw("gen=1") and not result.saw("gen=2"), \
            result.summary()
