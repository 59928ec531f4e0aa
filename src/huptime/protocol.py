"""What the launcher shares with the shim, read from the shim's own definition.

csrc/protocol.h is installed next to libhuptime.so. Its block between the
`/* cdef begin */` and `/* cdef end */` markers goes to cffi as it stands (ABI
mode: no compiler at run time), which gives the integer constants, the states of
`enum gen_state` and the layout of `struct gen_page`; every `#define NAME "text"`
line after the block is a string constant (variable names, event words...).
Nothing here repeats a value: the rest of the package names them through this
module, e.g. `protocol.ENV_FDS`, `protocol.EVENT_SERVING`, `protocol.MAX_UNLINK`.

The string constants are read at import; cffi is loaded on first use of `ffi`,
an integer constant or a page (about 40 ms), which a launch pays only when the
runtime directory holds other instances' pages to prune.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

from huptime import HuptimeError

HEADER_NAME = "protocol.h"
BEGIN, END = "/* cdef begin */", "/* cdef end */"
STRING = re.compile(r'#define\s+([A-Z][A-Z0-9_]*)\s+"([^"\\]*)"')


def header_path() -> Path:
    """protocol.h as installed with the shim (setup.py copies it there)."""
    return Path(str(resources.files("huptime").joinpath(HEADER_NAME)))


def split_header(text: str) -> tuple[str, dict[str, str]]:
    """The cdef block and the string constants after it; anything else after the
    block that is a #define breaks the file's rule, so it is refused."""
    try:
        head, rest = text.split(BEGIN, 1)
        block, tail = rest.split(END, 1)
    except ValueError:
        raise HuptimeError(f"{HEADER_NAME}: no {BEGIN} ... {END} block") from None
    strings = {}
    for line in tail.splitlines():
        if not line.startswith("#define"):
            continue
        found = STRING.match(line)
        if not found:
            raise HuptimeError(f"{HEADER_NAME}: not a string constant: {line.strip()}")
        strings[found[1]] = found[2]
    return block, strings


def read_header() -> str:
    path = header_path()
    try:
        return path.read_text()
    except OSError as exc:
        raise HuptimeError(f"the shim's protocol definition is missing ({path}: "
                           f"{exc.strerror}): reinstall huptime") from None


CDEF, STRINGS = split_header(read_header())
globals().update(STRINGS)

# The names every part of the environment a huptime server inherits can have:
# ENV_MODE..ENV_PROTOCOL.
ENV_NAMES = tuple(value for name, value in STRINGS.items() if name.startswith("ENV_"))


@functools.lru_cache(maxsize=None)
def _cffi() -> tuple[Any, dict[str, int]]:
    import cffi  # here, not at the top: see the module's docstring

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    lib = ffi.dlopen(None)  # only to read the constants; no function is declared
    return ffi, {name: getattr(lib, name) for name in dir(lib)}


def __getattr__(name: str) -> Any:
    """`ffi` and the integer constants (#define and enum values of the block)."""
    if name == "ffi":
        return _cffi()[0]
    if name == "INTEGERS":
        return dict(_cffi()[1])
    try:
        return _cffi()[1][name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def state_name(state: int) -> str:
    """GEN_SERVING -> "serving": what --status prints; "?" for a value not in the enum."""
    names = _cffi()[0].typeof("enum gen_state").elements
    return names[state][len("GEN_"):].lower() if state in names else "?"


def page(data: bytes) -> Any | None:
    """The `struct gen_page` at the start of data (fields by name, e.g. page.leader),
    or None if data is too short or the page has no GEN_PAGE_VERSION: a page is
    being created until its version is written, last."""
    ffi, integers = _cffi()
    if len(data) < ffi.sizeof("struct gen_page"):
        return None
    found = ffi.from_buffer("struct gen_page *", data)
    return found if found.version == integers["GEN_PAGE_VERSION"] else None


def listeners(found: Any) -> list[str]:
    """The page's listeners text, one word per socket (udp:..., unix:..., host:port)."""
    return _cffi()[0].string(found.listeners).decode(errors="replace").split()
