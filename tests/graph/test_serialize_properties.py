"""Random graphs (hypothesis) survive ``graph.save`` / ``Graph.load``: the loaded graph equals
the original, runs to the same logits bit for bit and saves to the same graph.yaml.

Graphs are drawn for the tiny Llama: typed nodes (Add, Scale, Ablate, ProjectOut, Clamp,
Transform) at single hooks, lists of hooks or ``{i}`` templates with layers, seeded tensors in
float32/float16/bfloat16, every position selector, rows, heads at ``attn.hook_z``, strengths,
names, disabled nodes and shared Cosine conditions read at a hook that runs before the node.
"""

from __future__ import annotations

import math
import tempfile
from functools import partial
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interv.graph import (
    Ablate,
    Add,
    Clamp,
    Graph,
    ProjectOut,
    Scale,
    Transform,
    conditions,
    positions,
)
from interv.record import ModelRecord
from tests.graph.conftest import PROMPTS

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# The tiny Llama's hooks in execution order, by the features they carry.
IN_BLOCK = {
    "d_model": (
        "hook_resid_pre",
        "ln1.hook_normalized",
        "hook_attn_out",
        "hook_resid_mid",
        "ln2.hook_normalized",
        "hook_mlp_out",
        "hook_resid_post",
    ),
    "d_mlp": ("mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post"),
    "z": ("attn.hook_z",),
}
FEATURES = {"d_model": (32,), "d_mlp": (64,), "z": (4, 8)}
ORDER_IN_BLOCK = (
    "hook_resid_pre",
    "ln1.hook_normalized",
    "attn.hook_z",
    "hook_attn_out",
    "hook_resid_mid",
    "ln2.hook_normalized",
    "mlp.hook_pre",
    "mlp.hook_pre_linear",
    "mlp.hook_post",
    "hook_mlp_out",
    "hook_resid_post",
)
HOOKS = (
    "hook_embed",
    *(f"blocks.{i}.{h}" for i in (0, 1) for h in ORDER_IN_BLOCK),
    "ln_final.hook_normalized",
)
ORDER = {hook: i for i, hook in enumerate(HOOKS)}
GROUP = {f"blocks.{i}.{h}": g for g, hs in IN_BLOCK.items() for h in hs for i in (0, 1)}
GROUP.update({"hook_embed": "d_model", "ln_final.hook_normalized": "d_model"})
KINDS = ("add", "scale", "ablate", "project_out", "clamp", "transform")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# Any text, with YAML's extra line breaks (NEL, LS, PS) drawn often.
TEXT = st.characters() | st.sampled_from("\x85\u2028\u2029")
names = st.text(TEXT, max_size=6)
small = st.floats(-2.0, 2.0, allow_nan=False, width=32)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(TEXT, max_size=6)
)
metas = st.dictionaries(
    st.text(TEXT, max_size=5),
    st.recursive(
        json_leaf,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(TEXT, max_size=4), inner)
        ),
        max_leaves=6,
    ),
    max_size=3,
)


def unique_ints(values) -> st.SearchStrategy[list[int]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True)


