"""systemd's side of sd_notify, for tests: who sent what, in order."""

from __future__ import annotations

import socket
import sys
from pathlib import Path


class ServiceManager:
    """systemd's end of NOTIFY_SOCKET: a datagram socket with SO_PASSCRED, so each
    message comes with its sender's PID, as systemd checks it (NotifyAccess=main)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)

    def next(self, timeout: float = 30.0) -> tuple[int, dict[str, str]]:
        """The next message: (sender PID, its fields)."""
        self.sock.settimeout(timeout)
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = next(int.from_bytes(cdata[:4], sys.byteorder) for level, kind, cdata in ancillary
                   if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
        return pid, dict(line.split("=", 1) for line in data.decode().splitlines())

    def pending(self) -> list[tuple[int, dict[str, str]]]:
        found = []
        while True:
            try:
                found.append(self.next(timeout=0.2))
            except TimeoutError:
                return found

    def close(self) -> None:
        self.sock.close()
