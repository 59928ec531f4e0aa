"""What kind of program COMMAND is: whether the shim can be preloaded into it.

A preload enters only a dynamically linked program that the loader treats
normally. It cannot enter a statically linked ELF (no PT_INTERP: no loader runs),
a set-user-ID or set-group-ID program that changes who runs it (the loader ignores
LD_PRELOAD in secure execution), and it
sees nothing of a Go program even when cgo links it dynamically: Go's net package
makes its socket calls as raw system calls, so the shim never learns of a listener
and the restart signal would end the server. Such a program is refused before
anything starts; `--listen` runs it without the preload. A `#!` script is judged
by its interpreter (through `/usr/bin/env NAME` too).
"""

from __future__ import annotations

import os
import shutil
import stat

ELF_MAGIC = b"\x7fELF"
PT_INTERP = 3
GO_SECTIONS = (b".go.buildinfo", b".note.go.buildid")
SCRIPT_DEPTH = 4  # interpreters followed, as the kernel's own limit of nested #!


def _field(data: bytes, at: int, size: int, order: str) -> int:
    """An unsigned integer of `size` bytes at `at`; IndexError past the end."""
    if at + size > len(data):
        raise IndexError(at)
    return int.from_bytes(data[at:at + size], order)


def _elf(path: str) -> tuple[bool, bool] | None:
    """(has an interpreter, is a Go binary) for an ELF file, None if it is not one."""
    with open(path, "rb") as f:
        head = f.read(128)  # the ELF header: 52 or 64 bytes
        if len(head) < 52 or head[:4] != ELF_MAGIC or head[4] not in (1, 2) or head[5] not in (1, 2):
            return None
        wide, order = head[4] == 2, "little" if head[5] == 1 else "big"
        word = 8 if wide else 4
        phoff = _field(head, 32 if wide else 28, word, order)
        shoff = _field(head, 40 if wide else 32, word, order)
        at = 54 if wide else 42  # e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        phentsize, phnum, shentsize, shnum, shstrndx = (
            _field(head, at + 2 * i, 2, order) for i in range(5))
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        interp = any(_field(table, i * phentsize, 4, order) == PT_INTERP
                     for i in range(min(phnum, len(table) // max(phentsize, 1))))
        go = _go_sections(f, order, word, shoff, shentsize, shnum, shstrndx)
        return interp, go


def _go_sections(f, order: str, word: int, shoff: int, size: int, count: int, names: int) -> bool:
    """Whether the section headers name one of Go's own sections."""
    if not shoff or not size or names >= count or count > 65535:
        return False
    f.seek(shoff)
    table = f.read(size * count)
    if len(table) < size * count:
        return False
    entry = names * size + 8 + 2 * word  # sh_name, sh_type, sh_flags, sh_addr, then sh_offset
    strings_at, strings_size = _field(table, entry, word, order), _field(table, entry + word, word, order)
    if strings_size > 1 << 20:
        return False
    f.seek(strings_at)
    strings = f.read(strings_size)
    for i in range(count):
        name_at = _field(table, i * size, 4, order)
        end = strings.find(b"\0", name_at)
        if strings[name_at:end] in GO_SECTIONS:
            return True
    return False


def _interpreter(path: str, path_var: str | None) -> str | None:
    """The program a `#!` script runs (through env too), or None."""
    with open(path, "rb") as f:
        line = f.readline(256)
    if not line.startswith(b"#!"):
        return None
    words = line[2:].decode(errors="replace").split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        return shutil.which(rest[0], path=path_var) if rest else None
    return words[0]


def preload_refusal(program: str, path_var: str | None) -> str | None:
    """Why the shim cannot be preloaded into program (resolved, executable), or None."""
    name = program
    for _ in range(SCRIPT_DEPTH):
        try:
            st = os.stat(name)
            if st.st_mode & stat.S_ISUID and st.st_uid != os.getuid():
                return f"{name} is set-user-ID: the loader ignores LD_PRELOAD for it"
            if st.st_mode & stat.S_ISGID and st.st_gid != os.getgid():
                return f"{name} is set-group-ID: the loader ignores LD_PRELOAD for it"
            elf = _elf(name)
            if elf is None:
                name = _interpreter(name, path_var) or ""
                if not name:
                    return None
                continue
        except (OSError, IndexError):
            return None  # unreadable or odd: let exec decide, as before
        interp, go = elf
        if go:
            return (f"{name} is a Go program: its net package calls the kernel directly, so "
                    "the preloaded shim never sees its sockets")
        if not interp:
            return f"{name} is statically linked: no loader runs, so nothing can be preloaded"
        return None
    return None