@st.composite
def tensors(draw, shape: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    return (scale * torch.randn(shape, generator=g)).to(draw(st.sampled_from(DTYPES)))


# Strategies draw constructors (``partial``), called in the test: interv's functions are
# type-checked at runtime, and the checker samples with the global ``random``, which hypothesis
# forbids inside strategies.
selectors = st.one_of(
    st.sampled_from(
        [positions.all, positions.prompt, positions.generated, positions.last_prompt_token]
    ).map(partial),
    st.lists(st.integers(-4, 4), min_size=1, max_size=3).map(
        lambda i: partial(positions.indices, *i)
    ),
    st.tuples(st.none() | st.integers(-4, 4), st.none() | st.integers(-4, 4)).map(
        lambda span: partial(positions.slice, *span)
    ),
    st.text(alphabet="lo wHabc", min_size=1, max_size=2).map(partial(partial, positions.tokens)),
    st.lists(st.integers(0, 258), min_size=1, max_size=2).map(partial(partial, positions.tokens)),
)


@st.composite
def conditions_at(draw, hook: str) -> partial:
    features = FEATURES[GROUP[hook]]  # the direction: the features' shape, or flattened
    shape = draw(st.sampled_from(list(dict.fromkeys([features, (math.prod(features),)]))))
    return partial(
        conditions.cosine,
        hook,
        draw(tensors(shape)),
        draw(st.floats(-1.0, 1.0, allow_nan=False, width=32)),
        compare=draw(st.sampled_from([">", "<"])),
        reduce=draw(st.sampled_from(["mean", "last"])),
        name=draw(names),
    )


@st.composite
def where(draw, group: str) -> tuple[str | tuple[str, ...], list[int] | None, list[str]]:
    """``(hook, layers, the hooks it expands to)``: one hook, a list of hooks or a template."""
    hooks = [h for h in HOOKS if GROUP[h] == group]
    form = draw(st.sampled_from(["one", "list", "template"]))
    if form == "one":
        hook = draw(st.sampled_from(hooks))
        return hook, None, [hook]
    if form == "list":
        chosen = draw(st.lists(st.sampled_from(hooks), min_size=2, max_size=3, unique=True))
        return tuple(chosen), None, chosen
    suffix = draw(st.sampled_from(IN_BLOCK[group]))
    layers = draw(unique_ints([0, 1]))
    return f"blocks.{{i}}.{suffix}", layers, [f"blocks.{i}.{suffix}" for i in layers]


@st.composite
def nodes(draw, pool: list[str]) -> tuple[partial, partial, int | None]:
    """``(node constructor taking positions= and condition=, positions constructor, index of
    its condition in the pool or None)``; ``pool`` holds the hooks of the graph's conditions."""
    group = draw(st.sampled_from(list(FEATURES)))
    hook, layers, hooks = draw(where(group))
    features = FEATURES[group]
    width = features[-1]
    vector = st.sampled_from(list(dict.fromkeys([features, (width,)]))).flatmap(tensors)
    selector = draw(selectors)
    prompt_free = selector.func is positions.generated
    usable = [  # a condition decides on the prompt: before the node, unless it skips the prompt
        i for i, at in enumerate(pool) if prompt_free or ORDER[at] <= min(ORDER[h] for h in hooks)
    ]
    common = dict(
        name=draw(names),
        layers=layers,
        rows=draw(st.none() | unique_ints([0, 1])),
        heads=draw(st.none() | unique_ints([0, 1, 2, 3])) if group == "z" else None,
        enabled=draw(st.booleans()),
        strength=draw(small),
    )
    condition = draw(st.none() | st.sampled_from(usable)) if usable else None
    kind = draw(st.sampled_from(KINDS))
    if kind == "add":
        return partial(Add, hook, draw(vector), scale=draw(small), **common), selector, condition
    if kind == "scale":
        return partial(Scale, hook, draw(small), **common), selector, condition
    if kind == "ablate":
        mean = draw(st.none() | vector)
        mode = "zero" if mean is None else "mean"
        return partial(Ablate, hook, mode=mode, mean=mean, **common), selector, condition
    if kind == "project_out":
        return partial(ProjectOut, hook, draw(vector), **common), selector, condition
    if kind == "clamp":
        return partial(Clamp, hook, draw(vector), draw(small), **common), selector, condition
    matrix = draw(tensors((width, width), 0.1))
    bias = draw(st.none() | tensors((width,), 0.1))
    residual = draw(st.booleans())
    return partial(Transform, hook, matrix, bias, residual=residual, **common), selector, condition


@st.composite
def graphs(draw) -> tuple[list[partial], list[tuple[partial, partial, int | None]], dict, bool]:
    """``(conditions, nodes, meta, whether the graph records the model)``, see ``build``."""
    pool = draw(st.lists(st.sampled_from(HOOKS), max_size=2))
    conds = [draw(conditions_at(hook)) for hook in pool]
    # Given names are unique in a graph (a name given twice is refused); empty ones are generated.
    items = draw(
        st.lists(
            nodes(pool),
            min_size=1,
            max_size=4,
            unique_by=lambda item: item[0].keywords["name"] or id(item),
        )
    )
    return conds, items, draw(metas), draw(st.booleans())


def build(drawn, model) -> Graph:
    """The drawn graph; nodes that drew the same condition share one condition object."""
    conds, items, meta, record = drawn
    made = [make() for make in conds]
    return Graph(
        [
            make(positions=selector(), condition=None if i is None else made[i])
            for make, selector, i in items
        ],
        model=ModelRecord.of(model) if record else None,
        meta=meta,
    )


def test_the_hook_table_is_the_tiny_llama(tiny_models):
    model = tiny_models("llama")
    assert list(HOOKS) == model.hook_names()
    assert all(model.hook_shape(hook) == FEATURES[GROUP[hook]] for hook in HOOKS)


@SETTINGS
@given(drawn=graphs())
def test_saved_graphs_load_equal_and_run_the_same(tiny_models, tmp_path, drawn):
    model = tiny_models("llama")
    graph = build(drawn, model)
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        graph.save(Path(folder) / "g")
        loaded = Graph.load(Path(folder) / "g")
        assert loaded == graph
        assert [n.name for n in loaded] == graph.names()
        for a, b in zip(loaded, graph, strict=True):  # shared conditions stay shared
            for c, d in zip(loaded, graph, strict=True):
                if b.condition is not None and d.condition is not None:
                    assert (a.condition is c.condition) == (b.condition is d.condition)
        loaded.save(Path(folder) / "again")
        text = (Path(folder) / "g" / "graph.yaml").read_text()
        assert (Path(folder) / "again" / "graph.yaml").read_text() == text
    with torch.no_grad():
        steered = model.forward(PROMPTS, graph=graph)
        assert torch.isfinite(steered).all()
        assert torch.equal(model.forward(PROMPTS, graph=loaded), steered)


def test_line_break_characters_in_names_round_trip(tmp_path):
    """PyYAML reads a raw NEL in a quoted scalar as a space; graph.yaml escapes it."""
    vector = torch.ones(32)
    nodes = [Add("blocks.0.hook_resid_post", vector, name=n) for n in ("a\x85b", "c\u2028d")]
    graph = Graph(nodes, meta={"n": "\x85", "m": "\u2029"})
    graph.save(tmp_path / "g")
    assert Graph.load(tmp_path / "g") == graph
