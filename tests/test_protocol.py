"""csrc/protocol.h is the one definition the shim and the launcher share: the C
compiler's view of it must be what huptime.protocol (cffi) reads, and no other
module of src/huptime may spell a shared value by hand."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from huptime import protocol, record

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "csrc" / "protocol.h"
SRC = ROOT / "src" / "huptime"


def test_the_installed_header_is_the_source_tree_s():
    assert protocol.header_path().read_text() == HEADER.read_text(), "run `make install`"


def field_names() -> list[str]:
    return [name for name, _ in protocol.ffi.typeof("struct gen_page").fields]


def c_program(fields: list[str], integers: list[str], strings: list[str]) -> str:
    """Prints what the compiler makes of protocol.h, one `kind name value` a line,
    and writes a page with a distinct value in every field to argv[1]."""
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include <string.h>',
             '#include "protocol.h"',
             '#define FIELD(f) printf("offset %s %zu\\nsize %s %zu\\n", #f, '
             'offsetof(struct gen_page, f), #f, sizeof(((struct gen_page *)0)->f))',
             'int main(int argc, char **argv) {',
             '    (void)argc;',
             '    printf("sizeof gen_page %zu\\n", sizeof(struct gen_page));']
    lines += [f'    FIELD({f});' for f in fields]
    lines += [f'    printf("int {n} %lld\\n", (long long)({n}));' for n in integers]
    lines += [f'    printf("str {n} %s\\n", {n});' for n in strings]
    lines += ['    static char buffer[GEN_PAGE_SIZE];',
              '    struct gen_page *page = (struct gen_page *)buffer;',
              '    page->state = GEN_DRAINING; page->conns = 7; page->ready = 1;',
              '    page->number = 12; page->leader = 4242; page->version = GEN_PAGE_VERSION;',
              '    page->waiting = 1; page->started_ms = 1700000000123LL;',
              '    strcpy(page->listeners, "127.0.0.1:8080 udp:[::1]:53 unix:/run/app.sock");',
              '    FILE *f = fopen(argv[1], "wb");',
              '    if (!f || fwrite(buffer, sizeof buffer, 1, f) != 1 || fclose(f)) return 1;',
              '    return 0;', '}']
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[dict[str, str], Path]:
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler")
    work = tmp_path_factory.mktemp("protocol")
    source = work / "probe.c"
    source.write_text(c_program(field_names(), sorted(protocol.INTEGERS),
                                sorted(protocol.STRINGS)))
    binary = work / "probe"
    subprocess.run([cc, "-std=gnu11", "-Wall", "-Werror", "-I", str(HEADER.parent), "-o",
                    str(binary), str(source)], check=True, capture_output=True, text=True)
    page = work / "gen-12"
    out = subprocess.run([str(binary), str(page)], check=True, capture_output=True,
                         text=True).stdout
    seen = {}
    for line in out.splitlines():
        kind, name, value = line.split(" ", 2)
        seen[f"{kind} {name}"] = value
    return seen, page


def test_cffi_lays_out_the_page_as_the_compiler_does(compiled):
    seen, _ = compiled
    ffi = protocol.ffi
    page = ffi.typeof("struct gen_page")
    assert int(seen["sizeof gen_page"]) == ffi.sizeof(page)
    for name, f in page.fields:
        assert int(seen[f"offset {name}"]) == f.offset == ffi.offsetof(page, name), name
        assert int(seen[f"size {name}"]) == ffi.sizeof(f.type), name
    assert ffi.sizeof(page) <= protocol.GEN_PAGE_SIZE


def test_every_constant_reads_the_same_in_c_and_python(compiled):
    seen, _ = compiled
    # Every #define of the header, by the compiler's own preprocessor...
    macros = subprocess.run(["cc", "-dM", "-E", "-x", "c", str(HEADER)], check=True,
                            capture_output=True, text=True).stdout
    defined = set(re.findall(r"^#define ([A-Z][A-Z0-9_]*) ", macros, re.M)) - {"HUPTIME_PROTOCOL_H"}
    enum = set(protocol.ffi.typeof("enum gen_state").relements)
    # ... is one Python sees, as an integer or as a string.
    assert defined | enum == set(protocol.INTEGERS) | set(protocol.STRINGS)
    for name, value in protocol.INTEGERS.items():
        assert int(seen[f"int {name}"]) == value == getattr(protocol, name), name
    for name, value in protocol.STRINGS.items():
        assert seen[f"str {name}"] == value == getattr(protocol, name), name


def test_the_state_names_come_from_the_enum():
    assert [protocol.state_name(v) for v in (protocol.GEN_SERVING, protocol.GEN_DRAINING,
                                             protocol.GEN_RETIRED)] == ["serving", "draining", "retired"]
    assert protocol.state_name(99) == "?"


def test_a_page_written_in_c_is_read_by_name(compiled):
    _, path = compiled
    page = record.read_page(path)
    assert page is not None
    assert (page.state, page.conns, page.ready, page.number, page.leader, page.waiting,
            page.started_ms) == (protocol.GEN_DRAINING, 7, 1, 12, 4242, 1, 1700000000123)
    assert protocol.listeners(page) == ["127.0.0.1:8080", "udp:[::1]:53", "unix:/run/app.sock"]


def test_a_page_without_its_version_or_short_is_not_read(compiled, tmp_path):
    _, path = compiled
    data = bytearray(path.read_bytes())
    offset = protocol.ffi.offsetof("struct gen_page", "version")
    data[offset:offset + 4] = bytes(4)
    unversioned = tmp_path / "gen-1"
    unversioned.write_bytes(bytes(data))
    assert record.read_page(unversioned) is None
    short = tmp_path / "gen-2"
    short.write_bytes(path.read_bytes()[:protocol.ffi.sizeof("struct gen_page") - 1])
    assert record.read_page(short) is None


# --- no hand-written copy in src/huptime ------------------------------------------

def modules() -> list[Path]:
    return sorted(p for p in SRC.glob("*.py") if p.name != "protocol.py")


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def strings_in_code(tree: ast.AST) -> list[ast.Constant]:
    skip = docstrings(tree)
    return [n for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]


def compared_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Strings a comparison (==, !=, in) is made with, directly or in a literal tuple."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                found += [(i.lineno, i.value) for i in items
                          if isinstance(i, ast.Constant) and isinstance(i.value, str)]
    return found


def test_no_module_spells_a_variable_name_by_hand():
    spelled = [f"{path.name}:{node.lineno}: {node.value!r}"
               for path in modules() for node in strings_in_code(ast.parse(path.read_text()))
               if re.search(r"HUPTIME_[A-Z]", node.value)]
    assert not spelled, "use protocol.ENV_...:\n" + "\n".join(spelled)


def test_no_module_compares_with_a_protocol_word_by_hand():
    words = {v for k, v in protocol.STRINGS.items() if not k.startswith("ENV_")}
    words |= {protocol.state_name(v) for v in protocol.ffi.typeof("enum gen_state").elements}
    spelled = [f"{path.name}:{line}: {value!r}" for path in modules()
               for line, value in compared_strings(ast.parse(path.read_text()))
               if value in words]
    assert not spelled, "use protocol.EVENT_/REPORT_/... or protocol.state_name:\n" + "\n".join(spelled)


# A struct module format with a byte order or a count: "=iiiiiiiiq1024s", "8iq".
STRUCT_FORMAT = re.compile(r"(?=.*[\d@=<>!])[@=<>!]?(\d*[xcbBhHiIlLqQnNefdsp?]){2,}")


def test_no_module_decodes_the_page_by_hand():
    spelled = []
    for path in modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if "struct" in names:
                    spelled.append(f"{path.name}:{node.lineno}: imports struct")
            if isinstance(node, ast.Attribute) and node.attr in ("Structure", "from_buffer_copy"):
                spelled.append(f"{path.name}:{node.lineno}: .{node.attr}")
        spelled += [f"{path.name}:{n.lineno}: {n.value!r}" for n in strings_in_code(tree)
                    if STRUCT_FORMAT.fullmatch(n.value)]
    assert not spelled, "read pages through protocol.page:\n" + "\n".join(spelled)


def test_no_module_writes_a_protocol_limit_as_a_number():
    limits = {protocol.HANDOFF_MAX_FDS, protocol.HANDOFF_MAX_SIGNALS, protocol.MAX_UNLINK,
              protocol.GEN_PAGE_SIZE, protocol.GEN_LISTENERS_SIZE}
    spelled = [f"{path.name}:{n.lineno}: {n.value}" for path in modules()
               for n in ast.walk(ast.parse(path.read_text()))
               if isinstance(n, ast.Constant) and type(n.value) is int and n.value in limits]
    assert not spelled, "use the protocol.h constant:\n" + "\n".join(spelled)


def test_every_protocol_name_the_package_uses_exists():
    used = {(path.name, node.attr) for path in modules()
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "protocol"}
    assert used, "the scan found no use of protocol at all"
    missing = [f"{name}: protocol.{attr}" for name, attr in sorted(used)
               if not hasattr(protocol, attr)]
    assert not missing, "\n".join(missing)
