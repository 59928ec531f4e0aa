"""What the kernel says about processes and sockets: the one place tests and benchmarks
read /proc (through psutil where it has the answer) and end processes by PID.

    become_subreaper()            # once, at the start of the run
    ...start servers...
    end_descendants()             # SIGKILL, by PID, everything started since; reap it

Tests and benchmarks make themselves a child subreaper, so generations orphaned by
a restart stay their descendants; end_descendants() kills exactly those.
"""

from __future__ import annotations

import ctypes
import os

import psutil

from .wait import wait_for

PR_SET_CHILD_SUBREAPER = 36
GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
TCP_LISTEN = "0A"  # the st column of /proc/net/tcp for a listening socket


def become_subreaper() -> None:
    """Orphaned descendants are re-parented to this process instead of to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _processes(root: int | None) -> list[psutil.Process]:
    """root (default: this process) and every process below it, live or zombie."""
    try:
        top = psutil.Process(root)
        return [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def descendants(root: int | None = None) -> list[int]:
    """PIDs below root (default: this process), live or zombie."""
    return [p.pid for p in _processes(root)[1:]]


def is_alive(pid: int) -> bool:
    """Running or sleeping: neither gone nor a zombie."""
    try:
        return psutil.Process(pid).status() not in GONE
    except psutil.NoSuchProcess:
        return False


def live_descendants() -> list[int]:
    return [pid for pid in descendants() if is_alive(pid)]


def reap_children(keep: tuple[int, ...] = ()) -> None:
    """Reap this process's exited children, without blocking, except the PIDs in keep
    (a Popen's own child is left to Popen.poll(), which records its status)."""
    for child in psutil.Process().children():
        try:
            if child.pid not in keep and child.status() in GONE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):
            pass


def end_descendants(timeout: float = 10.0) -> None:
    """SIGKILL every process this process started (its descendants), by PID; reap them.

    Gives up quietly after `timeout` seconds: what is left is the caller's to see."""
    def killed_and_reaped() -> bool:
        for process in _processes(None)[1:]:
            try:
                if process.status() not in GONE:
                    process.kill()  # psutil checks the PID still names this process
            except psutil.NoSuchProcess:
                pass
        reap_children()
        return not descendants()

    try:
        wait_for(killed_and_reaped, timeout, "end of the descendants")
    except TimeoutError:
        pass
    reap_children()


def cpu_seconds(root: int) -> float:
    """User+system CPU time of root and its descendants (their threads included)."""
    total = 0.0
    for process in _processes(root):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def open_fd_count(pid: int) -> int:
    return psutil.Process(pid).num_fds()


def signal_masks(pid: int) -> dict[str, str]:
    """Ignored, caught and blocked signal masks of a process (SigIgn, SigCgt, SigBlk):
    psutil does not read them, /proc/PID/status does."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("SigIgn", "SigCgt", "SigBlk"):
                fields[key] = value.strip()
    return fields


def kernel_sockets(port: int, protocol: str = "tcp", state: str | None = None) -> int:
    """How many distinct IPv4 sockets of `protocol` ("tcp" or "udp") the kernel has on
    local port `port`, in st `state` if given (TCP_LISTEN for listeners).

    Read from /proc/net/PROTOCOL, one line per socket: psutil.net_connections() lists a
    socket once per process holding it, so it cannot count sockets."""
    count = 0
    with open(f"/proc/net/{protocol}") as table:
        for line in table.readlines()[1:]:
            local, st = line.split()[1], line.split()[3]
            if local.endswith(f":{port:04X}") and (state is None or st == state):
                count += 1
    return count
