"""The build step of `pip install ./python`: builds libtopk with CMake from the repository around this
folder and puts the shared library inside the package (topk/libtopk.so), so importing needs no compiler.

The library has the GPU image when the offload toolchain is here (clang-19, libomptarget-19 and the CUDA 12
root that ci/bootstrap lays out in .toolchain/cuda12), else it is CPU-only (-DTOPK_GPU=OFF).
Environment: TOPK_CMAKE_ARGS adds CMake arguments (e.g. "-DTOPK_GPU=OFF"); TOPK_SOURCE_DIR points at the
repository when this folder was copied away from it; TOPK_SKIP_BUILD=1 ships no library, and the package
then loads $TOPK_LIBRARY or an installed libtopk.so.0.MINOR at import.
It also builds topk._fast (topk/_fast.c), the C path of topk.topk(), when a C compiler and this Python's
headers are here (Debian: python3-dev); it is optional: without it the install succeeds and the package
runs its Python path.
"""
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

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


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        if os.environ.get("TOPK_SKIP_BUILD") == "1":
            return
        library = build_library(self.get_finalized_command("build").build_temp)
        shutil.copyfile(library.resolve(), Path(self.build_lib) / "topk" / "libtopk.so")


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform, not "any"."""

    def has_ext_modules(self):
        return True


# topk.h (flags, topk_select's type) from the repository around this folder, as the library's build takes it
FAST = Extension("topk._fast", ["topk/_fast.c"], extra_compile_args=["-std=c17"], optional=True,
                 include_dirs=[str(Path(os.environ.get("TOPK_SOURCE_DIR", HERE.parent)).resolve() / "include")])

setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution, ext_modules=[FAST])
