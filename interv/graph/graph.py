"""``Graph``: an ordered set of named nodes, composed, scaled, saved and run on any backend.

Example:
    >>> import torch
    >>> from interv.graph import Add, Graph, ProjectOut, positions
    >>> v = torch.ones(576)
    >>> g = Graph([Add("blocks.10.hook_resid_post", v, scale=4.0, positions=positions.generated())])
    >>> g = g + Graph([ProjectOut("blocks.12.hook_resid_post", v, name="no_v")])
    >>> (g * 0.5).names()
    ['add', 'no_v']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..adapters import HookedModel, HookFn
from ..errors import GraphError, UnknownNameError
from ..patch import PatchSet
from ..record import ModelRecord
from .base import Node
from .compile import compile_nodes
from .fold import fold_nodes
from .nodes import Add
from .serialize import SAEs, load_graph, save_graph
from .tensors import Number, check_number


class Graph:
    """Nodes applied in order at their hooks; ``model`` records which model it was made for.

    Node names are unique: a name given twice is a ``GraphError``, nodes without a name are
    named after their kind (``add``, ``add_2``...).

    ``model`` may be a ``HookedModel`` (its identity is recorded) or a ``ModelRecord``; a graph
    with a record refuses to run on, fold into or load for another model. ``meta`` is free-form
    provenance (method, hyperparameters, dataset...) saved with the graph.
    """

    def __init__(
        self,
        nodes: Iterable[Node] = (),
        *,
        model: HookedModel | ModelRecord | None = None,
        meta: dict[str, Any] | None = None,
    ):
        items = list(nodes)
        for node in items:
            if not isinstance(node, Node):
                raise GraphError(
                    f"A graph holds nodes (Add, Clamp, ...), got {type(node).__name__}."
                )
        self._nodes = _uniquely_named(items)
        self.model: ModelRecord | None = (
            ModelRecord.of(model) if isinstance(model, HookedModel) else model
        )
        self.meta: dict[str, Any] = dict(meta or {})

    # ------------------------------------------------------------------ container
    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def names(self) -> list[str]:
        return [n.name for n in self._nodes]

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes))

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __getitem__(self, name: str) -> Node:
        for node in self._nodes:
            if node.name == name:
                return node
        raise UnknownNameError("node", name, self.names(), listing="See graph.names().")

    # ---------------------------------------------------------------- composition
    def __add__(self, other: Graph | Node) -> Graph:
        """Both graphs' nodes, in order; clashing node names get a numeric suffix."""
        other = other if isinstance(other, Graph) else Graph([other])
        if self.model is not None and not self.model.compatible(other.model):
            raise GraphError(
                "Cannot combine graphs made for different models "
                f"({self.model.name!r}, {other.model.name!r})."
            )
        meta = (
            self.meta
            if not other.meta
            else other.meta
            if not self.meta
            else {"parts": [self.meta, other.meta]}
        )
        taken = set(self.names())
        renamed = []
        for node in other._nodes:  # two graphs may well use the same names: documented above
            name = _free_name(node.name, taken)
            taken.add(name)
            renamed.append(node if name == node.name else node.replace(name=name))
        return Graph([*self._nodes, *renamed], model=self.model or other.model, meta=meta)

    def __radd__(self, other: object) -> Graph:
        if other == 0:  # so sum(graphs) works
            return self.copy()
        return NotImplemented

    def __mul__(self, factor: Number) -> Graph:
        """Every node's strength times ``factor``."""
        factor = check_number(factor, "graph scale factor")
        return self._with([node.scaled(factor) for node in self._nodes])

    __rmul__ = __mul__

    def __truediv__(self, divisor: Number) -> Graph:
        if check_number(divisor, "graph divisor") == 0:
            raise GraphError("Cannot divide a graph by 0.")
        return self * (1.0 / divisor)

    def __neg__(self) -> Graph:
        return self * -1.0

    def copy(self) -> Graph:
        return self._with([node.replace() for node in self._nodes])

    def _with(self, nodes: list[Node]) -> Graph:
        return Graph(nodes, model=self.model, meta=self.meta)

    def enable(self, *names: str) -> Graph:
        """Turn nodes on (in place); returns the graph."""
        for name in names:
            self[name].enabled = True
        return self

    def disable(self, *names: str) -> Graph:
        """Turn nodes off (in place): they are skipped when compiling and folding."""
        for name in names:
            self[name].enabled = False
        return self

    def without(self, *names: str) -> Graph:
        """A copy without the named nodes."""
        for name in names:
            self[name]  # unknown names fail
        return self._with([n.replace() for n in self._nodes if n.name not in names])

    def merged(self) -> Graph:
        """Merge ``Add`` nodes at the same hooks and selection into one vector each.

        Adds only merge across other Adds: a different node at the same hook in between
        (which need not commute with addition) keeps them apart.
        """
        out: list[Node] = []
        open_runs: dict[tuple[Any, ...], int] = {}
        for node in self._nodes:
            if isinstance(node, Add) and node.enabled:
                key = (node.hooks, node.positions, node.rows, node.heads, id(node.condition))
                if key in open_runs:
                    out[open_runs[key]] = _merge_adds(out[open_runs[key]], node)  # type: ignore[arg-type]
                    continue
                open_runs[key] = len(out)
            elif node.enabled:
                for key in [k for k in open_runs if set(k[0]) & set(node.hooks)]:
                    del open_runs[key]
            out.append(node.replace())
        return self._with(out)

    # ----------------------------------------------------------------- running
    def hook_fns(self, model: HookedModel) -> list[tuple[str, HookFn]]:
        """Compile to ``(hook name, function)`` pairs for ``model``; every check runs here."""
        if self.model is not None:
            self.model.check(model, "This graph")
        return compile_nodes(self._nodes, model)

    def fold(self, model: HookedModel) -> PatchSet:
        """The graph as a weight patch (constant Adds at all positions only); see ``fold.py``."""
        if self.model is not None:
            self.model.check(model, "This graph")
        return fold_nodes(self._nodes, model, {"nodes": self.names(), "meta": self.meta})

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path, *, model: HookedModel | None = None) -> Path:
        """Write ``graph.yaml`` + ``tensors.safetensors`` into the folder ``path``."""
        record = ModelRecord.of(model) if model is not None else self.model
        return save_graph(self._nodes, self.meta, record, Path(path))

    @classmethod
    def load(
        cls, path: str | Path, *, saes: SAEs | None = None, model: HookedModel | None = None
    ) -> Graph:
        """Read a saved graph (checked against ``model`` when given, as by ``hook_fns``);
        ``saes`` maps the ids of SAEs it uses to SAE objects or sae-lens folders. Ids not in
        ``saes`` that name an SAE shipped with interv or a folder (absolute, or relative to the
        working directory or the graph folder) load by themselves."""
        nodes, record, meta = load_graph(Path(path), saes)
        if model is not None and record is not None:
            record.check(model, f"The graph in {path}")
        graph = cls(nodes, model=record, meta=meta)
        if model is not None:
            graph.hook_fns(model)  # hooks, widths and tensors fail here, not at the first forward
        return graph

    # ---------------------------------------------------------------- comparing
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (
            self.model == other.model
            and self.meta == other.meta
            and len(self) == len(other)
            and all(_same_node(a, b) for a, b in zip(self._nodes, other._nodes, strict=True))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        lines = [f"  {n.name}: {n!r}{'' if n.enabled else '  [disabled]'}" for n in self._nodes]
        target = f" for {self.model.name!r}" if self.model else ""
        return f"Graph{target}(\n" + "\n".join(lines) + "\n)" if lines else f"Graph{target}()"


def _uniquely_named(nodes: list[Node]) -> list[Node]:
    """Copies of the nodes, each with a name unique in the graph. Given names are kept (a name
    given twice is an error: ``graph[name]`` could not tell the nodes apart); nodes without one
    are named after their kind, ``add``, ``add_2``..., around the given names."""
    given = [node.name for node in nodes if node.name]
    twice = sorted({name for name in given if given.count(name) > 1})
    if twice:
        raise GraphError(
            f"Two nodes are named {twice[0]!r}; node names must be unique in a graph (graph[name] "
            "picks a node by its name). Rename one, or leave its name empty to get a generated one."
        )
    taken = set(given)
    named = []
    for node in nodes:
        name = node.name or _free_name(node.kind, taken)
        taken.add(name)
        named.append(node.replace(name=name))
    return named


def _free_name(name: str, taken: set[str]) -> str:
    """``name``, or ``<stem>_<k>`` with the smallest ``k >= 2`` not taken."""
    if name not in taken:
        return name
    stem, k = re.sub(r"_\d+$", "", name), 2
    while f"{stem}_{k}" in taken:
        k += 1
    return f"{stem}_{k}"


def _merge_adds(a: Add, b: Add) -> Add:
    vector = a.vector.float() * (a.strength * a.scale) + b.vector.float() * (b.strength * b.scale)
    return a.replace(name=f"{a.name}+{b.name}", vector=vector, scale=1.0, strength=1.0)


def _same_node(a: Node, b: Node) -> bool:
    if type(a) is not type(b):
        return False
    names = [
        *a.own_fields(),
        "name",
        "layers",
        "positions",
        "rows",
        "heads",
        "condition",
        "enabled",
        "strength",
    ]
    return all(_same(getattr(a, k), getattr(b, k)) for k in names)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return (
            isinstance(a, Tensor)
            and isinstance(b, Tensor)
            and a.dtype == b.dtype
            and torch.equal(a, b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b) and not isinstance(a, Node):
        return all(_same(getattr(a, k), getattr(b, k)) for k in a.__dataclass_fields__)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a is b or a == b
