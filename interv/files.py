"""interv's artefact files: one safetensors file whose header names its format and version and
holds JSON metadata (patches, steering vectors). Reading checks all three before trusting it.
Also the provenance every saved artefact records (when it was made, by which interv) and the
one way interv reads a YAML mapping."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from jaxtyping import Shaped
from torch import Tensor

from ._version import version
from .errors import ArtefactError, ConfigError, IntervError, MissingFileError


def read_yaml(
    path: str | Path, kind: str = "YAML config", error: type[IntervError] = ConfigError
) -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file is ``{}``); a missing file raises
    ``MissingFileError``, bad YAML or a non-mapping raises ``error`` naming ``kind``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; give the path of a {kind}.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise error(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise error(f"{path} must hold a mapping of keys (a {kind}).")
    return data


def now() -> str:
    """The current UTC time, to the second, as saved artefacts record it."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance() -> dict[str, str]:
    """Creation date and interv version, for the metadata of any saved artefact."""
    return {"created": now(), "interv_version": version()}


def write_tagged(
    path: str | Path,
    tensors: dict[str, Shaped[Tensor, "..."]],
    fmt: str,
    version: int,
    meta: dict[str, Any],
) -> Path:
    """Save ``tensors`` (made contiguous, on CPU) with ``{format, version, meta}`` in the header."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": fmt, "version": str(version), "meta": json.dumps(meta, default=str)}
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=header
    )
    return path


def tagged_format(path: str | Path) -> str | None:
    """The ``format`` a ``write_tagged`` file declares (None for anything unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format")
    except Exception:  # a missing or corrupt file: the loader that is tried next says which
        return None


def read_tagged(
    path: str | Path,
    fmt: str,
    version: int,
    kind: str,
    error: type[IntervError] = ArtefactError,
    *,
    tensors: bool = True,
) -> tuple[dict[str, Any], dict[str, Shaped[Tensor, "..."]]]:
    """``(meta, tensors)`` of a file written by ``write_tagged`` with format ``fmt``; a missing
    file raises ``MissingFileError``, anything else wrong raises ``error`` naming ``kind``."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise MissingFileError(f"{path} does not exist; give the path of a saved {kind}.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            loaded = {key: handle.get_tensor(key) for key in handle.keys()} if tensors else {}
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
