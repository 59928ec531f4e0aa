"""The catalogue of servers the tests and benchmarks run, and the command that starts each.

Two lists:
- ALL_SERVERS: the test servers in tests/servers/ (Python ones, and the C ones: cserver.c
  built with plain accept or accept4, and the drain servers of test_drain.py);
  server_command() gives the argv of one.
- NAMES: every real server the restart tests and benchmarks run under huptime: the
  general ones of those, plus python3 -m http.server and nginx; make_server() gives a
  ServerUnderTest.

The drain servers (DRAIN_SERVERS) end their connections in ways a count of libc calls
cannot follow, or hold many idle keep-alive connections; they can also listen on a
Unix socket path (UNIX_SERVERS):
- c-fork: fork per connection (inetd style); the child answers and _exit()s without
  close(); the parent close()s its copy.
- c-rawclose: a thread per connection, closed with syscall(SYS_close) as libuv does.
- c-keepalive: HTTP/1.1 keep-alive on epoll, thousands of idle connections; also
  /sleep/MS and /big/N.

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

from .build import build_c

SERVERS_DIR = Path(__file__).resolve().parent.parent / "servers"
PYTHON_SERVERS = {
    "blocking": SERVERS_DIR / "blocking_server.py",
    "threaded": SERVERS_DIR / "threaded_server.py",
    "asyncio": SERVERS_DIR / "asyncio_server.py",
    "poll": SERVERS_DIR / "poll_server.py",
}
# name -> (source in tests/servers/, binary name, compiler flags)
C_SERVERS = {
    "c-accept": ("cserver.c", "cserver-accept", ()),
    "c-accept4": ("cserver.c", "cserver-accept4", ("-DUSE_ACCEPT4",)),
    "c-fork": ("fork_server.c", "fork-server", ()),
    "c-rawclose": ("cserver.c", "rawclose-server", ("-DRAW_CLOSE",)),
    "c-keepalive": ("keepalive_server.c", "keepalive-server", ()),
    "c-rawsock": ("rawsock_server.c", "rawsock-server", ()),  # listener by raw syscalls
    "c-rawaccept": ("cserver.c", "rawaccept-server", ("-DRAW_ACCEPT",)),  # accepts unseen
    "c-reexec": ("reexec_server.c", "reexec-server", ()),  # execs itself on SIGUSR2
    "c-inline": ("cserver.c", "inline-server", ("-DUSE_ACCEPT4", "-DINLINE")),  # one thread
}
DRAIN_SERVERS = ("c-fork", "c-rawclose", "c-keepalive")
SERIAL_SERVERS = ("c-inline", "poll")  # answer one connection at a time, in the accepting thread
UNIX_SERVERS = DRAIN_SERVERS  # argv[1] may be a Unix socket path instead of a port
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


def server_command(name: str, port: int, build_dir: Path, unix: str | None = None) -> list[str]:
    """argv that starts test server `name` on port (or, for UNIX_SERVERS, on the Unix
    socket path `unix`); C servers are compiled into build_dir once."""
    if unix is not None and name not in UNIX_SERVERS:
        raise ValueError(f"{name} cannot listen on a Unix socket")
    where = unix if unix is not None else str(port)
    if name in PYTHON_SERVERS:
        return [sys.executable, str(PYTHON_SERVERS[name]), where]
    source, binary, flags = C_SERVERS[name]
    return [str(build_c(build_dir, SERVERS_DIR / source, binary, flags)), where]


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
    """Server `name` of NAMES (or any of ALL_SERVERS) on port, its files in tmp; nginx
    needs the binary."""
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
