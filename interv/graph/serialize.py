"""Graph files: a folder with ``graph.yaml`` (structure, human-editable) and
``tensors.safetensors`` (every tensor, exact dtype and bits).

``graph.yaml`` (format ``interv.graph``, version 1)::

    format: interv.graph
    version: 1
    model: {name: ..., architecture: llama, d_model: 576, n_layers: 30, fingerprint: ...}
    meta: {...}                   # free-form provenance
    conditions:                   # named, referenced by nodes
      harmful: {type: cosine, hook: ..., direction: {tensor: ..., shape: [576], dtype: float32},
                threshold: 0.1, compare: '>', reduce: mean}
    nodes:
    - name: add
      type: add
      hook: blocks.10.hook_resid_post
      vector: {tensor: nodes.add.vector, shape: [576], dtype: float32}
      scale: 4.0
      positions: generated
      enabled: true
      strength: 1.0

A tensor field is a reference ``{tensor: key, shape, dtype}`` into the safetensors file.
Files of a newer version are refused; no code, pickles or class paths are ever stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from jaxtyping import Shaped
from torch import Tensor

from ..errors import GraphError
from ..files import atomic_path, read_yaml, write_text
from ..record import ModelRecord
from ..sae import load as load_sae
from ..sae import resolve as resolve_sae
from .base import COMMON_FIELDS, Node, SAEResolver
from .conditions import Condition, condition_from_yaml
from .nodes import Ablate, Add, Clamp, Function, ProjectOut, Replace, Scale, Transform
from .sae_feature import SAEFeature
from .selectors import positions_from_yaml

FORMAT = "interv.graph"
VERSION = 1
GRAPH_FILE = "graph.yaml"
TENSOR_FILE = "tensors.safetensors"
NODE_TYPES: dict[str, type[Node]] = {
    cls.kind: cls
    for cls in (Add, Scale, Ablate, ProjectOut, Clamp, Replace, Transform, SAEFeature, Function)
}
_HEADER = (
    "# interv intervention graph. Edit freely: nodes run in order; tensor fields point into\n"
    "# tensors.safetensors. Format documented in interv/graph/serialize.py and docs/steering.md.\n"
)


SAEs = Mapping[str, Any] | Callable[[str], Any]


def save_graph(
    nodes: Sequence[Node], meta: dict[str, Any], record: ModelRecord | None, folder: Path
) -> Path:
    """Write the nodes (with the graph's ``meta`` and model record) into ``folder``."""
    tensors: dict[str, Shaped[Tensor, " ..."]] = {}

    def putter(prefix: str) -> Any:
        def put(field: str, tensor: Shaped[Tensor, " ..."]) -> dict[str, Any]:
            key = f"{prefix}.{field}"
            tensors[key] = tensor.detach().cpu().contiguous().clone()
            return {"tensor": key, "shape": list(tensor.shape), "dtype": _dtype(tensor)}

        return put

    conditions: dict[int, tuple[str, dict[str, Any]]] = {}
    specs = []
    for node in nodes:
        spec: dict[str, Any] = {"name": node.name, "type": node.kind}
        spec.update(node.yaml_fields(putter(f"nodes.{node.name}")))
        if node.layers is not None:
            spec["layers"] = list(node.layers)
        spec["positions"] = node.positions.to_yaml()
        for key in ("rows", "heads"):
            if getattr(node, key) is not None:
                spec[key] = list(getattr(node, key))
        if node.condition is not None:
            spec["condition"] = _condition_name(node.condition, conditions, putter)
        spec["enabled"], spec["strength"] = node.enabled, node.strength
        specs.append(spec)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "model": record.to_dict() if record is not None else None,
        "meta": meta,
        "conditions": dict(conditions.values()),
        "nodes": specs,
    }
    try:
        text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as err:
        raise GraphError(
            f"graph.meta must hold plain values (str, numbers, lists, dicts): {err}"
        ) from None
    from safetensors.torch import save_file

    with atomic_path(folder / TENSOR_FILE) as temporary:  # each file lands whole
        save_file(tensors, str(temporary), metadata={"format": FORMAT, "version": str(VERSION)})
    write_text(folder / GRAPH_FILE, _HEADER + text)
    return folder


class _Dumper(yaml.SafeDumper):
    """Short lists of numbers and tensor references on one line; everything else in blocks.
    Strings holding a character YAML reads as a line break are double-quoted (escaped)."""


_LINE_BREAKS = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = '"' if _LINE_BREAKS.intersection(data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flat = all(isinstance(x, (int, float, str, bool)) or x is None for x in data)
    return dumper.represent_sequence(
        "tag:yaml.org,2002:seq", data, flow_style=flat and len(data) <= 16
    )


def _represent_dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    flow = "tensor" in data or (len(data) == 1 and not isinstance(next(iter(data.values())), dict))
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow or None)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)


def _condition_name(
    condition: Condition, seen: dict[int, tuple[str, dict[str, Any]]], putter: Any
) -> str:
    if id(condition) not in seen:
        taken = {name for name, _ in seen.values()}
        name = getattr(condition, "name", "") or "condition"
        base, k = name, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        spec = condition.to_yaml(putter(f"conditions.{name}"))  # type: ignore[attr-defined]
        if getattr(condition, "name", ""):
            spec["name"] = condition.name  # type: ignore[attr-defined]
        seen[id(condition)] = (name, spec)
    return seen[id(condition)][0]


