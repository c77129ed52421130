"""libtopk from Python: top-k selection and sampling over the rows of NumPy arrays and PyTorch tensors
(CPU or CUDA), zero copy, bit for bit the same on every backend.

    import torch, topk
    values, indices = topk.topk(torch.randn(4, 50304, dtype=torch.bfloat16), 50)
    tokens = topk.sample_logits(logits, temperature=0.7, top_k=50, top_p=0.9, seed=1)

Thin bindings (ctypes) over include/topk.h; the library is $TOPK_LIBRARY or the copy that
`pip install ./python` built into this package (see topk._library). topk()'s common call runs in the
optional C extension topk._fast when it was built (see topk.select; TOPK_PY_FAST=0 turns it off).
Rows split by vocabulary over torch.distributed ranks (tensor parallelism, torchrun): topk.shard_topk and
topk.shard_sample (topk.shard).
"""
from ._backends import backend_name, reset
from . import _library
from ._library import TopkArgumentError, TopkError, TopkTypeError, version
from .sampling import (Sampled, sample, sample_logits, sample_next_token, softmax, top_k_mask_logits, top_k_renorm_probs,
                       top_p_renorm_probs)
from .select import TopK, topk
from .speculative import chain_speculative_sampling
from .shard import shard_sample, shard_topk
import sys as _sys

# torch.compile support (topk._torch_ops), when torch is already loaded: importing it here would cost
# NumPy users a second of import time.
torch_ops = "torch" in _sys.modules and __import__("topk._torch_ops", fromlist=["register"]).register(topk, sample, TopK)

library_version = version
__version__ = ".".join(map(str, _library.VERSION))
__all__ = ["topk", "TopK", "sample", "Sampled", "sample_logits", "sample_next_token", "softmax", "top_k_renorm_probs",
           "top_p_renorm_probs", "top_k_mask_logits", "chain_speculative_sampling", "shard_topk", "shard_sample",
           "backend_name", "reset", "TopkError", "TopkArgumentError", "TopkTypeError", "library_version", "__version__"]
