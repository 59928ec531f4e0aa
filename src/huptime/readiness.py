"""--listen mode: when a program huptime cannot enter is ready for clients.

notify: it sent READY=1 on the NOTIFY_SOCKET huptime gave it (sd_notify).
proc: the kernel shows one of its threads waiting for a client on a passed
  socket: blocked in accept/accept4 on it, in poll/ppoll/select with it in the
  set (read from /proc/PID/mem), or its inode in an epoll set (fdinfo) with
  EPOLLIN. Sockets are compared by inode, never by descriptor number. Go registers
  a listener with its epoll set when it listens, before it accepts: for Go, proc
  readiness means "listening", which a program that does slow work between
  listen and serve passes too early (use notify or delay there).
delay:SECONDS: alive that long after it started.
"""

from __future__ import annotations

import os
import re
import socket
import sys

# x86_64 system call numbers of the waits looked for (/proc/PID/syscall).
ACCEPT, ACCEPT4 = 43, 288
POLL, PPOLL = 7, 271
SELECT, PSELECT6 = 23, 270
EPOLL_WAITS = (232, 281, 441)  # epoll_wait, epoll_pwait, epoll_pwait2
EPOLLIN = 0x1
POLLIN = 0x1
MAX_POLLFDS = 10_000
EPOLL_ENTRY = re.compile(r"tfd:\s*\d+\s+events:\s*([0-9a-f]+).*?\bino:\s*([0-9a-f]+)")
NOTIFY_MAX = 8192


def hex_value(text: str) -> int:
    """A number /proc prints in hexadecimal, with or without 0x."""
    return int(text if text.startswith("0x") else "0x" + text, 0)


def socket_inode(fd: int) -> int:
    return os.fstat(fd).st_ino


def _fd_inode(pid: int, fd: int) -> int | None:
    try:
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None
    return int(link[8:-1]) if link.startswith("socket:[") else None


def _tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def _read_mem(pid: int, address: int, size: int) -> bytes:
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(address)
            return mem.read(size)
    except (OSError, OverflowError, ValueError):
        return b""


def _polled_fds(pid: int, nr: int, args: list[int]) -> list[int]:
    """The descriptors a thread blocked in poll/ppoll/select/pselect6 waits to read."""
    if nr in (POLL, PPOLL):
        count = min(args[1], MAX_POLLFDS)
        data = _read_mem(pid, args[0], 8 * count)  # struct pollfd: int fd, short events, revents
        entries = [(int.from_bytes(data[i:i + 4], sys.byteorder, signed=True),
                    int.from_bytes(data[i + 4:i + 6], sys.byteorder))
                   for i in range(0, len(data) - 7, 8)]
        return [fd for fd, events in entries if fd >= 0 and events & POLLIN]
    count = min(args[0], 8 * MAX_POLLFDS)
    if not args[1]:
        return []
    bits = _read_mem(pid, args[1], (count + 7) // 8)
    return [i for i in range(min(count, 8 * len(bits))) if bits[i // 8] >> (i % 8) & 1]


def _waiting_thread(pid: int, task: str, inodes: set[int]) -> bool:
    try:
        with open(f"/proc/{pid}/task/{task}/syscall") as f:
            words = f.read().split()
    except OSError:
        return False
    if len(words) < 7 or not words[0].isdigit():
        return False  # running, or blocked outside a system call
    nr, args = int(words[0]), [hex_value(w) for w in words[1:7]]
    if nr in (ACCEPT, ACCEPT4):
        return _fd_inode(pid, args[0]) in inodes
    if nr in (POLL, PPOLL, SELECT, PSELECT6):
        return any(_fd_inode(pid, fd) in inodes for fd in _polled_fds(pid, nr, args))
    return False


def _epoll_watches(pid: int, inodes: set[int]) -> bool:
    """An epoll set of pid's that watches one of inodes for input."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                text = f.read()
        except OSError:
            continue
        for events, ino in EPOLL_ENTRY.findall(text):
            if hex_value(events) & EPOLLIN and hex_value(ino) in inodes:
                return True
    return False


def waits_on(pids: list[int], inodes: set[int]) -> bool:
    """Whether one of pids (a program and its workers) waits for clients on one of
    the sockets `inodes`, as /proc shows it (see the module's text)."""
    for pid in pids:
        if any(_waiting_thread(pid, task, inodes) for task in _tasks(pid)):
            return True
        if _epoll_watches(pid, inodes):
            return True
    return False


class NotifySocket:
    """A datagram socket for one start of the program (NOTIFY_SOCKET): READY=1
    on it means that start is ready; STATUS= lines are kept for the log."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK
                                  | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.ready = False
        self.status = ""

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> None:
        while True:
            try:
                data = self.sock.recv(NOTIFY_MAX)
            except OSError:
                return
            for line in data.decode(errors="replace").splitlines():
                if line == "READY=1":
                    self.ready = True
                elif line.startswith("STATUS="):
                    self.status = line[7:]

    def close(self) -> None:
        self.sock.close()
        if not self.path.startswith("\0"):  # an abstract name has no file
            try:
                os.unlink(self.path)
            except OSError:
                pass
