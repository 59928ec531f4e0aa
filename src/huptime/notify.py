"""sd_notify from the launcher's side: when huptime stays as the service's main process
(a supervisor: --revive, --multi, --listen, or as PID 1), it tells systemd what the
service does, as the shim does for a program that is the main process itself
(csrc/notify.c): READY=1 once serving, RELOADING=1 when a restart begins and READY=1
when it ends (served or rolled back, with a STATUS= saying which), STOPPING=1."""

from __future__ import annotations

import array
import os
import socket
import time

VARIABLE = "NOTIFY_SOCKET"
SUPERVISED = "@huptime-supervised"  # what a supervised program's shim finds (see above)


class Notifier:
    """Messages to $NOTIFY_SOCKET, or nowhere without it."""

    def __init__(self, path: str | None, fd_store: bool = False) -> None:
        self.address = None
        self.fd_store = fd_store  # FDSTORE: the unit keeps descriptors for the next start
        if path and (path.startswith("/") or (path.startswith("@") and len(path) > 1)):
            self.address = "\0" + path[1:] if path.startswith("@") else path
        self.warned = False

    @classmethod
    def from_environment(cls, env: dict[str, str], shim: bool = False) -> Notifier:
        """The notifier of env's NOTIFY_SOCKET, which is taken from env: the program
        under huptime must not speak for the service. With shim, env gets a name no
        one binds instead (SUPERVISED): the shim gives the program a socket of its own
        under it, whose READY=1 gates restarts; a program without the shim reaches
        nothing."""
        found = cls(env.pop(VARIABLE, None), env.pop("FDSTORE", "0") not in ("", "0"))
        if shim and found.address is not None:
            env[VARIABLE] = SUPERVISED
        return found

    def send(self, *lines: str, fds: list[int] = ()) -> None:
        if self.address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                text = "\n".join(lines).encode()
                # Not socket.send_fds: Python 3.11's ignores its address.
                rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                s.sendmsg([text], rights if fds else [], 0, self.address)
        except OSError as exc:
            if not self.warned:
                self.warned = True
                print(f"huptime[{os.getpid()}]: cannot notify the service manager "
                      f"({VARIABLE}): {exc.strerror or exc}", flush=True)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self, status: str) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}",
                  f"STATUS={status}")

    def store(self, fds: list[int]) -> None:
        """With an fd store, the listeners go to it: a start after `systemctl restart` or
        a crash of every process finds them in LISTEN_FDS, with their queues."""
        if self.fd_store and fds:
            self.send("FDSTORE=1", "FDNAME=huptime", fds=fds)

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")
