"""The instance record: where it lives, what it holds, which live processes it names.

The launcher makes one private directory per instance under the user's runtime
directory and writes instance.json there; the shim inside the server keeps each
generation's page in gen-N and appends lifecycle lines to events (docs/protocol.md,
"The instance record"). A process counts as an instance's generation only if it
maps that instance's gen-N file: a stranger's process whose command line looks alike
is never found, so never signalled. Whose process it is does not matter (a program
that drops privileges after bind runs as another user): the record lives in this
user's private directory, so whoever can read it started the instance. Records are
made and pruned under an flock on the runtime directory, and a record is removed only
once none of the processes it names exists any more.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import shutil
import signal as signals
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huptime import HuptimeError, protocol
from huptime.procfs import live_pid, mapping_any, mapping_removed_under, maps_file

RECORD = "instance.json"
EVENTS = "events"
NOT_FOUND = 3  # exit status when no instance matches, as `systemctl status` uses
PAGE_MAX_AGE = 60  # seconds a page may go without its version before it is taken as dead


def runtime_dir(create: bool) -> Path:
    """This user's huptime directory: $XDG_RUNTIME_DIR/huptime, /run/user/UID/huptime,
    or /tmp/huptime-UID. It must be a real directory owned by this user with no
    access for others; anything else is refused, never repaired."""
    uid = os.getuid()
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/") and os.path.isdir(xdg):
        path = Path(xdg) / "huptime"
    elif os.path.isdir(f"/run/user/{uid}"):
        path = Path(f"/run/user/{uid}/huptime")
    else:
        path = Path(tempfile.gettempdir()) / f"huptime-{uid}"
    if create:
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise HuptimeError(f"cannot create {path}: {exc.strerror}") from None
    try:
        st = path.lstat()
    except FileNotFoundError:
        return path
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise HuptimeError(f"{path} is not a private directory of user {uid} "
                           "(it must be owned by you with mode 0700): refusing to use it")
    return path.resolve()


def new_instance(command: list[str], program: str, settings: dict, pid: int) -> Path:
    """Make the record for a launch that is about to exec; returns its directory."""
    base = runtime_dir(create=True)
    with locked(base):
        prune_locked(base)
        path = Path(tempfile.mkdtemp(prefix=f"{pid}-", dir=base))
        record = {"version": 1, "pid": pid, "command": command, "program": program,
                  "cwd": os.getcwd(), "started": time.time(), **settings}
        tmp = path / (RECORD + ".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.rename(path / RECORD)
    return path


@contextmanager
def locked(base: Path) -> Iterator[None]:
    """Hold an flock on the runtime directory itself (no lock file to leave behind
    in it): a record directory is never pruned while it is being made."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass
class Generation:
    number: int
    pid: int
    state: str                  # protocol.state_name: serving, draining, retired
    connections: int
    listeners: list[str]
    started: float
    page: Path

    @property
    def is_serving(self) -> bool:
        return self.state == protocol.state_name(protocol.GEN_SERVING)

    def as_dict(self) -> dict:
        return {"generation": self.number, "pid": self.pid, "state": self.state,
                "connections": self.connections, "listeners": self.listeners,
                "started": self.started}


@dataclass
class Instance:
    path: Path
    record: dict
    generations: list[Generation] = field(default_factory=list)
    # The last restart that failed, if no generation served since:
    # {"generation": N, "reason": text}; None otherwise.
    last_failure: dict | None = None

    @property
    def command(self) -> list[str]:
        return list(self.record.get("command", []))

    def serving(self) -> Generation | None:
        live = [g for g in self.generations if g.is_serving]
        return max(live, key=lambda g: g.number) if live else None

    def as_dict(self) -> dict:
        serving = self.serving()
        return {"instance": self.path.name, "record": str(self.path),
                "command": self.command, "cwd": self.record.get("cwd"),
                "mode": self.record.get("mode"), "signal": signal_name(self.record.get("signal", 1)),
                "started": self.record.get("started"),
                "pid": serving.pid if serving else None,
                "generation": serving.number if serving else None,
                "listeners": serving.listeners if serving else [],
                "connections": serving.connections if serving else 0,
                "draining": [g.as_dict() for g in self.generations if g is not serving],
                "generations": [g.as_dict() for g in self.generations],
                "last_failure": self.last_failure}


def signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name[3:]
    except ValueError:
        return str(number)


def read_page(path: Path) -> Any | None:
    """The generation page in path (fields by name, see protocol.page), or None."""
    try:
        with open(path, "rb") as f:
            return protocol.page(f.read(protocol.GEN_PAGE_SIZE))
    except OSError:
        return None


