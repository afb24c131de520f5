"""``interv.load``: the default model, a local folder or a hub id, on any backend."""

from __future__ import annotations

from pathlib import Path

import torch

from .adapters import HookedModel
from .devices import resolve_device, resolve_dtype
from .errors import ProvisionError
from .provision import DEFAULT_MODEL, KNOWN_MODELS, ensure_model, known_source


def resolve_folder(
    name_or_path: str | Path | None, home: Path | None = None
) -> tuple[str | Path, str]:
    """Where to load from and the model's display name."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path, str(path)
    source = known_source(str(name_or_path))
    if source is not None:
        return ensure_model(source, home), source.name
    return str(name_or_path), str(name_or_path)  # a hub id, for machines with a network


def load(
    name_or_path: str | Path | None = None,
    backend: str = "hf",
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = None,
    *,
    home: Path | None = None,
) -> HookedModel:
    """Load a model as a ``HookedModel``.

    ``None`` loads the default model (SmolLM2-135M-Instruct), provisioned offline on first use.
    A local folder loads as is; any other string is treated as a Hugging Face hub id.

    Example:
        >>> import interv
        >>> interv.load().cfg.n_layers  # doctest: +SKIP
        30
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, name = resolve_folder(name_or_path, home)
    torch_dtype = resolve_dtype(dtype)
    try:
        hf_model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise ProvisionError(
            f"Could not load {name_or_path!r}: it is not a local folder or a model interv can "
            f"provision offline ({', '.join(KNOWN_MODELS)}), and loading it from the Hugging Face "
            f"hub failed: {err}"
        ) from err
    hf_model.to(resolve_device(device))
    return HookedModel(hf_model, tokenizer, backend=backend, name=name)