def load_graph(
    folder: Path, saes: SAEs | None
) -> tuple[list[Node], ModelRecord | None, dict[str, Any]]:
    """The nodes, model record and meta of a saved graph (``Graph.load`` builds the graph)."""
    document = _read_yaml(folder)
    tensors = _read_tensors(folder)

    def get(ref: dict[str, Any]) -> Shaped[Tensor, " ..."]:
        tensor = tensors.get(ref.get("tensor", ""))
        if tensor is None:
            raise GraphError(
                f"{folder / GRAPH_FILE} refers to tensor {ref.get('tensor')!r}, which "
                f"{TENSOR_FILE} does not hold (the files do not belong together)."
            )
        if ref.get("shape", list(tensor.shape)) != list(tensor.shape) or ref.get(
            "dtype", _dtype(tensor)
        ) != _dtype(tensor):
            raise GraphError(
                f"Tensor {ref['tensor']!r} is {list(tensor.shape)} {_dtype(tensor)}, but "
                f"graph.yaml says {ref.get('shape')} {ref.get('dtype')}."
            )
        return tensor

    conditions = {
        name: condition_from_yaml(spec, get)
        for name, spec in (document.get("conditions") or {}).items()
    }
    resolver = _resolver(saes, folder)
    specs = _node_specs(document, folder)
    nodes = [_node(spec, get, conditions, resolver) for spec in specs]
    try:
        record = ModelRecord.from_dict(document.get("model"))
    except (TypeError, ValueError) as err:
        raise GraphError(f"{folder / GRAPH_FILE}: bad 'model' record ({err}).") from None
    return nodes, record, document.get("meta") or {}


def _read_yaml(folder: Path) -> dict[str, Any]:
    path = folder / GRAPH_FILE
    if not path.is_file():
        raise GraphError(
            f"{folder} holds no {GRAPH_FILE}; it is not a saved graph (see Graph.save)."
        )
    document = read_yaml(path, "saved graph", GraphError)
    if document.get("format") != FORMAT:
        raise GraphError(f"{path} is not an interv graph (format: {FORMAT} missing).")
    version = document.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise GraphError(
            f"{path} uses graph format version {version!r}; this interv reads up to "
            f"{VERSION}. Upgrade interv."
        )
    return document


def _read_tensors(folder: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    path = folder / TENSOR_FILE
    if not path.is_file():
        return {}
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for bad bytes
        raise GraphError(f"{path} is corrupt or not a safetensors file ({err}).") from None


def _node_specs(document: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """The node entries, each a mapping, with no name given twice (a name picks one node)."""
    specs = document.get("nodes") or []
    if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
        raise GraphError(
            f"{folder / GRAPH_FILE}: 'nodes' must be a list of mappings, one per node."
        )
    given = [spec["name"] for spec in specs if spec.get("name")]
    twice = sorted({str(name) for name in given if given.count(name) > 1})
    if twice:
        raise GraphError(
            f"{folder / GRAPH_FILE}: two nodes are named {twice[0]!r}; node names must be unique. "
            "Rename one, or delete its name to get a generated one."
        )
    return specs


def _node(spec: dict[str, Any], get: Any, conditions: dict[str, Condition], saes: Any) -> Node:
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in NODE_TYPES:
        raise GraphError(
            f"Unknown node type {kind!r} in graph.yaml; known: {', '.join(NODE_TYPES)}."
        )
    common = {key: spec.pop(key) for key in COMMON_FIELDS if key in spec}
    label = f"graph.yaml node {common.get('name', '?')!r} ({kind})"
    if "positions" in common:
        common["positions"] = positions_from_yaml(common["positions"])
    if "condition" in common:
        if common["condition"] not in conditions:
            raise GraphError(
                f"{label} uses condition {common['condition']!r}, which is not defined."
            )
        common["condition"] = conditions[common["condition"]]
    try:
        return NODE_TYPES[kind](**NODE_TYPES[kind].fields_from_yaml(spec, get, saes), **common)
    except TypeError as err:
        raise GraphError(f"{label}: {err}") from None


def _resolver(saes: SAEs | None, folder: Path) -> SAEResolver:
    """SAE id -> SAE: from ``saes`` (a mapping to SAEs or sae-lens folders, or a function),
    else an SAE shipped with interv or a folder of that name (see ``interv.sae.resolve``)."""
    loaded: dict[str, Any] = {}

    def resolve(sae_id: str) -> Any:
        if sae_id in loaded:  # several nodes share one SAE object
            return loaded[sae_id]
        if callable(saes) and not hasattr(saes, "keys"):
            return saes(sae_id)
        if saes is not None and sae_id in saes:
            found = saes[sae_id]
            if isinstance(found, (str, Path)):
                found = load_sae(found, id=sae_id)
            loaded[sae_id] = found
            return found
        found = resolve_sae(sae_id, base=folder)
        if found is not None:
            loaded[sae_id] = found
            return found
        raise GraphError(
            f"This graph uses the SAE {sae_id!r}, whose weights are not saved with it, and it "
            f"is neither shipped with interv nor a folder; pass Graph.load(path, "
            f"saes={{{sae_id!r}: sae}}) with the SAE object or its sae-lens folder."
        )

    return resolve


def _dtype(tensor: Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")
