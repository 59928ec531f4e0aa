"""Fixtures shared by the tests: ports, built servers, servers under huptime, cleanup of
every started process."""

from __future__ import annotations

import os
import shutil
import tempfile
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.build import free_port  # noqa: E402
from support.huptime import forget_huptime_settings  # noqa: E402
from support.proc import become_subreaper, end_descendants  # noqa: E402
from support.served import Served, XprocessStarter  # noqa: E402
from support.servers import ServerUnderTest, find_nginx, make_server  # noqa: E402

# The tests start servers through `python -m huptime`; a stale handoff in the
# test process's own environment must not leak into them.
forget_huptime_settings(keep=("HUPTIME_REQUIRE_NGINX", "HUPTIME_REQUIRE_GO"))


@pytest.fixture(scope="session", autouse=True)
def _subreaper():
    become_subreaper()
    yield
    end_descendants()


@pytest.fixture(scope="session", autouse=True)
def _runtime_dir(tmp_path_factory):
    """Instance records of the servers the tests start stay out of the user's own."""
    path = tmp_path_factory.mktemp("xdg-runtime")
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)
    yield


@pytest.fixture(autouse=True)
def _end_processes():
    """Whatever a test started, directly or through generations, ends with it."""
    yield
    end_descendants()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    path = find_nginx()
    if not path:
        if os.environ.get("HUPTIME_REQUIRE_NGINX"):
            pytest.fail("nginx is required here (HUPTIME_REQUIRE_NGINX) but not installed")
        pytest.skip("nginx not installed")
    return path


@pytest.fixture
def under_huptime(xprocess):
    """under_huptime(name, command, **options): a Served (not started yet) that runs
    command under huptime through xprocess; options are those of Served."""
    def prepare(name: str, command: list[str], **options) -> Served:
        return Served(XprocessStarter(xprocess, name), command, **options)
    return prepare


@pytest.fixture
def serve(request, under_huptime, port, tmp_path, build_dir):
    """serve(name, label=None, **options): server `name` of support/servers.py NAMES on
    the test's port, started under huptime; returns (ServerUnderTest, started Served).
    nginx is looked up (or the test skipped) only when asked for."""
    def start(name: str, *, label: str | None = None,
              **options) -> tuple[ServerUnderTest, Served]:
        nginx = request.getfixturevalue("nginx_bin") if name == "nginx" else None
        server = make_server(name, port, tmp_path, build_dir, nginx)
        return server, under_huptime(label or name, server.command, **options).start()
    return start


@pytest.fixture
def short_dir():
    """A directory with a short path, for Unix sockets (108 bytes at most)."""
    path = Path(tempfile.mkdtemp(prefix="ht-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def runtime(tmp_path, monkeypatch) -> Path:
    """A private XDG_RUNTIME_DIR of the test's own: the instance records of the
    servers it starts go to the returned directory, not the session's."""
    path = tmp_path / "run"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    return path / "huptime"
