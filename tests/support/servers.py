"""The catalogue of test servers in tests/servers/ and the command that starts each."""

from __future__ import annotations

import sys
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


def listening_line(port: int) -> str:
    """The line every test server prints once it listens."""
    return f"listening on {port}"


def server_command(name: str, port: int, build_dir: Path) -> list[str]:
    """argv that starts server `name` on port; C servers are compiled into build_dir once."""
    if name in PYTHON_SERVERS:
        return [sys.executable, str(PYTHON_SERVERS[name]), str(port)]
    return [str(build_cserver(build_dir, C_SERVERS[name])), str(port)]
