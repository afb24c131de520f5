"""The vector library: ready vectors shipped with interv, and loading any saved artefact.

Shipped artefacts live in the ``interv.vectors`` package data, in EasyEdit2's layout
``<model>/<dataset>/<method>_vector/``, holding a vector (``vector.safetensors``), a graph
(``graph.yaml`` + tensors, e.g. LM-Steer's transform) or a prompt (``prompt.yaml``). Each
carries its metadata (model, method, layers, dataset, date, interv version, recommended
scale) and was made by a recipe in ``interv.recipes`` (``meta.config``) that regenerates it.
``save`` never writes into the library of an installed package, and into a source checkout's
only with ``overwrite`` (regenerating a shipped artefact on purpose); recipes write elsewhere.

``load(path_or_name)`` reads anything a steering method saves or another tool wrote: an interv
vector (``.safetensors``), a graph folder, a prompt (``prompt.yaml``), an EasyEdit2 folder or
``layer_<L>.pt`` file, a repeng / llama.cpp GGUF control vector, or a library name.

Example:
    >>> from interv.steer import library
    >>> [e.name for e in library.entries()][:2]  # doctest: +SKIP
    ['coordinate_other_ais', 'corrigibility']
    >>> vector = library.load("sentiment_positive")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..adapters import names
from ..errors import ArtefactError, ConfigError, MissingFileError, UnknownNameError
from ..files import file_stamp, read_yaml
from ..graph.serialize import GRAPH_FILE, TENSOR_FILE
from . import interop
from .apply import Steerable
from .graphs import SteeringGraph
from .prompt import FILE as PROMPT_FILE
from .prompt import PromptIntervention
from .vector import FILE as VECTOR_FILE
from .vector import SteeringVector

Artifact = SteeringVector | SteeringGraph | PromptIntervention


def library_root() -> Path:
    return Path(str(resources.files("interv.vectors")))


@dataclass(frozen=True)
class Entry:
    """One shipped vector: where it is and what its header says."""

    name: str  # the dataset folder, e.g. "sentiment_positive"
    model: str  # the model folder, e.g. "SmolLM2-135M-Instruct"
    method: str
    path: Path
    meta: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.model}/{self.name}/{self.method}"


def entries(root: Path | None = None) -> list[Entry]:
    """Every artefact in the library, sorted by model and name."""
    root = root or library_root()
    found = []
    for folder in sorted(root.glob("*/*/*_vector")):
        path = artefact_file(folder)
        if path is None:
            continue
        dataset_dir, model_dir = folder.parent, folder.parent.parent
        found.append(
            Entry(
                dataset_dir.name,
                model_dir.name,
                folder.name.removesuffix("_vector"),
                path,
                describe(path),
            )
        )
    return found


def artefact_file(path: Path) -> Path | None:
    """The interv artefact file a path holds: the file itself, or the vector, graph or prompt
    file of a folder (or of its single ``<method>_vector`` subfolder); None if there is none."""
    if path.is_file():
        return path
    for name in (VECTOR_FILE, GRAPH_FILE, PROMPT_FILE):
        if (path / name).is_file():
            return path / name
    inner = [p for p in path.glob("*_vector") if p.is_dir()]
    return artefact_file(inner[0]) if len(inner) == 1 else None


def describe(path: Path) -> dict[str, Any]:
    """A saved artefact's metadata in the vector header's shape (``method``, ``layers``,
    ``recommended_scale``, ``dataset``, ``model``, ``created``, ``interv_version``, ``meta``),
    read without loading tensors."""
    if path.name == VECTOR_FILE:
        return SteeringVector.read_metadata(path)
    document = read_yaml(path, "saved steering artefact", ArtefactError)
    meta = dict(document.get("meta") or {})
    hooks = [node.get("hook", "") for node in document.get("nodes") or []]
    layers = sorted({layer for h in hooks if (layer := names.layer_of(h)) is not None})
    return {
        "kind": "graph" if path.name == GRAPH_FILE else "prompt",
        "method": meta.get("method", ""),
        "layers": layers,
        "hooks": hooks,
        "recommended_scale": float(meta.get("recommended_scale", 1.0)),
        "dataset": meta.get("dataset", ""),
        "model": document.get("model") or meta.get("model") or {},
        "created": meta.get("created", ""),
        "interv_version": meta.get("interv_version", ""),
        "meta": meta,
    }


def find(name: str, root: Path | None = None) -> Entry:
    """A library entry by name (``sentiment_positive``), ``name/method`` or
    ``model/name/method``."""
    everything = entries(root)
    parts = name.strip("/").split("/")
    keys = {1: lambda e: [e.name], 2: lambda e: [e.name, e.method], 3: lambda e: e.key.split("/")}
    if len(parts) not in keys:
        raise ConfigError(f"{name!r}: give a library name, name/method or model/name/method.")
    matches = [e for e in everything if keys[len(parts)](e) == parts]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = sorted({e.name for e in everything} | {e.key for e in everything})
        raise UnknownNameError(
            "library vector", name, known, listing="See `interv vectors list` for all of them."
        )
    raise ConfigError(
        f"{name!r} is ambiguous: {', '.join(e.key for e in matches)}; give model/name/method."
    )


DTYPES = ("float32", "float16", "bfloat16")
ARTEFACT_FILES = (VECTOR_FILE, GRAPH_FILE, TENSOR_FILE, PROMPT_FILE)  # what save_to may write


def in_shipped_library(path: str | Path) -> bool:
    return Path(path).resolve().is_relative_to(library_root().resolve())


def check_target(folder: str | Path, overwrite: bool = False) -> Path:
    """Refuse, before any work, to save an artefact where one exists (unless ``overwrite``)
    or into the shipped library: never from an installed package, and from a source checkout
    (where regenerating a shipped vector is the point) only with ``overwrite``."""
    folder = check_not_shipped(folder, overwrite)
    existing = [folder / name for name in ARTEFACT_FILES if (folder / name).exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"{existing[0]} already exists; pass --overwrite (overwrite: true in a steering "
            "config) to replace it, or save the artefact somewhere else."
        )
    return folder


def check_not_shipped(path: str | Path, overwrite: bool = False) -> Path:
    """Refuse an output inside the shipped library (see ``check_target``)."""
    path = Path(path)
    if in_shipped_library(path):
        root = library_root()
        if not (root.parent / "pyproject.toml").is_file():  # a wheel install, not a checkout
            raise ConfigError(
                f"{path} is inside interv's shipped vector library ({root}), which interv "
                "never writes into; save the artefact in a folder of your own (e.g. "
                "steer_vector_output_dir: results/vectors)."
            )
        if not overwrite:
            raise ConfigError(
                f"{path} is inside interv's shipped vector library ({root}); regenerating a "
                "shipped artefact replaces it, so it needs --overwrite (overwrite: true in a "
                "steering config)."
            )
    return path


def save(
    output: Steerable, folder: str | Path, dtype: str = "float32", *, overwrite: bool = False
) -> Path:
    """Write a method's output into a folder (EasyEdit2's ``<method>_vector/`` level).

    ``dtype`` is the precision tensors are stored in (``float16`` for the shipped library). An
    artefact already in the folder is replaced only with ``overwrite`` (see ``check_target``);
    files of another kind of artefact are then removed, so ``load`` finds the new one.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"vector dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.")
    folder = check_target(folder, overwrite)
    before = {name: file_stamp(folder / name) for name in ARTEFACT_FILES}
    written = output.save_to(folder, getattr(torch, dtype))
    for name in ARTEFACT_FILES:  # left by an earlier artefact of another kind
        if before[name] is not None and file_stamp(folder / name) == before[name]:
            (folder / name).unlink()
    return written


