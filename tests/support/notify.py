"""systemd's side of sd_notify, for tests: who sent what, in order."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path


FD_SPACE = 4 * 64  # descriptors one message may carry


class ServiceManager:
    """systemd's end of NOTIFY_SOCKET: a datagram socket with SO_PASSCRED, so each
    message comes with its sender's PID, as systemd checks it (NotifyAccess=main).
    Descriptors sent with FDSTORE=1 are kept in `stored` (the fd store)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.stored: list[int] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)

    def next(self, timeout: float = 30.0) -> tuple[int, dict[str, str]]:
        """The next message: (sender PID, its fields)."""
        self.sock.settimeout(timeout)
        data, ancillary, _, _ = self.sock.recvmsg(
            4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(FD_SPACE), socket.MSG_CMSG_CLOEXEC)
        pid = 0
        for level, kind, cdata in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = int.from_bytes(cdata[:4], sys.byteorder)
            elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                self.stored += [int.from_bytes(cdata[i:i + 4], sys.byteorder)
                                for i in range(0, len(cdata) - 3, 4)]
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
        for fd in self.stored:
            os.close(fd)
        self.stored = []
