"""The shim stays a stack: README's layer table against csrc/'s includes, and the
built library against its own exports (the shim never calls what it interposes)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from huptime.launcher import shim_path

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layers() -> dict[str, int]:
    """README's Layout table: csrc file name -> layer. `name` is name.c + name.h."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Layout"):]
    found: dict[str, int] = {}
    for number, files in re.findall(r"^\| (\d+) \| ([^|]+) \|", table, re.M):
        for name in (n.strip() for n in files.split(",")):
            for file in ([name] if "." in name else [f"{name}.c", f"{name}.h"]):
                assert file not in found, f"{file} is in two layers of README's table"
                found[file] = int(number)
    return found


def includes(path: Path) -> list[str]:
    return INCLUDE.findall(path.read_text())


def test_every_csrc_file_has_a_layer_and_every_layer_entry_a_file():
    table = layers()
    on_disk = {p.name for p in CSRC.iterdir() if p.suffix in (".c", ".h")}
    assert on_disk - set(table) == set(), "csrc files missing from README's layer table"
    assert set(table) - on_disk == set(), "README's layer table names files that do not exist"


def test_each_file_includes_only_lower_layers():
    table = layers()
    wrong = []
    for path in sorted(CSRC.glob("*.[ch]")):
        own = path.with_suffix(".h").name
        if path.name not in table:
            wrong.append(f"{path.name} is in no layer")
            continue
        for header in includes(path):
            if header == own:
                continue
            if header not in table:
                wrong.append(f"{path.name} includes {header}, which is in no layer")
            elif table[header] >= table[path.name]:
                wrong.append(f"{path.name} (layer {table[path.name]}) includes {header} "
                             f"(layer {table[header]})")
    assert wrong == []


def test_the_include_graph_has_no_circle():
    """Holds by the check above; stated on its own so a wrong table cannot hide one."""
    node = lambda name: name.rsplit(".", 1)[0]  # noqa: E731  x.c and x.h are one file
    edges: dict[str, set[str]] = {}
    for path in CSRC.glob("*.[ch]"):
        edges.setdefault(node(path.name), set()).update(
            node(h) for h in includes(path) if node(h) != node(path.name))
    state: dict[str, int] = {}

    def visit(n: str, trail: list[str]) -> None:
        state[n] = 1
        for m in sorted(edges.get(n, ())):
            assert state.get(m) != 1, f"circle: {' -> '.join(trail + [n, m])}"
            if m not in state:
                visit(m, trail + [n])
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n, [])


def dynamic(args: list[str]) -> str:
    return subprocess.run(["readelf", "-W", *args, str(shim_path())], capture_output=True,
                          text=True, check=True).stdout


def test_the_library_never_calls_a_libc_name_it_exports():
    """A call to unlink() or recv() inside the shim would bind to its own wrapper."""
    exported = set()
    for line in dynamic(["--dyn-syms"]).splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND":
            exported.add(f[7].split("@")[0])
    interposed = {name for name in exported if not name.startswith("huptime_")}
    assert {"bind", "accept4", "close", "unlink", "recv"} <= interposed
    relocated = set()
    for line in dynamic(["-r"]).splitlines():
        if "JUMP_SLOT" in line or "GLOB_DAT" in line:
            relocated.add(line.split()[4].split("@")[0])
    assert relocated & interposed == set()
