"""Unit tests of the shim's C helpers, called through cffi (ABI mode) in the very
shared library that huptime preloads. Loading it here runs its constructor, which
must stay inert: this process was not started by huptime."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys

import pytest
from cffi import FFI

from huptime import protocol
from huptime.launcher import shim_path

ffi = FFI()
ffi.cdef("""
    typedef unsigned int socklen_t;
    struct sockaddr { unsigned short sa_family; char sa_data[14]; };
    int huptime_parse_uint(const char *s, long max, long *out);
    int huptime_parse_fd_list(const char *s, int *out, int max);
    int huptime_format_fd_list(const int *fds, int n, char *buf, size_t size);
    int huptime_sockaddr_same(const struct sockaddr *a, socklen_t alen,
                              const struct sockaddr *b, socklen_t blen);
    const char *huptime_env_get(char *const *envp, const char *name);
    void huptime_put_pid(char *slot, long pid);
    int huptime_format_sockaddr(const struct sockaddr *sa, socklen_t len, int dgram,
                                char *out, size_t size);
    struct handoff { const int *fds; int nfds; int ready_fd; int generation; int pending;
                     const int *ignored; int nignored; const int *stdio; int nstdio; };
    char **huptime_build_env(char *const *base, const struct handoff *h, char **pid_slot);
    void free(void *);