def load(path: Path) -> Instance | None:
    """The instance recorded in path with its verified live generations, or None."""
    try:
        record = json.loads((path / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != 1:
        return None
    inst = Instance(path, record)
    # --listen: the supervisor maps the pages of the programs it passes sockets to.
    keeper = record.get("supervisor") if record.get("mode") == "listen" else None
    for page_path in sorted(path.glob("gen-*")):
        page = read_page(page_path)
        if page is not None and live_pid(page.leader) and maps_file(
                keeper if isinstance(keeper, int) else page.leader, page_path):
            inst.generations.append(Generation(
                page.number, page.leader, protocol.state_name(page.state), max(page.conns, 0),
                protocol.listeners(page), page.started_ms / 1000, page_path))
    inst.generations.sort(key=lambda g: -g.number)
    inst.last_failure = last_failure(path)
    return inst


EVENTS_TAIL = 65536  # bytes of the events file read for the last failure


def last_failure(path: Path) -> dict | None:
    """The last `failed` event, unless a generation reported serving after it."""
    offset = max(0, events_size(path) - EVENTS_TAIL)
    events, _ = read_events(path, offset)
    if offset > 0:
        events = events[1:]  # most likely the end of a line cut in two
    found = None
    for number, _pid, word, rest in events:
        if word == protocol.EVENT_FAILED:
            found = {"generation": number, "reason": rest}
        elif word == protocol.EVENT_SERVING:
            found = None
    return found


def stale(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > PAGE_MAX_AGE
    except OSError:
        return False


def prune(base: Path) -> None:
    """Remove records of instances that have ended (see prune_locked)."""
    try:
        with locked(base):
            prune_locked(base)
    except OSError:
        return


def prune_locked(base: Path) -> None:
    """Remove records of instances that have ended (see prune_record). The caller
    holds locked(base), so a record without a readable instance.json is not one a
    launch is writing: it was left half-made and goes."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for path in entries:
        if path.is_dir() and not path.is_symlink():
            prune_record(path)


def prune_record(path: Path) -> bool:
    """Remove the record in path if no process it names exists any more: the
    launcher's (generation 1's leader), the supervisor's, the leader of each page.
    A process that exists counts whoever's it is and whether or not it can be
    verified: the record of an instance that still runs is never removed. The page
    of a leader that is gone goes on its own. True if the record was removed; the
    caller holds locked(path.parent)."""
    pids = []
    try:
        record = json.loads((path / RECORD).read_text())
        pids += [int(record.get(key) or 0) for key in ("pid", "supervisor")]
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    for page_path in path.glob("gen-*"):
        page = read_page(page_path)
        if page is not None and live_pid(page.leader):
            pids.append(page.leader)
        elif page is not None or (stale(page_path) and not mapping_any([page_path])):
            # Its leader is gone. A page without its version yet is one a
            # generation (the shim, which takes no lock) is creating right now:
            # left alone unless it is old and nothing maps it.
            page_path.unlink(missing_ok=True)
    if any(live_pid(pid) for pid in pids):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def instances() -> list[Instance]:
    """Every live instance of this user, oldest first."""
    base = runtime_dir(create=False)
    if not base.is_dir():
        return []
    prune(base)
    found = [load(p) for p in base.iterdir() if p.is_dir()]
    live = [i for i in found if i and i.generations]
    return sorted(live, key=lambda i: i.record.get("started", 0))


def matches(inst: Instance, command: list[str]) -> bool:
    """The command as it was given to huptime, or the same program found on PATH."""
    recorded = inst.command
    if command == recorded:
        return True
    if not recorded or command[1:] != recorded[1:]:
        return False
    found = shutil.which(command[0]) if "/" not in command[0] else command[0]
    return bool(found) and os.path.realpath(found) == os.path.realpath(inst.record.get("program", ""))


def find(command: list[str]) -> list[Instance]:
    chosen = [i for i in instances() if not command or matches(i, command)]
    if not chosen:
        what = f"of {' '.join(command)!r} " if command else ""
        lost = sorted({pid for pid, page in mapping_removed_under(runtime_dir(create=False)).items()
                       if Path(page).name.startswith("gen-")})
        if lost:
            raise HuptimeError(
                f"no instance record {what}to act on: pid {', '.join(map(str, lost[:8]))} "
                f"run{'s' if len(lost) == 1 else ''} under huptime, but the instance record was "
                "removed from under them; signal them yourself (the restart signal to restart, "
                "SIGTERM to stop)", NOT_FOUND)
        raise HuptimeError(f"no running instance {what}started by huptime "
                           f"(user {os.getuid()})", NOT_FOUND)
    return chosen


# --- events and the supervisor ------------------------------------------------

def read_events(path: Path, offset: int) -> tuple[list[tuple[int, int, str, str]], int]:
    """Complete event lines after offset: (generation, pid, word, rest)."""
    try:
        with open(path / EVENTS, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = []
    for line in data[:end].decode(errors="replace").splitlines():
        parts = line.split(" ", 4)
        if len(parts) >= 4 and parts[1].isdigit() and parts[2].isdigit():
            events.append((int(parts[1]), int(parts[2]), parts[3], parts[4] if len(parts) > 4 else ""))
    return events, offset + end


def events_size(path: Path) -> int:
    try:
        return (path / EVENTS).stat().st_size
    except FileNotFoundError:
        return 0


def supervisor_pid(inst: Instance) -> int | None:
    """The --revive supervisor's PID, if it is alive and maps the record."""
    pid = inst.record.get("supervisor")
    if isinstance(pid, int) and live_pid(pid) and maps_file(pid, inst.path / RECORD):
        return pid
    return None


def members(inst: Instance) -> list[int]:
    """Every process that maps one of the instance's pages: its generations'
    leaders and their workers."""
    return mapping_any(inst.path.glob("gen-*"))


class Page:
    """A generation's page in the instance record (struct gen_page), written here
    and kept mapped, so the control commands find this process as its leader."""

    def __init__(self, directory: str, number: int, leader: int, listeners: str) -> None:
        self.path = os.path.join(directory, f"gen-{number}")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, protocol.GEN_PAGE_SIZE)
            self.map = mmap.mmap(fd, protocol.GEN_PAGE_SIZE)
        finally:
            os.close(fd)
        page = protocol.ffi.from_buffer("struct gen_page *", self.map)
        page.number, page.leader, page.ready = number, leader, 1
        page.started_ms = int(time.time() * 1000)
        page.listeners = listeners.encode()[:protocol.GEN_LISTENERS_SIZE - 1]
        page.version = protocol.GEN_PAGE_VERSION
        self.page = page

    def set_state(self, state: int) -> None:
        self.page.state = state

    def remove(self) -> None:
        self.page = None
        self.map.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
