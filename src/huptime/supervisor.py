"""--revive: stay as the program's parent, hold its listeners, start it again when it exits.

The supervisor starts the program with one end of a seqpacket socketpair in
HUPTIME_SUPERVISOR_FD. Each generation's leader, once ready, sends "serving N PID"
with its listeners attached; the supervisor keeps those descriptors open, so while
no copy of the program runs, clients wait in the listeners' accept queues instead of
being refused. When the serving leader exits on its own, a new copy starts with the
held listeners (HUPTIME_FDS), after a delay that doubles (0.1 s to 30 s) while copies
keep exiting within 10 s of their start. The supervisor is a child subreaper, so
fork-mode generations stay its descendants. SIGTERM/SIGINT stop the program and the
supervisor; the restart signal is passed to the serving leader. If the supervisor
dies, even by SIGKILL, every generation sees end of file on its link and stops.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import select
import signal as signals
import socket
import sys
import time

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0  # a copy that ran this long was not crash-looping
PR_SET_CHILD_SUBREAPER = 36
RESET_SIGNALS = ("SIGPIPE", "SIGXFSZ")  # Python ignores these; the program must not


def log(message: str) -> None:
    print(f"huptime[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


class Supervisor:
    def __init__(self, program: str, command: list[str], env: dict[str, str],
                 restart_signal: int) -> None:
        self.program = program
        self.command = command
        self.env = env
        self.restart_signal = restart_signal
        self.listeners: list[int] = []
        self.generation = 0
        self.leader = 0
        self.leader_started = 0.0
        self.delay = BACKOFF_FIRST
        self.revive_at: float | None = None
        self.stopping = False
        self.status = 0

    # -- starting a copy -----------------------------------------------------

    def start_copy(self) -> None:
        self.generation += 1
        env = dict(self.env, HUPTIME_GENERATION=str(self.generation))
        env.pop("HUPTIME_FDS", None)
        if self.listeners:
            env["HUPTIME_FDS"] = ",".join(map(str, self.listeners))
        pid = os.fork()
        if pid == 0:  # the child: only exec from here
            try:
                signals.set_wakeup_fd(-1)
                for name in ("SIGCHLD", "SIGTERM", "SIGINT", *RESET_SIGNALS):
                    signals.signal(getattr(signals, name), signals.SIG_DFL)
                signals.signal(self.restart_signal, signals.SIG_DFL)
                signals.pthread_sigmask(signals.SIG_SETMASK, [])
                for fd in self.listeners:
                    os.set_inheritable(fd, True)
                env["HUPTIME_PID"] = str(os.getpid())
                os.execve(self.program, self.command, env)
            except BaseException as exc:  # noqa: BLE001 - nothing may escape a forked child
                try:
                    log(f"cannot start {self.command[0]}: {exc}")
                finally:
                    os._exit(127)
        self.leader = pid
        self.leader_started = time.monotonic()

    # -- events --------------------------------------------------------------

    def on_report(self, link: socket.socket) -> None:
        try:
            message, fds, _flags, _addr = socket.recv_fds(link, 256, 64, socket.MSG_CMSG_CLOEXEC)
        except OSError:
            return
        words = message.decode(errors="replace").split()
        if len(words) == 3 and words[0] == "serving" and words[1].isdigit() and words[2].isdigit():
            old = self.listeners
            self.listeners = fds
            for fd in old:
                os.close(fd)
            self.generation = max(self.generation, int(words[1]))
            if int(words[2]) != self.leader:
                self.leader = int(words[2])
                self.leader_started = time.monotonic()
        else:
            for fd in fds:
                os.close(fd)

    def on_exit(self, pid: int, status: int) -> None:
        if pid != self.leader:
            return  # a retired generation, or an orphaned worker
        self.leader = 0
        ran = time.monotonic() - self.leader_started
        if self.stopping:
            self.status = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 0
            return
        self.delay = BACKOFF_FIRST if ran >= STABLE_AFTER else self.delay
        log(f"--revive: generation {self.generation} (pid {pid}) {describe_exit(status)} after "
            f"{ran:.1f} s; starting generation {self.generation + 1} in {self.delay:g} s"
            + ("" if self.listeners else " (no listener held yet: clients are refused meanwhile)"))
        self.revive_at = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, BACKOFF_MAX)

    def reap(self) -> bool:
        """Reap every exited child; False once there are none left."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            self.on_exit(pid, status)

    def stop(self, sig: int) -> None:
        self.stopping = True
        self.revive_at = None
        if self.leader:
            try:
                os.kill(self.leader, sig)
            except ProcessLookupError:
                pass

    # -- the loop ------------------------------------------------------------

    def run(self, link: socket.socket) -> int:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signals.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for sig in (signals.SIGCHLD, signals.SIGTERM, signals.SIGINT, self.restart_signal):
            signals.signal(sig, lambda *_: None)
        self.start_copy()
        while True:
            timeout = None
            if self.revive_at is not None:
                timeout = max(0.0, self.revive_at - time.monotonic())
            ready, _, _ = select.select([link, wake_r], [], [], timeout)
            if link in ready:
                self.on_report(link)
            if wake_r in ready:
                for sig in os.read(wake_r, 512):
                    if sig in (signals.SIGTERM, signals.SIGINT) and not self.stopping:
                        log(f"stopping on signal {sig}")
                        self.stop(signals.SIGTERM)
                    elif sig == self.restart_signal and self.leader and not self.stopping:
                        os.kill(self.leader, self.restart_signal)
            children = self.reap()
            if self.stopping and not children:
                return self.status
            if self.revive_at is not None and time.monotonic() >= self.revive_at:
                self.revive_at = None
                self.start_copy()


def subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log(f"cannot become a child subreaper: {os.strerror(ctypes.get_errno())}; "
            "generations started by restarts are not revived")


def supervise(program: str, command: list[str], env: dict[str, str], restart_signal: int) -> int:
    """Run the program under a supervisor until it is stopped; returns the exit status."""
    subreaper()
    record = pin_record(env.get("HUPTIME_CONTROL"))
    link, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child_end.set_inheritable(True)
    env = dict(env, HUPTIME_SUPERVISOR_FD=str(child_end.fileno()))
    try:
        return Supervisor(program, command, env, restart_signal).run(link)
    finally:
        if record is not None:
            record.close()


def pin_record(directory: str | None) -> mmap.mmap | None:
    """Map the instance record, so `huptime --stop` can tell this process is its
    supervisor (/proc/PID/maps names the file), like the shim's pages do."""
    if not directory:
        return None
    try:
        with open(os.path.join(directory, "instance.json"), "rb") as f:
            return mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None