""")
lib = ffi.dlopen(str(shim_path()))
# every handoff says which version it speaks
PROTOCOL = f"{protocol.ENV_PROTOCOL}={protocol.HUPTIME_PROTOCOL_VERSION}"
libc = ffi.dlopen(None)


def parse_uint(text: str, limit: int = 1000):
    out = ffi.new("long *")
    return out[0] if lib.huptime_parse_uint(text.encode(), limit, out) == 0 else None


@pytest.mark.parametrize("text,expected", [
    ("0", 0), ("42", 42), ("1000", 1000), ("1001", None), ("", None), ("-1", None),
    ("+1", None), ("1x", None), (" 1", None), ("99999999999999999999999", None),
])
def test_parse_uint(text, expected):
    assert parse_uint(text) == expected


def parse_fds(text: str, limit: int = 8):
    out = ffi.new("int[]", limit)
    n = lib.huptime_parse_fd_list(text.encode(), out, limit)
    return None if n < 0 else list(out[0:n])


@pytest.mark.parametrize("text,expected", [
    ("", []), ("3", [3]), ("3,4,7", [3, 4, 7]), ("65535", [65535]),
    ("3,", None), (",3", None), ("3,,4", None), ("3,3", None), ("65536", None),
    ("a", None), ("3;4", None), ("1,2,3,4,5,6,7,8,9", None),
])
def test_parse_fd_list(text, expected):
    assert parse_fds(text) == expected


def test_format_fd_list_round_trips_and_refuses_overflow():
    fds = ffi.new("int[]", [3, 10, 4096])
    buf = ffi.new("char[]", 64)
    assert lib.huptime_format_fd_list(fds, 3, buf, 64) == len("3,10,4096")
    assert ffi.string(buf) == b"3,10,4096"
    assert parse_fds("3,10,4096") == [3, 10, 4096]
    assert lib.huptime_format_fd_list(fds, 3, buf, 5) == -1


def sockaddr(family: int, payload: bytes):
    raw = struct.pack("=H", family) + payload
    buf = ffi.new("char[]", raw)  # kept alive by the tuple
    return ffi.cast("struct sockaddr *", buf), len(raw), buf


def inet(host: str, port: int):
    return sockaddr(socket.AF_INET, struct.pack("!H", port) + socket.inet_aton(host) + b"\0" * 8)


def inet6(host: str, port: int, scope: int = 0):
    return sockaddr(socket.AF_INET6, struct.pack("!HI", port, 0) +
                    socket.inet_pton(socket.AF_INET6, host) + struct.pack("=I", scope))


def unix(path: bytes, pad: int = 0):
    return sockaddr(socket.AF_UNIX, path + b"\0" * pad)


def same(a, b) -> bool:
    return bool(lib.huptime_sockaddr_same(a[0], a[1], b[0], b[1]))


def test_sockaddr_same():
    assert same(inet("127.0.0.1", 80), inet("127.0.0.1", 80))
    assert not same(inet("127.0.0.1", 80), inet("127.0.0.1", 81))
    assert not same(inet("127.0.0.1", 80), inet("127.0.0.2", 80))
    assert not same(inet("0.0.0.0", 80), inet6("::", 80))
    assert same(inet6("::1", 8080), inet6("::1", 8080))
    assert not same(inet6("fe80::1", 80, 1), inet6("fe80::1", 80, 2))
    # Paths compare up to their NUL, whatever length the caller passed.
    assert same(unix(b"/tmp/s.sock"), unix(b"/tmp/s.sock", pad=1))
    assert not same(unix(b"/tmp/s.sock"), unix(b"/tmp/t.sock"))
    # Abstract names compare as bytes, length included; unnamed never match.
    assert same(unix(b"\0name"), unix(b"\0name"))
    assert not same(unix(b"\0name"), unix(b"\0name", pad=1))
    assert not same(unix(b""), unix(b""))


def address_text(addr, dgram: bool = False, size: int = 160) -> str | None:
    buf = ffi.new("char[]", size)
    n = lib.huptime_format_sockaddr(addr[0], addr[1], int(dgram), buf, size)
    return None if n < 0 else ffi.string(buf).decode()


def test_format_sockaddr_writes_the_listeners_text():
    assert address_text(inet("127.0.0.1", 8000)) == "127.0.0.1:8000"
    assert address_text(inet("127.0.0.1", 53), dgram=True) == "udp:127.0.0.1:53"
    assert address_text(inet6("::1", 8080)) == "[::1]:8080"
    assert address_text(inet6("::1", 53), dgram=True) == "udp:[::1]:53"
    assert address_text(unix(b"/run/app.sock", pad=3)) == "unix:/run/app.sock"
    assert address_text(unix(b"/run/dns.sock"), dgram=True) == "unixgram:/run/dns.sock"
    assert address_text(unix(b"\0name")) == "unix:@name"
    assert address_text(unix(b"/tmp/a b\nc")) == "unix:/tmp/a?b?c"  # one word in a spaced list
    assert address_text(inet("127.0.0.1", 8000), size=8) is None      # does not fit
    assert address_text(sockaddr(socket.AF_PACKET, b"\0" * 14)) is None


def strv(items: list[str]):
    keep = [ffi.new("char[]", s.encode()) for s in items]
    arr = ffi.new("char *[]", [*keep, ffi.NULL])
    return arr, keep


def test_env_get_and_put_pid():
    env, _keep = strv(["A=1", "HUPTIME_FDS=3,4", "HUPTIME_FDSX=9"])
    assert ffi.string(lib.huptime_env_get(env, b"HUPTIME_FDS")) == b"3,4"
    assert lib.huptime_env_get(env, b"HUPTIME") == ffi.NULL
    slot = ffi.new("char[]", 24)
    for pid in (0, 7, 4194304):
        lib.huptime_put_pid(slot, pid)
        assert ffi.string(slot) == str(pid).encode()


def built_env(base, h, pid: int) -> list[str]:
    """huptime_build_env's entries, with HUPTIME_PID filled in; the block is freed."""
    slot = ffi.new("char **")
    env = lib.huptime_build_env(base, h, slot)
    assert env != ffi.NULL
    lib.huptime_put_pid(slot[0], pid)
    entries = []
    i = 0
    while env[i] != ffi.NULL:
        entries.append(ffi.string(env[i]).decode())
        i += 1
    libc.free(env)
    return entries


