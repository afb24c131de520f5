"""Running graphs: the same numbers on every backend, errors before any forward, hooks removed."""

from __future__ import annotations

import pytest
import torch

import interv
from interv.adapters import HookSource, UnknownNameError
from interv.graph import (
    Add,
    Clamp,
    Function,
    Graph,
    GraphError,
    ProjectOut,
    Scale,
    Transform,
    positions,
)
from tests.conftest import BACKENDS
from tests.graph.conftest import PROMPTS, assert_close, real_positions, vector
from tests.tiny import FAMILIES

OTHER_BACKENDS = [b for b in BACKENDS if b != "hf"]


def rich_graph(model) -> Graph:
    """One node of most kinds, with several selectors, at several kinds of hooks."""
    c = model.cfg
    return Graph(
        [
            Add("blocks.0.hook_resid_post", vector(c.d_model, 1), scale=2.0),
            ProjectOut(
                "blocks.1.hook_resid_pre", vector(c.d_model, 2), positions=positions.prompt()
            ),
            Clamp(
                "blocks.1.hook_attn_out",
                vector(c.d_model, 3),
                0.5,
                positions=positions.last_prompt_token(),
            ),
            Add("blocks.0.attn.hook_z", vector(c.d_head, 4), heads=[0, 2]),
            Scale("blocks.1.mlp.hook_post", 1.5, rows=[1]),
            Transform(
                "blocks.1.hook_mlp_out", vector((c.d_model, c.d_model), 5, 0.02), residual=True
            ),
            Add("blocks.1.hook_resid_post", vector(c.d_model, 6), positions=positions.generated()),
        ]
    )


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_same_logits_on_every_backend(tiny_models, family, backend):
    reference, model = tiny_models(family, "hf"), tiny_models(family, backend)
    graph = rich_graph(reference)
    mask = real_positions(reference)
    with torch.no_grad():
        expected = reference.forward(PROMPTS, graph=graph)
        got = model.forward(PROMPTS, graph=graph)
        baseline = reference.forward(PROMPTS)
    assert not torch.allclose(expected[mask], baseline[mask], atol=1e-3)
    assert_close(got[mask], expected[mask], f"{family}/{backend}")


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox", "gemma2"])
def test_same_generations_on_every_backend(tiny_models, family, backend):
    reference, model = tiny_models(family, "hf"), tiny_models(family, backend)
    graph = rich_graph(reference)
    kw = dict(max_new_tokens=6, min_new_tokens=6)
    expected = reference.generate(PROMPTS, graph=graph, **kw)
    assert expected != reference.generate(PROMPTS, **kw)
    assert model.generate(PROMPTS, graph=graph, **kw) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_intervene_equals_graph_argument(tiny_models, backend):
    model = tiny_models("llama", backend)
    graph = rich_graph(model)
    with torch.no_grad():
        direct = model.forward(PROMPTS, graph=graph)
        with model.intervene(graph):
            inside = model.forward(PROMPTS)
            generated = model.generate(PROMPTS, max_new_tokens=4)
            _, cache = model.run_with_cache(PROMPTS, "blocks.0.hook_resid_post")
        _, plain = model.run_with_cache(PROMPTS, "blocks.0.hook_resid_post")
        _, direct_cache = model.run_with_cache(PROMPTS, "blocks.0.hook_resid_post", graph=graph)
    torch.testing.assert_close(inside, direct)
    assert generated == model.generate(PROMPTS, max_new_tokens=4, graph=graph)
    # The cache holds activations after the graph's nodes at that hook.
    torch.testing.assert_close(
        cache["blocks.0.hook_resid_post"], direct_cache["blocks.0.hook_resid_post"]
    )
    assert not torch.allclose(cache["blocks.0.hook_resid_post"], plain["blocks.0.hook_resid_post"])
    torch.testing.assert_close(
        model.forward(PROMPTS).detach(), model.forward(PROMPTS, graph=Graph()).detach()
    )


def test_any_object_with_hook_fns_is_a_graph(tiny_models):
    model = tiny_models("llama")

    class Double:
        def hook_fns(self, model):
            return [("blocks.0.hook_resid_post", lambda act, ctx: act * 2)]

    assert isinstance(Graph(), HookSource) and isinstance(Double(), HookSource)
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward(PROMPTS, graph=Double()),
            model.forward(PROMPTS, graph=Graph([Scale("blocks.0.hook_resid_post", 2.0)])),
        )


