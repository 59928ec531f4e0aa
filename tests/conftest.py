"""Fixtures shared by the tests: ports, built servers, cleanup of every started process."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.tree import become_subreaper, end_descendants  # noqa: E402
from support.build import free_port  # noqa: E402

# The tests start servers through `python -m huptime`; a stale handoff in the
# test process's own environment must not leak into them.
for _var in [v for v in os.environ if v.startswith("HUPTIME_")]:
    if _var != "HUPTIME_REQUIRE_NGINX":
        del os.environ[_var]


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
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not path:
        if os.environ.get("HUPTIME_REQUIRE_NGINX"):
            pytest.fail("nginx is required here (HUPTIME_REQUIRE_NGINX) but not installed")
        pytest.skip("nginx not installed")
    return path
