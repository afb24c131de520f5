"""Reading and writing other tools' steering vectors.

* **EasyEdit2** saves one tensor per layer, ``<dir>/<method>_vector/layer_<L>.pt`` (STA adds a
  suffix: ``layer_<L>_<mode>_trim<t>.pt``), added to the block output, i.e.
  ``blocks.<L>.hook_resid_post``. Read with ``torch.load(..., weights_only=True)`` only.
* **repeng** and **llama.cpp** control vectors are GGUF files with architecture
  ``controlvector`` and one tensor ``direction.<L>`` per layer. The layer convention, from
  llama.cpp's sources (``common_control_vector_load_one`` stores ``direction.N`` at buffer offset
  ``n_embd * (N - 1)``; ``llama_adapter_cvec::apply`` fills layer ``il`` from offset
  ``n_embd * (il - 1)``; the layer builders call ``build_cvec(cur, il)`` on the output of block
  ``il``): **``direction.L`` is added to the output of 0-based block L**, our
  ``blocks.L.hook_resid_post``. Block 0's output cannot be steered (``direction.0`` is invalid),
  and repeng reads ``hidden_states[L + 1]``, the same site. llama.cpp adds
  ``strength * direction``; ``export_gguf(vector, path, scale)`` bakes ``scale`` in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..adapters import names
from ..errors import ArtefactError, MissingFileError
from ..files import atomic_path, parse_json
from ..record import ModelRecord
from .vector import SteeringVector

_LAYER_FILE = re.compile(r"^layer_(\d+)(?:_.*)?\.pt$")
GGUF_ARCH = "controlvector"


# ----------------------------------------------------------------------------- EasyEdit2
def _vector_folders(folder: Path) -> list[Path]:
    if any(_LAYER_FILE.match(p.name) for p in folder.glob("*.pt")):
        return [folder]
    return sorted(p for p in folder.glob("*_vector") if p.is_dir())


def load_easyedit(folder: str | Path, method: str | None = None) -> SteeringVector:
    """A vector from an EasyEdit2 folder (``caa_vector/`` itself, or the dataset folder above it).

    Example:
        >>> v = load_easyedit("vectors/gemma/sentiment/caa_vector")  # doctest: +SKIP
        >>> v.hooks  # doctest: +SKIP
        ['blocks.24.hook_resid_post']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder} is not a folder of EasyEdit2 vectors.")
    candidates = _vector_folders(folder)
    if method is not None:
        candidates = [c for c in candidates if c.name in (folder.name, f"{method}_vector")]
    if len(candidates) != 1:
        found = ", ".join(c.name for c in candidates) or "none"
        raise ArtefactError(
            f"{folder}: expected one EasyEdit2 vector folder (<method>_vector/layer_<L>.pt), "
            f"found {found}. Point at one of them."
        )
    vector_dir = candidates[0]
    directions = {}
    for path in sorted(vector_dir.glob("*.pt")):
        match = _LAYER_FILE.match(path.name)
        if not match:
            continue
        hook = names.hook("resid_post", int(match.group(1)))
        if hook in directions:
            raise ArtefactError(
                f"{vector_dir} holds two vectors for layer {match.group(1)}; keep one."
            )
        directions[hook] = _read_pt_vector(path)
    if not directions:
        raise ArtefactError(f"{vector_dir} holds no layer_<L>.pt files.")
    name = vector_dir.name.removesuffix("_vector")
    return SteeringVector(
        directions,
        method=name,
        dataset=vector_dir.parent.name,
        meta={"source": "easyedit2", "path": str(vector_dir)},
    )


def _read_pt_vector(path: Path) -> torch.Tensor:
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ArtefactError(f"{path} is not a tensor file torch can load safely ({err}).") from None
    if not isinstance(value, torch.Tensor):
        raise ArtefactError(f"{path} holds a {type(value).__name__}, not a tensor.")
    value = value.detach().float()
    if value.dim() == 2 and 1 in value.shape:
        value = value.reshape(-1)
    if value.dim() != 1:
        raise ArtefactError(f"{path} holds a tensor of shape {tuple(value.shape)}, not a vector.")
    return value


def load_pt_vector(path: str | Path) -> SteeringVector:
    """One EasyEdit2 ``layer_<L>.pt`` file as a vector (the layer comes from the file name)."""
    path = Path(path)
    match = _LAYER_FILE.match(path.name) or re.search(r"layer_(\d+)", path.name)
    if not match:
        raise ArtefactError(
            f"{path}: cannot tell the layer; EasyEdit2 files are named layer_<L>.pt."
        )
    hook = names.hook("resid_post", int(match.group(1)))
    return SteeringVector(
        {hook: _read_pt_vector(path)},
        method=path.parent.name.removesuffix("_vector"),
        meta={"source": "easyedit2", "path": str(path)},
    )


