"""What the launcher reads from /proc (and the one prctl it needs), in one place.

Standard library only: control.open_verified's pidfd-first check is built on
these, and a compiled dependency would buy nothing here.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>

MAX_TREE = 10_000  # processes looked at below one process (descendants)


def live_pid(pid: int) -> bool:
    """A live process, of any user (a zombie counts as gone). Whose it is decides
    nothing: a program that drops privileges after start runs as another user, and
    what makes a process part of an instance is that it maps the instance's page."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # The state is the first field after the command name, which is in
            # parentheses and may itself hold spaces and parentheses.
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def mapped_paths(pid: int) -> set[str]:
    """The files process pid has mapped, from /proc/PID/maps: the path is the 6th
    field and the rest of the line, so a path with spaces is read whole. Empty if
    the process is gone or not readable."""
    paths = set()
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                fields = line.rstrip("\n").split(maxsplit=5)
                if len(fields) == 6:
                    paths.add(fields[5])
    except OSError:
        pass
    return paths


def maps_file(pid: int, path: os.PathLike | str) -> bool:
    """True if process pid has path mapped (the shim maps its generation's page,
    the supervisor its instance record)."""
    return str(path) in mapped_paths(pid)


def mapping_any(paths: Iterable[os.PathLike | str]) -> list[int]:
    """Every live process that maps one of paths (only processes whose maps this
    user may read can be seen: its own, or any for root)."""
    wanted = {str(p) for p in paths}
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and mapped_paths(int(entry)) & wanted and live_pid(int(entry)):
            found.append(int(entry))
    return found


DELETED = " (deleted)"


def mapping_removed_under(base: os.PathLike | str) -> dict[int, str]:
    """Live processes that map a file once under base and removed since (a huptime
    server whose instance record was deleted under it): pid -> path."""
    prefix = str(base).rstrip("/") + "/"
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and live_pid(int(entry)):
            for path in mapped_paths(int(entry)):
                if path.startswith(prefix) and path.endswith(DELETED):
                    found[int(entry)] = path[:-len(DELETED)]
    return found


def children() -> set[int]:
    """This process's children (of every thread). A child not reaped yet keeps
    its PID, so the PIDs cannot have been reused."""
    found: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as f:
                found.update(int(pid) for pid in f.read().split())
    except OSError:
        pass
    return found


def become_subreaper() -> str | None:
    """Make this process a child subreaper, so orphaned descendants are re-parented
    to it; None on success, else the reason."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def descendants(pid: int) -> list[int]:
    """pid and every process below it (/proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo and len(found) < MAX_TREE:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return found
