"""Upgrades while serving: a package upgrade replaces the shim's file under a running
server, so the next restart hands over from the old shim to the new one.

The servers run under a copy of the installed package whose libhuptime.so is swapped
the way dpkg does it (a new file renamed over the old; the running generation keeps
the old one mapped). The old shim is built from BASE, the last commit before the
handoff carried a protocol version (docs/protocol.md, "Versions").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

import huptime
from huptime import protocol
from huptime.launcher import SHIM_NAME, shim_path
from support.load import LoadRunner
from support.servers import server_command

ROOT = Path(__file__).resolve().parent.parent
BASE = "3ec0997"  # protocol 1: no HUPTIME_PROTOCOL in its handoff
CFLAGS = ["-std=gnu11", "-O2", "-fPIC", "-fvisibility=hidden", "-shared", "-Wl,-z,defs",
          "-Wl,-z,now"]
PROTOCOL_LINE = re.compile(r"^#define (HUPTIME_PROTOCOL_(?:MIN|VERSION)) \d+$", re.M)


def build_shim(csrc: Path, out: Path) -> Path:
    subprocess.run(["cc", *CFLAGS, "-o", str(out), *sorted(map(str, csrc.glob("*.c"))),
                    "-ldl", "-pthread"], check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="session")
def old_shim(tmp_path_factory) -> Path:
    """The shim of BASE, built from git."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the earlier shim cannot be built")
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{BASE}^{{commit}}"],
                      capture_output=True).returncode != 0:
        pytest.skip(f"commit {BASE} is not in this clone (shallow?)")
    work = tmp_path_factory.mktemp("shim-base")
    tree = subprocess.run(["git", "-C", str(ROOT), "archive", BASE, "csrc"], check=True,
                          capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=tree, check=True)
    return build_shim(work / "csrc", work / SHIM_NAME)


@pytest.fixture(scope="session")
def future_shim(tmp_path_factory) -> Path:
    """This shim, made to speak only a protocol version that does not exist yet."""
    work = tmp_path_factory.mktemp("shim-future")
    csrc = work / "csrc"
    shutil.copytree(ROOT / "csrc", csrc)
    header = csrc / "protocol.h"
    text, n = PROTOCOL_LINE.subn(lambda m: f"#define {m.group(1)} 99", header.read_text())
    assert n == 2
    header.write_text(text)
    return build_shim(csrc, work / SHIM_NAME)


@pytest.fixture
def package(tmp_path) -> Path:
    """A copy of the installed huptime package, on a PYTHONPATH of its own."""
    root = tmp_path / "pkg"
    shutil.copytree(Path(huptime.__file__).parent, root / "huptime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def install(package: Path, shim: Path) -> Path:
    """Put shim in place as a package manager does: a new file renamed over the old."""
    target = package / "huptime" / SHIM_NAME
    staged = target.with_name(SHIM_NAME + ".dpkg-new")
    shutil.copyfile(shim, staged)
    os.replace(staged, target)
    return target


def mapped_inode(pid: int) -> int:
    """The inode of the libhuptime.so that process pid runs."""
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].rstrip("\n").split(" (deleted)")[0].endswith(SHIM_NAME):
                return int(fields[4])
    raise AssertionError(f"pid {pid} maps no {SHIM_NAME}")


@contextmanager
def c_server_under(under_huptime, package: Path, port: int, build_dir: Path, mode: str):
    command = server_command("c-accept4", port, build_dir)
    served = under_huptime(f"upgrade-{mode}", command, exec_mode=mode == "exec",
                           env={"PYTHONPATH": str(package)}).start()
    try:
        with LoadRunner(port, clients=8, duration=120.0) as load:
            load.wait_until(lambda r: r.ok >= 50)
            yield served, load
    finally:
        served.stop()


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_a_restart_hands_over_from_the_previous_shim_to_this_one(
        under_huptime, package, old_shim, port, build_dir, mode):
    first = install(package, old_shim)
    with c_server_under(under_huptime, package, port, build_dir, mode) as (served, load):
        assert mapped_inode(served.leader) == first.stat().st_ino
        new = install(package, shim_path())
        for _ in range(2):  # old -> new, then new -> new
            served.restart()
            assert mapped_inode(served.leader) == new.stat().st_ino
            before = load.snapshot().ok
            load.wait_until(lambda r, b=before: r.ok >= b + 50 and
                            r.saw(f"gen={served.generation}"))
    assert load.result.failed == 0, load.result.summary()
    assert served.generation == 3


def test_a_shim_that_does_not_speak_the_handoff_refuses_and_is_rolled_back(
        under_huptime, package, future_shim, port, build_dir):
    install(package, shim_path())
    with c_server_under(under_huptime, package, port, build_dir, "fork") as (served, load):
        install(package, future_shim)
        reason = served.expect_rollback()
        assert "exited with status 78 before it was ready" in reason
        served.wait_log(rf"generation 2 cannot take over: the handoff speaks protocol "
                        rf"{protocol.HUPTIME_PROTOCOL_VERSION}, this huptime speaks 99 to 99")
        install(package, shim_path())  # the upgrade done right
        served.restart()
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50 and r.saw("gen=2"))
    assert load.result.failed == 0, load.result.summary()
