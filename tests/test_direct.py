"""The shim's direct system calls (csrc/direct.h): while a program has no thread of
its own and never cancelled one, the shim's entry points on the connection path
skip libc's cancellation bookkeeping, which its own restart thread would otherwise
make every request pay. Results, errno and cancellation stay libc's."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from support.build import free_port
from support.process import WatchedProcess
from test_shim_safety import BASE, shim_env, under_shim

SOURCE = os.path.join(os.path.dirname(__file__), "servers", "direct_calls.c")


@pytest.fixture
def direct_calls(tmp_path):
    binary = tmp_path / "direct_calls"
    subprocess.run(["cc", "-O2", "-Wall", "-pthread", "-o", str(binary), SOURCE], check=True,
                   timeout=60)
    return binary


def run(program: WatchedProcess, port: int) -> list[str]:
    """The program's lines after its one client, up to its exit (status 0)."""
    program.wait_for_line(f"listening on {port}", timeout=20)
    socket.create_connection(("127.0.0.1", port), timeout=10).close()
    assert program.wait(20) == 0, program.output()
    lines = program.output().splitlines()
    return [line for line in lines[lines.index("accepted"):] if not line.startswith("huptime[")]


@pytest.mark.parametrize("threads", [True, False], ids=["then-a-thread", "no-thread"])
def test_direct_calls_answer_as_libc_and_a_cancel_still_lands(direct_calls, port, threads):
    """Every call the shim makes directly gives libc's result and errno, before and
    after the program's first thread; a thread-free program's pthread_cancel() turns
    them off, so its next accept() is a cancellation point."""
    argv = [str(direct_calls), str(port)] + ([] if threads else ["nothread"])
    bare = run(WatchedProcess(argv), port)
    assert bare[-1] == "cancelled in accept", bare
    assert "read bad fd: -1 EBADF" in bare and "send to closed peer: -1 EPIPE" in bare, bare
    assert "recv empty: -1 EAGAIN" in bare and "close again: -1 EBADF" in bare, bare
    other = free_port()  # a port of its own: the first run's connection may hold its port
    argv[1] = str(other)
    shimmed = run(under_shim(argv, shim_env(**BASE)), other)
    assert shimmed == bare