# ---------------------------------------------------------------------------------- GGUF
def _gguf_layer(hook: str) -> int:
    layer = names.layer_of(hook)
    if layer is not None and hook.endswith(".hook_resid_post"):
        return layer
    if layer is not None and hook.endswith(".hook_resid_pre"):
        return layer - 1  # block L's input is block L-1's output
    raise ArtefactError(
        f"llama.cpp control vectors steer block outputs; {hook!r} is not one "
        "(use blocks.L.hook_resid_post or blocks.L.hook_resid_pre)."
    )


def export_gguf(vector: SteeringVector, path: str | Path, scale: float | None = None) -> Path:
    """Write a llama.cpp / repeng control vector (``scale`` defaults to the recommended one).

    Example:
        >>> export_gguf(vector, "happy.gguf")  # doctest: +SKIP
        >>> # llama-cli -m model.gguf --control-vector happy.gguf
    """
    import gguf

    factor = vector.recommended_scale if scale is None else scale
    layers: dict[int, np.ndarray] = {}
    for hook, direction in vector.directions.items():
        layer = _gguf_layer(hook)
        if layer < 1:
            raise ArtefactError(
                f"{hook!r} maps to llama.cpp layer {layer}; llama.cpp cannot steer block 0's "
                "output (direction.0 is invalid). Leave that layer out."
            )
        value = (direction.detach().float().cpu() * factor).numpy()
        layers[layer] = layers[layer] + value if layer in layers else value
    path = Path(path)
    with atomic_path(path) as temporary:
        writer = gguf.GGUFWriter(str(temporary), GGUF_ARCH)
        hint = vector.model.architecture if vector.model is not None else ""
        writer.add_string(f"{GGUF_ARCH}.model_hint", hint or "llama")
        writer.add_uint32(f"{GGUF_ARCH}.layer_count", len(layers))
        meta = dict(vector.metadata(), gguf_scale=factor)
        writer.add_string("interv.meta", json.dumps(meta, default=str))
        for layer in sorted(layers):
            writer.add_tensor(f"direction.{layer}", layers[layer].astype(np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return path


def _field_string(reader: Any, key: str) -> str | None:
    field = reader.get_field(key)
    if field is None or not len(field.parts):
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")


def load_gguf(path: str | Path) -> SteeringVector:
    """A repeng / llama.cpp control vector (``direction.L`` -> ``blocks.L.hook_resid_post``).

    The scale baked into the file becomes part of the directions (``recommended_scale`` 1);
    a file written by ``export_gguf`` also brings back interv's metadata.
    """
    import gguf

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist.")
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as err:
        raise ArtefactError(f"{path} is not a GGUF file ({err}).") from None
    arch = _field_string(reader, "general.architecture")
    if arch != GGUF_ARCH:
        raise ArtefactError(
            f"{path} has GGUF architecture {arch!r}, not a control vector ({GGUF_ARCH!r})."
        )
    directions = {}
    for tensor in reader.tensors:
        match = re.fullmatch(r"direction\.(\d+)", tensor.name)
        if not match:
            continue
        directions[names.hook("resid_post", int(match.group(1)))] = torch.tensor(
            np.array(tensor.data, dtype=np.float32).reshape(-1)
        )
    if not directions:
        raise ArtefactError(f"{path} holds no direction.<L> tensors.")
    directions = dict(sorted(directions.items(), key=lambda kv: names.layer_of(kv[0]) or 0))
    stored = _field_string(reader, "interv.meta")
    if stored is None:
        hint = _field_string(reader, f"{GGUF_ARCH}.model_hint") or ""
        return SteeringVector(
            directions,
            method="gguf",
            model=ModelRecord(architecture=hint),
            meta={"source": "gguf", "path": str(path)},
        )
    meta = parse_json(stored, f"{path} (interv.meta)", "GGUF metadata", ArtefactError)
    if not isinstance(meta, dict):
        raise ArtefactError(f"{path}: interv.meta must hold a JSON object; the file is corrupt.")
    return SteeringVector(
        directions,
        method=str(meta.get("method", "gguf")),
        model=ModelRecord.from_dict(meta.get("model")),
        dataset=str(meta.get("dataset", "")),
        recommended_scale=1.0,
        created=str(meta.get("created", "")),
        meta={**meta.get("meta", {}), "gguf_scale": meta.get("gguf_scale")},
    )
