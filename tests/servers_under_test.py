"""Every real server the restart tests run under huptime, as a command line.

`kind` says how the test can tell generations apart in the replies: "gen" (the
body carries gen=N from HUPTIME_GENERATION), "pid" (the body carries the pid of
the serving process, which changes with each generation), or "log" (only the
shim's log lines tell).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from support.servers import server_command

SERVERS_DIR = Path(__file__).parent / "servers"
NAMES = ("http.server", "threaded", "blocking", "asyncio", "c-accept", "c-accept4", "nginx")


@dataclass
class ServerUnderTest:
    command: list[str]
    kind: str            # "gen", "pid" or "log"
    path: str = "/"
    slow_path: str | None = "/slow"


def make_server(name: str, port: int, tmp: Path, build_dir: Path, nginx: str | None = None) -> ServerUnderTest:
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
