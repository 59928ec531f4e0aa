"""The instance record: where it lives, what it holds, which live processes it names.

The launcher makes one private directory per instance under the user's runtime
directory and writes instance.json there; the shim inside the server keeps each
generation's page in gen-N and appends lifecycle lines to events (docs/protocol.md,
"The instance record"). A process counts as an instance's generation only if it is
this user's and maps that instance's gen-N file: a stranger's process whose command
line looks alike is never found, so never signalled.
"""

from __future__ import annotations

import json
import os
import shutil
import signal as signals
import stat
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RECORD = "instance.json"
EVENTS = "events"
PAGE = struct.Struct("=iiiiiiiiq1024s")  # csrc/generation.h, struct gen_page
PAGE_VERSION = 1
STATES = {0: "serving", 1: "draining", 2: "exiting"}
NOT_FOUND = 3  # exit status when no instance matches, as `systemctl status` uses


class ControlError(Exception):
    """A problem to report in one line, with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


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
            raise ControlError(f"cannot create {path}: {exc.strerror}") from None
    try:
        st = path.lstat()
    except FileNotFoundError:
        return path
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise ControlError(f"{path} is not a private directory of user {uid} "
                           "(it must be owned by you with mode 0700): refusing to use it")
    return path.resolve()


def new_instance(command: list[str], program: str, settings: dict, pid: int) -> Path:
    """Make the record for a launch that is about to exec; returns its directory."""
    base = runtime_dir(create=True)
    prune(base)
    path = Path(tempfile.mkdtemp(prefix=f"{pid}-", dir=base))
    record = {"version": 1, "pid": pid, "command": command, "program": program,
              "cwd": os.getcwd(), "started": time.time(), **settings}
    tmp = path / (RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.rename(path / RECORD)
    return path


@dataclass
class Generation:
    number: int
    pid: int
    state: str
    connections: int
    listeners: list[str]
    started: float
    page: Path

    def as_dict(self) -> dict:
        return {"generation": self.number, "pid": self.pid, "state": self.state,
                "connections": self.connections, "listeners": self.listeners,
                "started": self.started}


@dataclass
class Instance:
    path: Path
    record: dict
    generations: list[Generation] = field(default_factory=list)

    @property
    def command(self) -> list[str]:
        return list(self.record.get("command", []))

    def serving(self) -> Generation | None:
        live = [g for g in self.generations if g.state == "serving"]
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
                "generations": [g.as_dict() for g in self.generations]}


def signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name[3:]
    except ValueError:
        return str(number)


def owned_pid(pid: int) -> bool:
    """A live process of this user (a zombie counts as gone)."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != os.getuid():
            return False
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def maps_file(pid: int, path: Path) -> bool:
    """True if process pid has path mapped: it runs the shim of that generation."""
    want = str(path)
    try:
        with open(f"/proc/{pid}/maps") as f:
            return any(line.rstrip("\n").endswith(" " + want) for line in f)
    except OSError:
        return False


def read_page(path: Path) -> tuple | None:
    try:
        data = path.read_bytes()[:PAGE.size]
    except OSError:
        return None
    if len(data) < PAGE.size:
        return None
    fields = PAGE.unpack(data)
    return fields if fields[5] == PAGE_VERSION else None


def load(path: Path) -> Instance | None:
    """The instance recorded in path with its verified live generations, or None."""
    try:
        record = json.loads((path / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != 1:
        return None
    inst = Instance(path, record)
    for page_path in sorted(path.glob("gen-*")):
        fields = read_page(page_path)
        if not fields:
            continue
        state, conns, _ready, number, leader, _version, _waiting, _, started_ms, text = fields
        if owned_pid(leader) and maps_file(leader, page_path):
            listeners = text.split(b"\0", 1)[0].decode(errors="replace").split()
            inst.generations.append(Generation(number, leader, STATES.get(state, "?"),
                                               max(conns, 0), listeners, started_ms / 1000,
                                               page_path))
    inst.generations.sort(key=lambda g: -g.number)
    return inst


def stale(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > 60
    except OSError:
        return False


def prune(base: Path) -> None:
    """Remove records of instances that have ended: no recorded process of this user
    is alive. Conservative: an instance between two images (exec mode) is kept."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for path in entries:
        if not path.is_dir() or path.is_symlink():
            continue
        pids = []
        try:
            pids.append(int(json.loads((path / RECORD).read_text()).get("pid", 0)))
        except (OSError, ValueError, AttributeError):
            if not stale(path):
                continue  # a launch may be writing it
        for page_path in path.glob("gen-*"):
            fields = read_page(page_path)
            if fields and owned_pid(fields[4]):
                pids.append(fields[4])
            elif fields or stale(page_path):
                # Its leader is gone. A page without its version yet is one a
                # generation is creating right now: left alone unless it is old.
                page_path.unlink(missing_ok=True)
        if not any(pid > 0 and owned_pid(pid) for pid in pids):
            shutil.rmtree(path, ignore_errors=True)


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
        raise ControlError(f"no running instance {what}started by huptime "
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


def supervisor(inst: Instance) -> int | None:
    """The --revive supervisor's PID, if it is alive and maps the record."""
    pid = inst.record.get("supervisor")
    if isinstance(pid, int) and owned_pid(pid) and maps_file(pid, inst.path / RECORD):
        return pid
    return None


def members(inst: Instance) -> list[int]:
    """Every process of this user that maps one of the instance's pages: its
    generations' leaders and their workers."""
    pages = {str(p) for p in inst.path.glob("gen-*")}
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and owned_pid(int(entry)):
            try:
                with open(f"/proc/{entry}/maps") as f:
                    if any(line.rstrip("\n").rsplit(" ", 1)[-1] in pages for line in f):
                        found.append(int(entry))
            except OSError:
                continue
    return found
