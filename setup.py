"""Build csrc/*.c into src/huptime/libhuptime.so: a plain shared library, not a
Python extension. It is preloaded into arbitrary programs, so it must not need
libpython (-Wl,-z,defs proves it) and it must load with LD_BIND_NOW=1.
csrc/protocol.h goes next to it: huptime/protocol.py reads the shared definitions
from there at run time."""

import os
import shlex
import shutil
import subprocess
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1 (Debian 12 has 66): the wheel package has it
    from wheel.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
SOURCES = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*.c"))
PROTOCOL = Path("csrc/protocol.h")  # installed as huptime/protocol.h
CFLAGS = ["-std=gnu11", "-O2", "-flto", "-g", "-Wall", "-Wextra", "-fPIC", "-fvisibility=hidden"]
LDFLAGS = ["-shared", "-flto=auto", "-Wl,-z,defs", "-Wl,-z,now", "-Wl,--as-needed", "-ldl", "-pthread"]


class BuildShim(build_ext):
    """Compile and link the shim with the system C compiler, named libhuptime.so,
    and put the protocol.h it was built with beside it."""

    def get_ext_filename(self, fullname):
        return os.path.join(*fullname.split(".")[:-1], "libhuptime.so")

    def build_extension(self, ext):
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        cc = shlex.split(os.environ.get("CC", "cc"))
        cmd = [*cc, *CFLAGS, *shlex.split(os.environ.get("CFLAGS", "")), "-o", str(target),
               *[str(HERE / s) for s in ext.sources], *LDFLAGS,
               *shlex.split(os.environ.get("LDFLAGS", ""))]
        self.announce(" ".join(cmd), level=2)
        subprocess.run(cmd, check=True)
        shutil.copyfile(HERE / PROTOCOL, target.parent / PROTOCOL.name)

    def get_outputs(self):
        shims = super().get_outputs()
        return [*shims, *(str(Path(shim).parent / PROTOCOL.name) for shim in shims)]


class PlatformWheel(bdist_wheel):
    """The wheel holds native code but no CPython ABI: py3-none-<platform>."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        return "py3", "none", sysconfig.get_platform().replace("-", "_").replace(".", "_")


setup(
    ext_modules=[Extension("huptime.libhuptime", sources=SOURCES, depends=[
        str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*.h")])],
    cmdclass={"build_ext": BuildShim, "bdist_wheel": PlatformWheel},
)
