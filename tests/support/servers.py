"""The catalogue of servers the tests and benchmarks run, and the command that starts each.

Two lists:
- ALL_SERVERS: the test servers in tests/servers/ (Python ones, and the C one built with
  plain accept or accept4); server_command() gives the argv of one.
- NAMES: every real server the restart tests and benchmarks run under huptime: those,
  plus python3 -m http.server and nginx; make_server() gives a ServerUnderTest.

A ServerUnderTest's `kind` says how a test can tell generations apart in the replies:
"gen" (the body carries gen=N from HUPTIME_GENERATION), "pid" (the body carries the
pid of the serving process, which changes with each generation), or "log" (only the
shim's log lines tell).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .build import build_cserver

SERVERS_DIR = Path(__file__).resolve().parent.parent / "servers"
PYTHON_SERVERS = {
    "blocking": SERVERS_DIR / "blocking_server.py",
    "threaded": SERVERS_DIR / "threaded_server.py",
    "asyncio": SERVERS_DIR / "asyncio_server.py",
}
C_SERVERS = {"c-accept": False, "c-accept4": True}  # name -> built with accept4
ALL_SERVERS = (*PYTHON_SERVERS, *C_SERVERS)
NAMES = ("http.server", "threaded", "blocking", "asyncio", "c-accept", "c-accept4", "nginx")


def _servers_common():
    """tests/servers/common.py, the module the Python test servers share."""
    spec = importlib.util.spec_from_file_location("huptime_test_servers_common",
                                                  SERVERS_DIR / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SLOW_SECONDS = _servers_common().SLOW_SECONDS  # the delay of GET /slow


def listening_line(port: int) -> str:
    """The line every test server prints once it listens."""
    return f"listening on {port}"


def server_command(name: str, port: int, build_dir: Path) -> list[str]:
    """argv that starts test server `name` on port; C servers are compiled into build_dir once."""
    if name in PYTHON_SERVERS:
        return [sys.executable, str(PYTHON_SERVERS[name]), str(port)]
    return [str(build_cserver(build_dir, C_SERVERS[name])), str(port)]


def find_nginx() -> str | None:
    """The nginx binary on PATH, or /usr/sbin/nginx (not on a user's PATH), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


@dataclass
class ServerUnderTest:
    command: list[str]
    kind: str            # "gen", "pid" or "log"
    path: str = "/"
    slow_path: str | None = "/slow"


def make_server(name: str, port: int, tmp: Path, build_dir: Path,
                nginx: str | None = None) -> ServerUnderTest:
    """Server `name` of NAMES on port, its files in tmp; nginx needs the binary."""
    if name == "http.server":
        www = tmp / "www"
        www.mkdir(exist_ok=True)
        (www / "index.txt").write_text("hello from http.server\n" * 40)
        return ServerUnderTest([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                "--directory", str(www), str(port)], "log", "/index.txt", None)
    if name == "nginx":
        conf = (SERVERS_DIR / "nginx.conf.in").read_text()
        conf = conf.replace("@DIR@", str(tmp)).replace("@PORT@", str(port))
        (tmp / "nginx.conf").write_text(conf)
        return ServerUnderTest([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", "stderr"],
                               "pid", "/", None)
    return ServerUnderTest(server_command(name, port, build_dir), "gen")
