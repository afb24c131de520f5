"""Conditional steering: decided per row on the prompt, kept through cached generation."""

from __future__ import annotations

import pytest
import torch

from interv.graph import Add, Graph, GraphError, conditions, positions
from tests.conftest import BACKENDS
from tests.graph.conftest import assert_close, vector

COND_HOOK = "blocks.0.hook_resid_post"
STEER_HOOK = "blocks.1.hook_resid_post"
A, B = "Hello world", "abc"


def _direction_and_threshold(model):
    """The mean prompt activation of A; threshold halfway between A's and B's cosines."""
    with torch.no_grad():
        _, cache_a = model.run_with_cache(A, COND_HOOK)
        direction = cache_a[COND_HOOK][0].mean(0)
        probe = conditions.cosine(COND_HOOK, direction, 0.0)
        scores = []
        for prompt in (A, B):
            _, cache = model.run_with_cache(prompt, COND_HOOK)
            scores.append(float(probe.scores(cache[COND_HOOK])[0]))
    assert scores[0] > scores[1] + 0.05, scores
    return direction, sum(scores) / 2


def _steer(model, condition, **kw):
    return Graph([Add(STEER_HOOK, vector(model.cfg.d_model, scale=3.0), condition=condition, **kw)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_meeting_the_condition_are_steered(tiny_models, backend):
    model = tiny_models("llama", backend)
    direction, threshold = _direction_and_threshold(model)
    conditional = _steer(model, conditions.cosine(COND_HOOK, direction, threshold))
    always = _steer(model, None)
    with torch.no_grad():
        batched = model.forward([A, B], graph=conditional)
        steered_a = model.forward(A, graph=always)[0]
        plain_b = model.forward(B)[0]
    assert_close(batched[0], steered_a, "row meeting the condition")
    assert_close(batched[1, -plain_b.shape[0] :], plain_b, "row not meeting it")
    generated = model.generate([A, B], max_new_tokens=6, min_new_tokens=6, graph=conditional)
    assert generated[0] == model.generate(A, max_new_tokens=6, min_new_tokens=6, graph=always)[0]
    assert generated[1] == model.generate(B, max_new_tokens=6, min_new_tokens=6)[0]
    assert generated[0] != model.generate(A, max_new_tokens=6, min_new_tokens=6)[0]


def test_compare_below_and_reduce_last(tiny_models):
    model = tiny_models("llama")
    direction, threshold = _direction_and_threshold(model)
    below = _steer(model, conditions.cosine(COND_HOOK, direction, threshold, compare="<"))
    always = _steer(model, None)
    with torch.no_grad():
        batched = model.forward([A, B], graph=below)
        plain_a = model.forward(A)[0]
        steered_b = model.forward(B, graph=always)[0]
    assert_close(batched[0], plain_a, "A is above the threshold")
    assert_close(batched[1, -steered_b.shape[0] :], steered_b, "B is below it")
    last = conditions.cosine(COND_HOOK, direction, -2.0, reduce="last")  # cosine >= -1: always met
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward([A, B], graph=_steer(model, last)), model.forward([A, B], graph=always)
        )


def test_condition_decided_on_the_prompt_steers_generated_tokens(tiny_models):
    """A generated-only node may sit before its condition's hook: it acts from step 1 on."""
    model = tiny_models("llama")
    direction, threshold = _direction_and_threshold(model)
    condition = conditions.cosine("blocks.1.hook_resid_post", torch.ones(model.cfg.d_model), -2.0)
    early = Graph(
        [
            Add(
                "blocks.0.hook_resid_pre",
                vector(model.cfg.d_model, scale=3.0),
                condition=condition,
                positions=positions.generated(),
            )
        ]
    )
    always = Graph(
        [
            Add(
                "blocks.0.hook_resid_pre",
                vector(model.cfg.d_model, scale=3.0),
                positions=positions.generated(),
            )
        ]
    )
    kw = dict(max_new_tokens=5, min_new_tokens=5)
    assert model.generate([A, B], graph=early, **kw) == model.generate([A, B], graph=always, **kw)
    with pytest.raises(
        GraphError, match="runs before its condition's hook 'blocks.1.hook_resid_post'"
    ):
        model.forward(
            [A, B], graph=Graph([Add("blocks.0.hook_resid_pre", direction, condition=condition)])
        )


def test_a_shared_condition_is_evaluated_once(tiny_models):
    model = tiny_models("llama")
    condition = conditions.cosine(COND_HOOK, torch.ones(model.cfg.d_model), 0.0)
    graph = Graph(
        [
            Add(STEER_HOOK, torch.ones(model.cfg.d_model), condition=condition),
            Add("blocks.1.hook_mlp_out", torch.ones(model.cfg.d_model), condition=condition),
        ]
    )
    names = [name for name, _ in graph.hook_fns(model)]
    assert names == [COND_HOOK, STEER_HOOK, "blocks.1.hook_mlp_out"]


def test_condition_errors(tiny_models):
    model = tiny_models("llama")
    with pytest.raises(GraphError, match="direction has shape \\[7\\]"):
        model.forward(A, graph=_steer(model, conditions.cosine(COND_HOOK, torch.ones(7), 0.1)))
    with pytest.raises(GraphError, match="NaN or inf"):
        conditions.cosine(COND_HOOK, torch.full((32,), float("nan")), 0.1)
    with pytest.raises(GraphError, match="threshold must be a finite number"):
        conditions.cosine(COND_HOOK, torch.ones(32), float("inf"))
