"""The control commands: --restart, --status, --stop, acting on what record.py finds."""

from __future__ import annotations

import json
import os
import select
import signal as signals
import time
from pathlib import Path

from huptime import HuptimeError, protocol
from huptime.procfs import live_pid, maps_file
from huptime.record import (RECORD, Instance, events_size, find, locked, members,
                            prune_record, read_events, signal_name, supervisor_pid)

__all__ = ["find", "restart", "status", "stop"]


# --- --restart ---------------------------------------------------------------

def open_verified(pid: int, mapped: Path) -> int:
    """A pidfd for pid, opened before the last check (alive, maps `mapped`) so a
    reused PID can never be signalled."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        raise HuptimeError(f"pid {pid} exited") from None
    if not (live_pid(pid) and maps_file(pid, mapped)):
        os.close(pidfd)
        raise HuptimeError(f"pid {pid} is no longer part of this instance")
    return pidfd


def exited(pidfd: int, timeout: float) -> bool:
    return bool(select.select([pidfd], [], [], max(timeout, 0))[0])


def restart(inst: Instance, timeout: float | None) -> str:
    """Send the restart signal and wait for the outcome; returns a success line,
    raises HuptimeError with the reason otherwise. A --multi pool is signalled
    through its supervisor and is done when every copy reports serving."""
    gen = inst.serving()
    if gen is None:
        raise HuptimeError("no serving generation (a restart is in progress)")
    if not gen.listeners:
        raise HuptimeError(f"generation {gen.number} (pid {gen.pid}) has no listening socket "
                           "huptime could see (none yet, or made by raw system calls, as Go "
                           "programs do): it cannot be restarted, and the restart signal is "
                           "left to the program")
    record = inst.record
    copies = int(record.get("copies", 1))
    if timeout is None:
        timeout = float(record.get("ready_timeout", 60)) + 5
        if record.get("mode") == "exec":
            timeout += float(record.get("drain_timeout", 300))
    offset = events_size(inst.path)
    if copies > 1 or record.get("mode") == "listen":
        keeper = supervisor_pid(inst)
        if keeper is None:
            raise HuptimeError("the supervisor is gone")
        target, pidfd = keeper, open_verified(keeper, inst.path / RECORD)
    else:
        target, pidfd = gen.pid, open_verified(gen.pid, gen.page)
    served: dict[int, int] = {}
    try:
        signals.pidfd_send_signal(pidfd, int(record.get("signal", signals.SIGHUP)))
        deadline = time.monotonic() + timeout
        gone = False
        while True:
            events, offset = read_events(inst.path, offset)
            for number, pid, word, rest in events:
                if copies == 1 and number <= gen.number:
                    continue
                if word == protocol.EVENT_SERVING:
                    served[pid] = number
                    if copies == 1:
                        return (f"generation {number} (pid {pid}) serving; "
                                f"generation {gen.number} retired")
                    if len(served) >= copies:
                        return (f"{copies} copies serving, generations "
                                f"{', '.join(map(str, sorted(served.values())))}")
                if word == protocol.EVENT_FAILED:
                    keeps = (f"generation {gen.number} (pid {gen.pid}) keeps serving"
                             if copies == 1 else "that copy keeps its old generation")
                    raise HuptimeError(f"restart failed, {keeps}: generation {number} {rest}")
            if gone:
                raise HuptimeError(f"pid {target} exited during the restart and no new "
                                   "generation reported serving")
            left = deadline - time.monotonic()
            if left <= 0:
                raise HuptimeError(f"no outcome within {timeout:g} s (see the server's log)")
            gone = exited(pidfd, min(left, 0.02))
    finally:
        os.close(pidfd)


# --- --stop ------------------------------------------------------------------

def signal_all(pidfds: dict[int, int], sig: int) -> None:
    for fd in pidfds.values():
        try:
            signals.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass


def wait_gone(pidfds: dict[int, int], timeout: float) -> list[int]:
    """Wait until every process has exited, at most timeout; returns those left."""
    deadline = time.monotonic() + timeout
    left = dict(pidfds)
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select(list(left.values()), [], [], remaining)
        for fd in ready:
            left = {pid: f for pid, f in left.items() if f != fd}
    return sorted(left)


def stop(inst: Instance, grace: float) -> str:
    """SIGTERM to the supervisor (--revive) or else every generation's leader,
    SIGKILL to what is left of the instance after grace seconds; returns once all
    of it is gone."""
    pidfds: dict[int, int] = {}
    try:
        keeper = supervisor_pid(inst)
        for pid in [*members(inst), *([keeper] if keeper else [])]:
            try:
                pidfds[pid] = os.pidfd_open(pid)
            except OSError:
                continue
        if keeper in pidfds:
            first = {keeper: pidfds[keeper]}
        else:
            first = {g.pid: pidfds[g.pid] for g in inst.generations if g.pid in pidfds}
        signal_all(first, signals.SIGTERM)
        left = wait_gone(pidfds, grace)
        how = "exited on SIGTERM"
        if left:
            signal_all({pid: pidfds[pid] for pid in left}, signals.SIGKILL)
            left = wait_gone({pid: pidfds[pid] for pid in left}, 5)
            how = f"killed after {grace:g} s"
        if left:
            raise HuptimeError(f"pids {', '.join(map(str, left))} survived SIGKILL")
    finally:
        for fd in pidfds.values():
            os.close(fd)
    try:
        with locked(inst.path.parent):
            prune_record(inst.path)  # kept if a process it names still exists
    except OSError:
        pass
    return how


# --- --status ----------------------------------------------------------------

def describe(inst: Instance) -> str:
    rec = inst.record
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.get("started", 0)))
    lines = [f"{' '.join(inst.command)}",
             f"  {rec.get('mode')} mode, signal {signal_name(rec.get('signal', 1))}, "
             f"started {started}, record {inst.path}"]
    for g in inst.generations:
        conns = f"{g.connections} connection{'' if g.connections == 1 else 's'}"
        where = " ".join(g.listeners) if g.is_serving else ""
        lines.append(f"  generation {g.number}  pid {g.pid}  {g.state:<8}  {conns}"
                     + (f"  {where}" if where else ""))
    if inst.last_failure:
        lines.append(f"  last restart failed: generation {inst.last_failure['generation']} "
                     f"{inst.last_failure['reason']}")
    return "\n".join(lines)


def status(command: list[str], as_json: bool) -> str:
    chosen = find(command)
    if as_json:
        return json.dumps([i.as_dict() for i in chosen], indent=1)
    return "\n".join(describe(i) for i in chosen)
