"""The hot path: a busy server pays no system call for the shim.

strace counts every system call of a server that answers each connection in its
accepting thread (tests/servers/cserver.c -DUSE_ACCEPT4 -DINLINE), bare and under the
shim, for K connections queued while it was stopped (support/syscalls.py): the same
calls, by name, within the noise of the stop itself (STOP_NOISE), where one call more
per connection would be K.
"""

from __future__ import annotations

import shutil

import pytest

from huptime.launcher import shim_path
from support.servers import server_command
from support.syscalls import STOP_NOISE, calls_per_batch

K = 50  # queued clients of the smaller run; the listen backlog holds 2K


def test_a_busy_server_pays_no_system_call_for_the_shim(port, build_dir, tmp_path):
    if not shutil.which("strace"):
        pytest.fail("strace is needed here (.ci/run installs it)")
    argv = server_command("c-inline", port, build_dir)
    bare = calls_per_batch(argv, port, None, K, tmp_path)
    shim = calls_per_batch(argv, port, shim_path(), K, tmp_path)
    added = {name: shim.get(name, 0) - bare.get(name, 0) for name in shim | bare}
    assert all(abs(n) <= STOP_NOISE for n in added.values()), \
        f"for {K} connections: bare {bare}, shim {shim}"
    for name in ("accept4", "recvfrom", "sendto", "close"):
        assert abs(bare[name] - K) <= STOP_NOISE, bare
