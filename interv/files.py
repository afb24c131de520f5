"""interv's artefact files: one safetensors file whose header names its format and version and
holds JSON metadata (patches, steering vectors). Reading checks all three before trusting it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor


def write_tagged(path: str | Path, tensors: dict[str, Tensor], fmt: str, version: int, meta: dict[str, Any]) -> Path:
    """Save ``tensors`` (made contiguous, on CPU) with ``{format, version, meta}`` in the header."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": fmt, "version": str(version), "meta": json.dumps(meta, default=str)}
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=header)
    return path


def read_tagged(
    path: str | Path, fmt: str, version: int, kind: str, error: type[Exception] = ValueError, *, tensors: bool = True
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(meta, tensors)`` of a file written by ``write_tagged`` with format ``fmt``; a missing
    file raises FileNotFoundError, anything else wrong raises ``error`` naming ``kind``."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            loaded = {key: handle.get_tensor(key) for key in handle.keys()} if tensors else {}
    except FileNotFoundError:
        raise
    except Exception as err:  # safetensors raises its own error types for bad bytes
        raise error(f"{path} is corrupt or not a safetensors {kind} file ({err}).") from err
    if header.get("format") != fmt:
        raise error(f"{path} is a safetensors file but not an interv {kind}.")
    if int(header.get("version", "0")) > version:
        raise error(f"{path} uses {kind} format {header['version']}; upgrade interv to read it.")
    try:
        meta = json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError) as err:
        raise error(f"{path} has no readable {kind} metadata (corrupt).") from err
    return meta, loaded
