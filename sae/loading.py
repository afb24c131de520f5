"""Loading sae-lens SAEs onto interv's canonical hook names.

``load`` takes the name of an SAE shipped with interv (``shipped()``), a local sae-lens folder
(``cfg.json`` + ``sae_weights.safetensors``, as written by ``SAE.save_model``) or
``"release:sae_id"`` from sae-lens's pretrained registry (downloaded from the Hugging Face
hub, so it needs a network). The result is a ``HookedSAE``: the sae-lens SAE plus the
canonical hook it reads, which is what ``interv.graph.SAEFeature`` expects.

Example (with the default model)::

    import interv, interv.sae
    model = interv.load()
    sae = interv.sae.load("smollm2-135m-res12", model=model)
    sae.hook_name, sae.d_sae
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

from ..adapters import HookedModel, names
from ..errors import SAEError, UnknownNameError
from .hooked import HookedSAE

log = logging.getLogger(__name__)

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"

# Other libraries' names for the same activation -> interv's canonical name.
# (pattern with the layer as its group, the canonical hook's short name)
HOOK_ALIASES: tuple[tuple[str, str], ...] = (
    (r"(?:model\.)?layers\.(\d+)(?:\.output)?", "resid_post"),  # HF / sparsify
    (r"(?:model\.)?layers\.(\d+)\.mlp(?:\.output)?", "mlp_out"),
    (r"(?:model\.)?layers\.(\d+)\.self_attn(?:\.output)?", "attn_out"),
    (r"transformer\.h\.(\d+)", "resid_post"),  # GPT-2 HF
)


def canonical_hook(name: str, model: HookedModel | None = None) -> str:
    """interv's name for an SAE's ``hook_name``; with ``model``, it must be one of its hooks.

    TransformerLens names (``blocks.8.hook_resid_post``) are interv's own; Hugging Face module
    paths (``model.layers.8``) are mapped.
    """
    canonical = name
    for pattern, short in HOOK_ALIASES:
        match = re.fullmatch(pattern, name)
        if match:
            canonical = names.hook(short, int(match.group(1)))
            break
    if model is not None and canonical not in model.hook_names():
        raise UnknownNameError("hook", canonical, model.hook_names())
    return canonical


def shipped() -> list[str]:
    """Names of the SAEs shipped with interv."""
    root = resources.files("interv.sae") / "pretrained"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CFG_FILE).is_file())


def shipped_folder(name: str) -> Path:
    folder = Path(str(resources.files("interv.sae") / "pretrained" / name))
    if not (folder / CFG_FILE).is_file():
        raise SAEError(f"No SAE named {name!r} is shipped with interv; shipped: {shipped()}.")
    return folder


def load(
    source: str | Path,
    *,
    model: HookedModel | None = None,
    hook: str | None = None,
    id: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> HookedSAE:
    """A shipped SAE by name, a local sae-lens folder, or ``"release:sae_id"`` (network).

    ``hook`` overrides the SAE's own ``hook_name``; with ``model`` the hook and width are
    checked against it (``SAEError`` / ``UnknownNameError`` otherwise).
    """
    text = str(source)
    if text in shipped():
        sae = load_from_disk(
            shipped_folder(text), hook=hook, id=id or text, device=device, dtype=dtype
        )
    elif Path(text).expanduser().exists():
        sae = load_from_disk(text, hook=hook, id=id, device=device, dtype=dtype)
    elif ":" in text and "/" not in text.split(":", 1)[0]:
        release, sae_id = text.split(":", 1)
        sae = from_pretrained(release, sae_id, hook=hook, id=id, device=device, dtype=dtype)
    else:
        close = difflib.get_close_matches(text, shipped(), n=3)
        raise SAEError(
            f"SAE {text!r} is neither a shipped SAE ({', '.join(shipped()) or 'none'}"
            f"{'; did you mean ' + ', '.join(close) + '?' if close else ''}), nor an existing "
            "folder, nor 'release:sae_id' from sae-lens's pretrained registry."
        )
    if model is not None:
        sae.check(model)
    return sae


def load_from_disk(
    path: str | Path,
    *,
    hook: str | None = None,
    id: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> HookedSAE:
    """A sae-lens SAE folder, checked first so a broken folder gives one clear error."""
    folder = Path(path).expanduser()
    cfg = check_folder(folder)
    from sae_lens import SAE

    try:
        sae = SAE.load_from_disk(str(folder), device=device, dtype=dtype)
    except Exception as err:  # sae-lens raises many types for bad files
        raise SAEError(f"{folder} could not be loaded by sae-lens: {err}") from err
    for name, tensor in sae.state_dict().items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise SAEError(f"{folder}: weight {name!r} holds NaN or inf; the SAE is corrupt.")
    declared = hook or _declared_hook(cfg)
    if not declared:
        raise SAEError(f"{folder}/{CFG_FILE} names no hook (metadata.hook_name); pass hook=.")
    return HookedSAE(sae, canonical_hook(declared), id=id or str(path), source=str(folder))


def from_pretrained(
    release: str,
    sae_id: str,
    *,
    hook: str | None = None,
    id: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> HookedSAE:
    """An SAE from sae-lens's pretrained registry (``pretrained_saes.yaml``); downloads it."""
    from sae_lens import SAE
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if release not in directory:
        close = difflib.get_close_matches(release, list(directory), n=3)
        raise SAEError(
            f"sae-lens has no pretrained release {release!r}"
            + (f"; did you mean {', '.join(close)}?" if close else ".")
        )
    ids = list(directory[release].saes_map)
    if sae_id not in ids:
        close = difflib.get_close_matches(sae_id, ids, n=3)
        raise SAEError(
            f"Release {release!r} has no SAE {sae_id!r}"
            + (f"; did you mean {', '.join(close)}?" if close else f"; it has {len(ids)} others.")
        )
    try:
        sae = SAE.from_pretrained(release, sae_id, device=device, dtype=dtype)
    except Exception as err:  # no network, hub errors
        raise SAEError(
            f"Could not fetch {release}:{sae_id} from the Hugging Face hub ({err}). Pretrained "
            "registry SAEs need a network; save one with SAE.save_model and load the folder."
        ) from err
    declared = hook or sae.cfg.metadata.hook_name
    if not declared:
        raise SAEError(f"{release}:{sae_id} names no hook; pass hook=.")
    return HookedSAE(
        sae, canonical_hook(declared), id=id or f"{release}:{sae_id}", source=f"{release}:{sae_id}"
    )


