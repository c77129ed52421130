"""The build step of `pip install ./python`: builds libtopk with CMake from the repository around this
folder and puts the shared library inside the package (topk/libtopk.so), so importing needs no compiler.

The library has the GPU image when the offload toolchain is here (clang-19, libomptarget-19 and the CUDA 12
root that ci/bootstrap lays out in .toolchain/cuda12), else it is CPU-only (-DTOPK_GPU=OFF).
Environment: TOPK_CMAKE_ARGS adds CMake arguments (e.g. "-DTOPK_GPU=OFF"); TOPK_SOURCE_DIR points at the
repository when this folder was copied away from it; TOPK_SKIP_BUILD=1 ships no library, and the package
then loads $TOPK_LIBRARY or an installed libtopk.so.0.MINOR at import.
It also builds topk._fast (topk/_fast.c), the C path of topk.topk(), when a C compiler and this Python's
headers are here (Debian: python3-dev); it is optional: without it the install succeeds and the package
runs its Python path. TOPK_FAST=0 leaves it out, which makes a wheel for every Python 3 (py3-none).

The wheel is self-contained: the libraries libtopk.so needs beyond the C and C++ runtimes (LLVM's libomp
and libomptarget, which a GPU host with only a driver and PyTorch lacks, and what they need in turn) are
copied into topk/libs/ and found through RUNPATH $ORIGIN (patchelf), the way PyTorch ships libgomp; the
platform tag is manylinux_2_N_x86_64 for the newest glibc symbol version any of them asks for.
"""
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # setuptools >= 70 carries it
    from setuptools.command.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent


def gpu_toolchain(source):
    return bool(shutil.which("clang-19") and Path("/usr/lib/llvm-19/lib/libomptarget.so").exists()
                and (source / ".toolchain/cuda12/bin/ptxas").exists())


def build_library(build_temp):
    source = Path(os.environ.get("TOPK_SOURCE_DIR", HERE.parent)).resolve()
    if not (source / "include/topk.h").exists():
        raise RuntimeError(f"libtopk's sources are not at {source}: install from the repository (pip install ./python) "
                           "or set TOPK_SOURCE_DIR")
    build = Path(build_temp).resolve() / "libtopk"
    configure = ["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", "-DTOPK_TESTS=OFF",
                 "-DTOPK_BENCH=OFF", f"-DTOPK_GPU={'ON' if gpu_toolchain(source) else 'OFF'}"]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    subprocess.run(configure + shlex.split(os.environ.get("TOPK_CMAKE_ARGS", "")), check=True)
    subprocess.run(["cmake", "--build", str(build), "--target", "topk"], check=True)
    return build / "libtopk.so"


# What every Linux with glibc has (the manylinux policy's libraries): never copied into the wheel.
SYSTEM_LIBRARIES = re.compile(r"^(libc|libm|libpthread|libdl|librt|libutil|libresolv|libgcc_s|libstdc\+\+|"
                              r"ld-linux-x86-64|linux-vdso)\.so")


def vendor_runtime(library):
    """Copies every library that `library` loads, directly or not, except SYSTEM_LIBRARIES, into libs/
    beside it under its soname, and points RUNPATHs there: libtopk.so at $ORIGIN/libs, each copy at $ORIGIN."""
    libs = library.parent / "libs"
    shutil.rmtree(libs, ignore_errors=True)
    libs.mkdir()
    listing = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=True).stdout
    for soname, path in re.findall(r"^\s*(\S+) => (/\S+)", listing, re.M):
        if SYSTEM_LIBRARIES.match(soname):
            continue
        copy = libs / soname
        shutil.copyfile(path, copy)
        copy.chmod(0o755)
        subprocess.run(["patchelf", "--set-rpath", "$ORIGIN", str(copy)], check=True)
    subprocess.run(["patchelf", "--set-rpath", "$ORIGIN/libs", str(library)], check=True)


def glibc_needed(folder):
    """The newest GLIBC_2.N symbol version any ELF file under folder asks for: N (0 when none)."""
    newest = 0
    for path in Path(folder).rglob("*.so*"):
        symbols = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True).stdout
        newest = max([newest] + [int(v) for v in re.findall(r"GLIBC_2\.(\d+)", symbols)])
    return newest


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        if os.environ.get("TOPK_SKIP_BUILD") == "1":
            return
        library = build_library(self.get_finalized_command("build").build_temp)
        target = Path(self.build_lib) / "topk" / "libtopk.so"
        shutil.copyfile(library.resolve(), target)
        vendor_runtime(target)


class ManylinuxWheel(bdist_wheel):
    """Tags the wheel manylinux_2_N_x86_64, N from the glibc its libraries need (else as bdist_wheel does);
    without topk._fast (TOPK_FAST=0) the package is ctypes alone and the wheel is py3-none: any Python 3."""

    def get_tag(self):
        python, abi, platform = super().get_tag()
        if not self.distribution.ext_modules:
            python, abi = "py3", "none"
        build_lib = self.get_finalized_command("build").build_lib
        newest = glibc_needed(build_lib) if platform == "linux_x86_64" else 0
        return python, abi, f"manylinux_2_{newest}_x86_64" if newest else platform


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform, not "any"."""

    def has_ext_modules(self):
        return True


# topk.h (flags, topk_select's type) from the repository around this folder, as the library's build takes it
FAST = Extension("topk._fast", ["topk/_fast.c"], extra_compile_args=["-std=c17"], optional=True,
                 include_dirs=[str(Path(os.environ.get("TOPK_SOURCE_DIR", HERE.parent)).resolve() / "include")])

setup(cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": ManylinuxWheel}, distclass=BinaryDistribution,
      ext_modules=[] if os.environ.get("TOPK_FAST") == "0" else [FAST])
