"""The process tree below this process, read from /proc; ending it by PID.

Tests and benchmarks make themselves a child subreaper, so generations orphaned by
a restart stay their descendants; end_descendants() kills exactly those, by PID.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1]); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def descendants(root: int | None = None) -> list[int]:
    """PIDs below root (default: this process), live or zombie."""
    root = os.getpid() if root is None else root
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields:
                parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                found.append(pid)
                frontier.append(pid)
    return found


def is_alive(pid: int) -> bool:
    """Running or sleeping: neither gone nor a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def live_descendants() -> list[int]:
    return [pid for pid in descendants() if is_alive(pid)]


def reap_all() -> None:
    """Reap every exited child, without blocking."""
    for _ in range(10_000):
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_descendants(timeout: float = 10.0) -> None:
    """SIGKILL every process this process started (its descendants), by PID; reap them."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in live_descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap_all()
        if not descendants() or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    reap_all()