def resolve(sae_id: str, base: Path | None = None) -> HookedSAE | None:
    """The SAE a saved graph names, if interv can find it: shipped, or a folder (absolute,
    relative to the working directory, or to the graph folder ``base``)."""
    if sae_id in shipped():
        return load(sae_id)
    for candidate in (Path(sae_id).expanduser(), *((base / sae_id,) if base else ())):
        if (candidate / CFG_FILE).is_file():
            return load_from_disk(candidate, id=sae_id)
    return None


def check_folder(folder: Path) -> dict[str, Any]:
    """The folder's config, after checking it holds a complete, consistent sae-lens SAE."""
    from safetensors import safe_open

    where = f"SAE folder {folder}"
    hint = f"A sae-lens SAE folder holds {CFG_FILE} and {WEIGHTS_FILE} (see SAE.save_model)."
    if not folder.is_dir():
        raise SAEError(f"{where} does not exist. {hint}")
    for name in (CFG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise SAEError(f"{where} has no {name}; it is incomplete or corrupt. {hint}")
    try:
        cfg = json.loads((folder / CFG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SAEError(
            f"{where}: {CFG_FILE} is not valid JSON ({err}); the folder is corrupt."
        ) from None
    if not isinstance(cfg, dict):
        raise SAEError(f"{where}: {CFG_FILE} must hold a JSON object.")
    for key in ("d_in", "d_sae"):
        if not isinstance(cfg.get(key), int) or cfg[key] <= 0:
            raise SAEError(
                f"{where}: {CFG_FILE} needs a positive integer {key!r}, got {cfg.get(key)!r}."
            )
    try:
        with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as handle:
            shapes = {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception as err:  # safetensors raises its own error types for bad bytes
        raise SAEError(f"{where}: {WEIGHTS_FILE} is corrupt or truncated ({err}).") from None
    expected = {"W_dec": [cfg["d_sae"], cfg["d_in"]], "W_enc": [cfg["d_in"], cfg["d_sae"]]}
    for key, shape in expected.items():
        if key in shapes and shapes[key] != shape:
            raise SAEError(
                f"{where}: {key} has shape {shapes[key]}, but {CFG_FILE} says d_in={cfg['d_in']}, "
                f"d_sae={cfg['d_sae']} (expected {shape}); the files do not belong together."
            )
    if "W_dec" not in shapes:
        raise SAEError(f"{where}: {WEIGHTS_FILE} holds no W_dec; it is not an SAE's weights.")
    return cfg


def _declared_hook(cfg: dict[str, Any]) -> str | None:
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    name = meta.get("hook_name") or cfg.get("hook_name") or cfg.get("hook_point")
    return name if isinstance(name, str) else None


def width(model: HookedModel, hook: str) -> int:
    """The flattened feature width of ``hook`` (``d_model``, ``n_heads * d_head``...)."""
    return math.prod(model.hook_shape(hook))
