"""Device and dtype choices: ``"auto"`` picks CUDA when present."""

from __future__ import annotations

import torch

from .errors import ConfigError

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={str(device)!r} was requested but CUDA is not available; use 'cpu' or 'auto'."
        )
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """``None`` and ``"auto"`` mean float32, the precision editing methods need."""
    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[dtype.lower().removeprefix("torch.")]
    except KeyError:
        raise ConfigError(
            f"Unknown dtype {dtype!r}; use one of {', '.join(sorted(_DTYPES))}."
        ) from None
