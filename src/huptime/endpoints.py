"""--listen ADDR: what an address means, and the listening socket huptime makes for it.

    127.0.0.1:8080   [::1]:8080   :8080 (every address, IPv6 and IPv4)
    unix:/run/app.sock   unix:@name (abstract)   web=127.0.0.1:8080 (a name for LISTEN_FDNAMES)
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import stat
from dataclasses import dataclass

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
UNIX_PATH_MAX = 107
SD_LISTEN_FDS_START = 3  # where passed sockets begin  # sun_path holds 108 bytes with its NUL


class EndpointError(ValueError):
    """An address --listen cannot use; the text says why, in one line."""


@dataclass(frozen=True)
class Endpoint:
    text: str           # as given, without the name
    name: str           # LISTEN_FDNAMES entry
    family: int
    address: object     # (host, port) or a Unix path ("\0name" for abstract)

    def describe(self) -> str:
        if self.family == socket.AF_UNIX:
            path = str(self.address)
            return "unix:@" + path[1:] if path.startswith("\0") else "unix:" + path
        host, port = self.address[:2]
        return f"[{host}]:{port}" if self.family == socket.AF_INET6 else f"{host}:{port}"


def parse(text: str) -> Endpoint:
    """An Endpoint for one --listen value, or EndpointError."""
    name, sep, rest = text.partition("=")
    if not sep or ":" in name or "/" in name:
        name, rest = "", text
    elif not name or not set(name) <= NAME_CHARS or len(name) > 255:
        raise EndpointError(f"{text!r}: the name before '=' must be letters, digits, "
                            "'_', '.' or '-'")
    if rest.startswith("unix:"):
        path = rest[5:]
        if path.startswith("@") and len(path) > 1:
            address = "\0" + path[1:]
        elif path.startswith("/"):
            address = path
        else:
            raise EndpointError(f"{text!r}: a Unix socket needs an absolute path "
                                "(unix:/run/app.sock) or an abstract name (unix:@name)")
        if len(address.encode()) > UNIX_PATH_MAX or "\0" in address[1:]:
            raise EndpointError(f"{text!r}: the Unix socket name is too long "
                                f"(at most {UNIX_PATH_MAX} bytes)")
        return Endpoint(rest, name or "unix", socket.AF_UNIX, address)
    host, sep, port_text = rest.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise EndpointError(f"{text!r}: expected HOST:PORT, [IPV6]:PORT, :PORT, "
                            "unix:/PATH or unix:@NAME, with a port from 1 to 65535")
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        return Endpoint(rest, name or f"port{port}", 0, ("", port))
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise EndpointError(f"{text!r}: {host!r} is not an IP address "
                            "(names are not resolved: give the address)") from None
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return Endpoint(rest, name or f"port{port}", family, (str(ip), port))


def _stale_unix(path: str) -> bool:
    """A socket file nothing listens on (left by a server that died): removable."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return False
    except OSError:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
    return False


def bind(endpoint: Endpoint, backlog: int) -> socket.socket:
    """A listening socket for endpoint (not inheritable: the launcher places it);
    OSError with the reason if it cannot be had."""
    family, address = endpoint.family, endpoint.address
    if family == 0:  # every address: IPv6 with IPv4 mapped, or IPv4 alone without IPv6
        family = socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET
        try:
            return _bind(family, address, backlog)
        except OSError as exc:
            if family != socket.AF_INET6 or exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                raise
            return _bind(socket.AF_INET, address, backlog)
    if family == socket.AF_UNIX and not address.startswith("\0") and _stale_unix(address):
        os.unlink(address)
    return _bind(family, address, backlog)


def _bind(family: int, address: object, backlog: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and address[0] == "":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def systemd_sockets() -> list[tuple[int, str, str]]:
    """Sockets systemd passed to huptime itself (LISTEN_PID is this process): passed on."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    found = []
    for i in range(count):
        fd = SD_LISTEN_FDS_START + i
        try:
            sock = socket.socket(fileno=os.dup(fd))
            where = sock.getsockname()
            sock.close()
        except OSError:
            continue
        text = where if isinstance(where, str) else f"{where[0]}:{where[1]}"
        found.append((fd, names[i] if i < len(names) and names[i] else "unknown", str(text)))
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return found