def test_tensors_follow_the_model_dtype(tiny_dirs):
    model = interv.load(tiny_dirs["llama"], dtype="bfloat16", device="cpu")
    graph = Graph(
        [
            Add("blocks.0.hook_resid_post", vector(model.cfg.d_model)),
            ProjectOut("blocks.1.hook_resid_pre", vector(model.cfg.d_model, 1)),
        ]
    )
    with torch.no_grad():
        logits = model.forward(PROMPTS, graph=graph)
    assert logits.dtype == torch.bfloat16
    assert graph["add"].vector.dtype == torch.float32  # the graph's own tensors are untouched
    assert model.generate(PROMPTS, max_new_tokens=3, graph=graph)


# ------------------------------------------------------------------------------- errors
def _assert_untouched(model, baseline):
    assert model.active_hooks() == []
    if model.backend_name == "hf":
        for module in model.hf_model.modules():
            assert not module._forward_hooks
            assert len(module._forward_pre_hooks) <= 1  # only the run tracker on the root
    with torch.no_grad():
        torch.testing.assert_close(model.forward(PROMPTS), baseline, atol=0, rtol=0)


def _bad_graphs(model):
    c = model.cfg
    return [
        (
            UnknownNameError,
            "Unknown hook name 'blocks.0.hook_resid_pots'.*blocks.0.hook_resid_post",
            Graph([Add("blocks.0.hook_resid_pots", torch.ones(c.d_model))]),
        ),
        (
            UnknownNameError,
            "Unknown hook name 'blocks.7.hook_resid_post'",
            Graph([Add("blocks.7.hook_resid_post", torch.ones(c.d_model))]),
        ),
        (
            GraphError,
            "shape \\[31\\], but activations at 'blocks.0.hook_resid_post' have features \\[32\\]",
            Graph([Add("blocks.0.hook_resid_post", torch.ones(c.d_model - 1))]),
        ),
        (
            GraphError,
            "shape \\[32\\], but activations at 'blocks.0.mlp.hook_post' have features \\[64\\]",
            Graph([Add("blocks.0.mlp.hook_post", torch.ones(c.d_model))]),
        ),
        (
            GraphError,
            "it must be \\[8\\] or \\[4, 8\\]",
            Graph([ProjectOut("blocks.0.attn.hook_z", torch.ones(c.d_model))]),
        ),
        (
            GraphError,
            "head index 4 is out of range; the model has 4 heads \\(0..3\\)",
            Graph([Add("blocks.0.attn.hook_z", torch.ones(c.d_head), heads=[1, 4])]),
        ),
        (
            GraphError,
            "heads only apply at attn.hook_z",
            Graph([Add("blocks.0.hook_resid_post", torch.ones(c.d_model), heads=[0])]),
        ),
        (
            GraphError,
            "matrix has shape \\[32, 32\\].*it must be \\[64, 64\\]",
            Graph([Transform("blocks.0.mlp.hook_pre", torch.eye(c.d_model))]),
        ),
        # a valid node first: nothing may be half-installed when a later one fails
        (
            UnknownNameError,
            "Unknown hook name 'nope'",
            Graph([Add("blocks.0.hook_resid_post", torch.ones(c.d_model)), Scale("nope", 2.0)]),
        ),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_errors_come_before_any_forward(tiny_models, backend):
    model = tiny_models("llama", backend)
    with torch.no_grad():
        baseline = model.forward(PROMPTS)
    for error, message, graph in _bad_graphs(model):
        with pytest.raises(error, match=message):
            model.forward(PROMPTS, graph=graph)
        with pytest.raises(error, match=message):
            model.generate(PROMPTS, max_new_tokens=2, graph=graph)
        with pytest.raises(error, match=message):
            with model.intervene(graph):
                pytest.fail("the block must not run")
        _assert_untouched(model, baseline)


def test_bad_tensors_fail_at_construction():
    nan, inf = torch.full((32,), float("nan")), torch.ones(32)
    inf[3] = float("inf")
    for make in (
        lambda: Add("blocks.0.hook_resid_post", nan),
        lambda: Add("blocks.0.hook_resid_post", inf),
        lambda: ProjectOut("blocks.0.hook_resid_post", inf),
        lambda: Clamp("blocks.0.hook_resid_post", nan, 1.0),
    ):
        with pytest.raises(GraphError, match="NaN or inf"):
            make()
    with pytest.raises(GraphError, match="zero norm"):
        ProjectOut("blocks.0.hook_resid_post", torch.zeros(32))
    with pytest.raises(GraphError, match="scale must be a finite number"):
        Add("blocks.0.hook_resid_post", torch.ones(32), scale=float("nan"))
    with pytest.raises(GraphError, match="rows must be a non-empty list of ints >= 0"):
        Add("blocks.0.hook_resid_post", torch.ones(32), rows=[-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_hooks_removed_after_exceptions(tiny_models, backend):
    model = tiny_models("llama", backend)
    with torch.no_grad():
        baseline = model.forward(PROMPTS)
    calls = []

    def boom(act, ctx):
        calls.append(ctx.run.step)
        if ctx.run.step == 2:  # fail in the middle of a generation
            raise RuntimeError("node failed")
        return act + 1

    graph = Graph(
        [
            Add("blocks.0.hook_resid_post", torch.ones(model.cfg.d_model)),
            Function("blocks.1.hook_mlp_out", boom),
        ]
    )
    with pytest.raises(RuntimeError, match="node failed"):
        model.generate(PROMPTS, max_new_tokens=5, min_new_tokens=5, graph=graph)
    assert calls == [0, 1, 2]
    _assert_untouched(model, baseline)
    with pytest.raises(RuntimeError, match="node failed"):
        with model.intervene(graph):
            model.generate(PROMPTS, max_new_tokens=5, min_new_tokens=5)
    _assert_untouched(model, baseline)
    with pytest.raises(RuntimeError, match="inside"):
        with model.intervene(graph):
            raise RuntimeError("inside")
    _assert_untouched(model, baseline)


def test_tensors_are_checked_again_when_a_graph_compiles(tiny_models):
    """Nodes keep their tensors by reference: what changed since the node was built, and what
    a zero strength or a disabled node would hide, is refused at compile."""
    model = tiny_models("llama")
    hook = "blocks.0.hook_resid_post"
    graph = Graph([Add(hook, torch.ones(32), name="push")])
    graph.hook_fns(model)
    graph["push"].vector[3] = float("inf")
    with pytest.raises(GraphError, match="'push'.*vector contains NaN or inf"):
        graph.hook_fns(model)
    quiet = Graph([Add(hook, torch.ones(31), strength=0.0), Scale(hook, 2.0, enabled=False)])
    with pytest.raises(GraphError, match="shape \\[31\\]"):
        quiet.hook_fns(model)
    assert quiet.without("add").hook_fns(model) == []  # a disabled node compiles to nothing


def test_a_vector_too_large_for_the_dtype_is_refused_where_it_would_give_nan(
    tiny_models, tiny_dirs
):
    """The refusal is where the model would break: past it, unchecked code (a Function node)
    loses the prompt; below it, in float16, a push whose squared norm overflows float16 but not
    the float32 norms sum in runs and stays finite."""
    model = tiny_models("llama")
    hook = "blocks.0.hook_resid_post"
    huge = torch.full((32,), 1e30)
    with torch.no_grad():
        unchecked = model.forward(PROMPTS, graph=Graph([Function(hook, lambda a, c: a + huge)]))
    # the next RMSNorm divides by an infinite norm: NaN, or zeros and constant logits
    assert not torch.isfinite(unchecked).all() or (unchecked.std(dim=-1) == 0).all()
    with pytest.raises(GraphError, match="norm 5.66e\\+30.*float32"):
        model.forward(PROMPTS, graph=Graph([Add(hook, huge)]))
    half = interv.load(tiny_dirs["llama"], dtype="float16", device="cpu")
    push = Graph([Add(hook, torch.full((32,), 300.0))])  # norm 1697: squared, > float16's max
    with torch.no_grad():
        assert torch.isfinite(half.forward(PROMPTS, graph=push)).all()
    with pytest.raises(GraphError, match="largest value 1e\\+05.*float16"):
        half.forward(PROMPTS, graph=Graph([Add(hook, torch.full((32,), 1e5))]))