def load(source: str | Path, method: str | None = None) -> Artifact:
    """Any saved steering artefact, by path or library name (see the module docstring)."""
    path = Path(source)
    if path.is_file():
        return _load_file(path)
    if path.is_dir():
        if (path / VECTOR_FILE).is_file():
            return SteeringVector.load(path / VECTOR_FILE)
        if (path / PROMPT_FILE).is_file():
            return PromptIntervention.load(path / PROMPT_FILE)
        if (path / GRAPH_FILE).is_file():
            return SteeringGraph.load(path)
        inner = [p for p in path.glob("*_vector") if p.is_dir()]
        if method is not None:
            inner = [p for p in inner if p.name == f"{method}_vector"]
        if len(inner) == 1 and not list(path.glob("*.pt")):
            return load(inner[0])
        if not inner and not list(path.glob("*.pt")):
            return _from_output_folder(path, method)
        return interop.load_easyedit(path, method)
    if path.suffix or path.is_absolute() or str(source).startswith("."):
        raise MissingFileError(
            f"{source} does not exist; give a saved artefact or a library "
            "name (`interv vectors list`)."
        )
    return load(find(str(source)).path.parent)


def _from_output_folder(path: Path, method: str | None) -> Artifact:
    """A generator's output folder, ``<dir>/<dataset>/<method>_vector/``, as EasyEdit2 users
    pass it: the one vector folder below it."""
    nested = sorted(
        p
        for p in path.glob("*/*_vector")
        if p.is_dir() and (method is None or p.name == f"{method}_vector")
    )
    if len(nested) == 1:
        return load(nested[0])
    if nested:
        found = ", ".join(f"{p.parent.name}/{p.name}" for p in nested)
        raise ArtefactError(
            f"{path} holds several vectors ({found}); point at the dataset's folder, "
            f"e.g. {nested[0].parent}."
        )
    return interop.load_easyedit(path, method)


def _load_file(path: Path) -> Artifact:
    if path.suffix == ".gguf":
        return interop.load_gguf(path)
    if path.suffix == ".pt":
        return interop.load_pt_vector(path)
    if path.suffix in (".yaml", ".yml"):
        if path.name == GRAPH_FILE:
            return SteeringGraph.load(path.parent)
        return PromptIntervention.load(path)
    return SteeringVector.load(path)
