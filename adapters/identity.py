"""Which weights a model holds, whatever their dtype or device: a sample and a fingerprint.

A model is identified by a small sample of its token embedding (64 values of ``embed.W_E`` at
fixed positions) read when it is loaded. Edits write MLP and attention weights, so an edited
checkpoint keeps the identity of the model it was edited from, and artefacts made for that model
(vectors, other patches) still apply. The fingerprint is a hash of the model's dimensions and of
that sample rounded to bfloat16, so a float32 and a bfloat16 load of one checkpoint share it.
Samples read at different precisions are compared by ``same_weights``: two samples match when
every pair of values could be roundings of one real weight (they differ by at most the two
precisions' units in the last place), which tells a float16 load of a model from the model
itself, and either from a fine-tune whose weights moved by more than rounding.
"""

from __future__ import annotations

import base64
import hashlib
import json

import torch
from jaxtyping import Float
from torch import Tensor

from .config import ModelConfig

SAMPLE = 64
DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}


def sample_values(view: Float[Tensor, "..."], count: int = SAMPLE) -> Float[Tensor, " count"]:
    """``count`` values of a weight at evenly spread flat positions, as float32 on the CPU
    (read without copying the weight)."""
    n = view.numel()
    flat = torch.tensor([int((k + 0.5) * n / count) for k in range(count)])
    index = torch.unravel_index(flat, view.shape)
    return view.detach()[index].float().cpu()


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def fingerprint(cfg: ModelConfig, sample: Float[Tensor, " n"]) -> str:
    """16 hex digits naming the model's dimensions and its weight sample rounded to bfloat16."""
    dims = {k: v for k, v in cfg.to_dict().items() if k != "name"}
    digest = hashlib.sha256(json.dumps(dims, sort_keys=True).encode())
    digest.update(sample.to(torch.bfloat16).float().numpy().tobytes())
    return digest.hexdigest()[:16]


def legacy_fingerprint(cfg: ModelConfig, embed: Float[Tensor, "d_vocab d_model"]) -> str:
    """The fingerprint interv wrote before 0.2 (dims and a strided sample of ``embed.W_E`` at the
    load's own precision); kept to check files written then."""
    dims = {k: v for k, v in cfg.to_dict().items() if k != "name"}
    digest = hashlib.sha256(json.dumps(dims, sort_keys=True).encode())
    sample = embed.detach()[:: max(1, embed.shape[0] // 256)].float().cpu().contiguous()
    digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def encode_sample(sample: Float[Tensor, " n"]) -> str:
    return base64.b64encode(sample.float().contiguous().numpy().tobytes()).decode("ascii")


def decode_sample(text: str) -> Float[Tensor, " n"]:
    raw = bytearray(base64.b64decode(text.encode("ascii"), validate=True))
    return torch.frombuffer(raw, dtype=torch.float32).clone()


def _ulp(x: Float[Tensor, " n"], dtype: torch.dtype) -> Float[Tensor, " n"]:
    """The unit in the last place of each value at ``dtype`` (subnormals included)."""
    info = torch.finfo(dtype)
    _, exponent = torch.frexp(x.double())
    ulp = torch.ldexp(torch.full_like(x, info.eps, dtype=torch.float64), exponent - 1)
    smallest = info.eps * info.tiny  # the subnormal step, also the step next to zero
    return torch.where(x == 0, smallest, ulp.clamp(min=smallest)).float()


def same_weights(
    a: Float[Tensor, " n"], a_dtype: str, b: Float[Tensor, " m"], b_dtype: str
) -> bool:
    """Whether two samples can be one model's weights read at ``a_dtype`` and ``b_dtype``."""
    if a.shape != b.shape or a_dtype not in DTYPES or b_dtype not in DTYPES:
        return False
    tolerance = _ulp(a, DTYPES[a_dtype]) + _ulp(b, DTYPES[b_dtype])
    return bool(((a - b).abs() <= tolerance).all())