def test_build_env_replaces_stale_handoff():
    base, _keep = strv(["PATH=/bin", "HUPTIME_FDS=9", "HUPTIME_PID=1", "HUPTIME_PENDING=1",
                        "HUPTIME_MODE=fork", "HUPTIME_GENERATION=4",
                        "HUPTIME_IGNORED_SIGNALS=1", "HUPTIME_PROTOCOL=1"])
    fds = ffi.new("int[]", [5, 6])
    h = ffi.new("struct handoff *", {"fds": fds, "nfds": 2, "ready_fd": 8, "generation": 5,
                                     "pending": 0, "ignored": ffi.NULL, "nignored": -1})
    entries = built_env(base, h, 1234)
    assert sorted(entries) == sorted(["PATH=/bin", "HUPTIME_MODE=fork", "HUPTIME_FDS=5,6",
                                      "HUPTIME_GENERATION=5", "HUPTIME_READY_FD=8",
                                      PROTOCOL, "HUPTIME_PID=1234"])


def test_build_env_names_the_kept_stdio():
    base, _keep = strv(["HUPTIME_STDIO_FDS=7,8"])
    fds, stdio = ffi.new("int[]", [3]), ffi.new("int[]", [5, 6])
    h = ffi.new("struct handoff *", {"fds": fds, "nfds": 1, "ready_fd": -1, "generation": 2,
                                     "nignored": -1, "stdio": stdio, "nstdio": 2})
    assert "HUPTIME_STDIO_FDS=5,6" in built_env(base, h, 9)
    h.nstdio = 0
    assert not any(e.startswith("HUPTIME_STDIO_FDS=") for e in built_env(base, h, 9))


def test_build_env_for_exec_lists_ignored_signals():
    base, _keep = strv(["HUPTIME_MODE=exec", "HUPTIME_IGNORED_SIGNALS=2"])
    fds = ffi.new("int[]", [3])
    for sigs, text in (([], ""), ([1, 13, 64], "1,13,64")):
        ignored = ffi.new("int[]", sigs or [0])
        h = ffi.new("struct handoff *", {"fds": fds, "nfds": 1, "ready_fd": -1,
                                         "generation": 2, "pending": 1,
                                         "ignored": ignored, "nignored": len(sigs)})
        entries = built_env(base, h, 9)
        assert sorted(entries) == sorted(["HUPTIME_MODE=exec", "HUPTIME_FDS=3",
                                          "HUPTIME_GENERATION=2", "HUPTIME_PENDING=1",
                                          f"HUPTIME_IGNORED_SIGNALS={text}", PROTOCOL,
                                          "HUPTIME_PID=9"])


def test_shim_needs_no_python_and_binds_now():
    """A plain library: no libpython, loads with LD_BIND_NOW=1 into any program."""
    needed = subprocess.run(["readelf", "-d", str(shim_path())], capture_output=True,
                            text=True, check=True).stdout
    assert "libpython" not in needed
    symbols = subprocess.run(["nm", "-D", "--undefined-only", str(shim_path())],
                             capture_output=True, text=True, check=True).stdout
    assert "Py" not in symbols
    done = subprocess.run(["/bin/sh", "-c", "echo ok"], capture_output=True, text=True,
                          env={"LD_PRELOAD": str(shim_path()), "LD_BIND_NOW": "1",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout == "ok\n" and done.stderr == ""


def test_interposers_are_unversioned():
    """The original huptime pinned wrong symbol versions and lost accept4, dup3, exit."""
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(shim_path())], capture_output=True,
                         text=True, check=True).stdout
    for name in ("accept4", "accept", "dup3", "close", "epoll_wait", "fcntl64"):
        lines = [line for line in out.splitlines() if line.split()[-1:] == [name]]
        assert lines, f"{name} not exported"
    assert "@GLIBC" not in "".join(line for line in out.splitlines() if "FUNC" in line and "GLOBAL" in line and "UND" not in line)


def test_loading_in_this_process_is_inert():
    """The constructor ran when cffi loaded the library: nothing here changed."""
    import signal
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
    assert sys.modules["cffi"]
