"""Wrong inputs are clear Python exceptions, never a crash; library statuses carry the library's message;
the environment's backend selection (TOPK_BACKEND, the old AIKF_TOPK_IMPL) and the library's loading."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import CUDA, usable, torch

import topk
from topk import _backends

X = np.zeros((2, 10), np.float32)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.bool_])
def test_unread_dtype(dtype):
    with pytest.raises(TypeError, match="float32, float16 and bfloat16"):
        topk.topk(X.astype(dtype), 2)


def test_not_an_array():
    with pytest.raises(topk.TopkTypeError, match="NumPy array or a PyTorch tensor"):
        topk.topk([[1.0, 2.0]], 1)


def test_byte_swapped():
    with pytest.raises(TypeError, match="byte order"):
        topk.topk(X.astype(">f4"), 2)


@pytest.mark.parametrize("k", [-1, 11, 1 << 40])
def test_bad_k_has_the_library_message(k):
    with pytest.raises(topk.TopkArgumentError, match="k is negative or larger than vocab") as error:
        topk.topk(X, k)
    assert error.value.status_name == "BAD_K" and isinstance(error.value, ValueError)


def test_k_must_be_an_integer():
    with pytest.raises(TypeError):
        topk.topk(X, 2.5)


def test_shapes():
    with pytest.raises(ValueError, match="scalar"):
        topk.topk(np.array(1.0, np.float32), 1)
    with pytest.raises(ValueError, match="dim 2 is out of range"):
        topk.topk(X, 1, dim=2)
    with pytest.raises(topk.TopkArgumentError, match="larger than vocab"):
        topk.topk(np.zeros((2, 0), np.float32), 1)
    assert topk.topk(np.zeros((2, 0), np.float32), 0).values.shape == (2, 0)  # as torch.topk


def test_out_arrays_checked():
    with pytest.raises(ValueError, match=r"dense ndarray of shape \(2, 2\) and dtype float32 on the input's device, "
                                         r"not a ndarray of shape \(2, 3\)"):
        topk.topk(X, 2, out=(np.empty((2, 3), np.float32), np.empty((2, 3), np.int64)))
    with pytest.raises(ValueError, match="dtype int64"):
        topk.topk(X, 2, out=(np.empty((2, 2), np.float32), np.empty((2, 2), np.int32)))
    with pytest.raises(ValueError, match="dense"):
        topk.topk(X, 2, out=(np.empty((2, 4), np.float32)[:, ::2], np.empty((2, 2), np.int64)))


def test_unknown_backend_name():
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        topk.topk(X, 1, backend="gpu")


@pytest.mark.skipif(usable("offload"), reason="the offload backend is usable here")
def test_offload_without_gpu_is_a_runtime_error():
    with pytest.raises(topk.TopkError, match="no usable GPU") as error:
        topk.topk(X, 1, backend="offload")
    assert error.value.status_name == "NO_DEVICE" and not isinstance(error.value, ValueError)


@pytest.fixture
def environment(monkeypatch):
    """Sets backend variables for one test, with contexts made afresh before and after."""
    _backends.reset()
    yield monkeypatch
    monkeypatch.undo()
    _backends.reset()


def test_topk_backend_variable(environment):
    environment.setenv("TOPK_BACKEND", "reference")
    assert topk.backend_name() == "reference"
    assert topk.backend_name("cpu") == "reference"  # as in C: the variable wins over the argument


def test_bad_topk_backend_variable(environment):
    environment.setenv("TOPK_BACKEND", "fastest")
    with pytest.raises(topk.TopkArgumentError, match="TOPK_BACKEND") as error:
        topk.topk(X, 1)
    assert error.value.status_name == "BAD_ENV"


@pytest.mark.parametrize("old,ours", [("torch", "auto"), ("CUDA", "offload"), ("triton", "offload"),
                                      ("cpu", "cpu"), ("naive", "reference"), ("auto", "auto")])
def test_old_variable_is_mapped_with_a_notice(environment, capsys, old, ours):
    environment.setenv("AIKF_TOPK_IMPL", old)
    assert _backends.environment_choice() == ours
    assert capsys.readouterr().err == f"topk: AIKF_TOPK_IMPL={old} is read as TOPK_BACKEND={ours}\n"
    _backends.environment_choice()
    assert capsys.readouterr().err == ""  # once


def test_old_variable_loses_to_ours(environment, capsys):
    environment.setenv("AIKF_TOPK_IMPL", "cuda")
    environment.setenv("TOPK_BACKEND", "reference")
    assert topk.backend_name() == "reference" and capsys.readouterr().err == ""


def test_unknown_old_name(environment):
    environment.setenv("AIKF_TOPK_IMPL", "quantum")
    with pytest.raises(ValueError, match="AIKF_TOPK_IMPL='quantum'"):
        topk.topk(X, 1)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
def test_other_torch_devices():
    with pytest.raises(ValueError, match="device meta"):
        topk.topk(torch.zeros(2, 10, device="meta"), 1)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_tensor_on_cpu_backend():
    with pytest.raises(topk.TopkArgumentError, match="device pointers") as error:
        topk.topk(torch.zeros(2, 10, device="cuda"), 1, backend="cpu")
    assert error.value.status_name == "BAD_MEMORY"


def test_missing_library_is_an_import_error():
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(topk.__file__)))
    env = dict(os.environ, TOPK_LIBRARY="/nonexistent/libtopk.so",
               PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, "-c", "import topk"], env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "ImportError: topk: cannot load libtopk (set TOPK_LIBRARY" in run.stderr


def test_status_names_follow_the_header():
    from topk._library import C, STATUSES
    messages = [C["topk_strerror"](status).decode() for status in range(len(STATUSES) + 1)]
    assert messages[0] == "no error" and "unknown status" not in messages[:-1]
    assert messages[-1] == "unknown status"  # a status added to topk.h must be named in STATUSES too


def test_one_version_everywhere():
    """The package, the library it loaded, topk.h and pyproject.toml name one version (topk.h is its home)."""
    import re
    from pathlib import Path
    top = Path(__file__).resolve().parents[2]
    header = (top / "include" / "topk.h").read_text()
    parts = [re.search(rf"#define TOPK_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    pyproject = re.search(r'^version = "([^"]+)"', (top / "python" / "pyproject.toml").read_text(), re.M).group(1)
    assert topk.__version__ == topk.library_version == ".".join(parts) == pyproject


def test_statuses_match_the_header():
    """topk._library.STATUSES is topk.h's enum, number for number (the numbers are stable there)."""
    import re
    from pathlib import Path
    from topk._library import STATUSES
    header = (Path(__file__).resolve().parents[2] / "include" / "topk.h").read_text()
    block = header[header.index("typedef enum topk_status {"):header.index("} topk_status;")]
    enum = {int(number): name for name, number in re.findall(r"TOPK_(?:ERR_)?(\w+) = (\d+),", block)}
    assert [enum[i] for i in range(len(enum))] == list(STATUSES)
