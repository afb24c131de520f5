"""MEMIT and the machinery it shares with AlphaEdit and EMMET (values cache, residual check)."""

from __future__ import annotations

import logging

import pytest

from interv.edit import EditRequest
from interv.edit._values import ValueCache
from interv.edit.emmet import EMMET, EMMETHParams
from interv.edit.memit import MEMIT, MEMITHParams
from interv.eval.tokens import token_accuracy
from tests.edit.conftest import TINY

REQUESTS = [
    EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome"),
    EditRequest(prompt="The cat sat on the", subject="The cat", target_new="mat"),
]


def test_patches_every_layer_with_a_low_rank_update(edit_tiny, stats_cache):
    method = MEMIT(
        MEMITHParams(**{**TINY, "layers": [0, 1, 2], "mom2_update_weight": 1.0}),
        stats_cache=stats_cache,
    )
    patch = method.compute(edit_tiny, REQUESTS)
    assert patch.weights() == [f"blocks.{i}.mlp.W_out" for i in range(3)]
    assert all(p.rank == 2 for p in patch.patches)  # one direction per request
    assert method.last_values is not None and len(method.last_values.steps) == 2


def test_methods_with_the_same_value_objective_share_the_optimisation(edit_tiny, stats_cache):
    cache = ValueCache()
    common = {**TINY, "layers": [0, 1], "mom2_update_weight": 1.0}
    MEMIT(MEMITHParams(**common), stats_cache=stats_cache, value_cache=cache).compute(
        edit_tiny, REQUESTS
    )
    assert cache.hits == 0
    patch = EMMET(EMMETHParams(**common), stats_cache=stats_cache, value_cache=cache).compute(
        edit_tiny, REQUESTS
    )
    assert cache.hits == 2
    with patch.applied(edit_tiny):  # a patched model never reads cached values
        MEMIT(MEMITHParams(**common), stats_cache=stats_cache, value_cache=cache).compute(
            edit_tiny, REQUESTS[:1]
        )
        assert token_accuracy(edit_tiny, [REQUESTS[0].prompt], ["Rome"]) == [1.0]
    assert cache.hits == 2


def test_too_much_preservation_is_reported(edit_tiny, stats_cache, caplog):
    method = MEMIT(
        MEMITHParams(**{**TINY, "layers": [0, 1], "mom2_update_weight": 1e9}),
        stats_cache=stats_cache,
    )
    with caplog.at_level(logging.WARNING):
        patch = method.compute(edit_tiny, REQUESTS[:1])
    assert "wrote only" in caplog.text and "mom2_update_weight" in caplog.text
    with patch.applied(edit_tiny):
        assert token_accuracy(edit_tiny, [REQUESTS[0].prompt], ["Rome"]) == [0.0]


def test_hparams_validation():
    with pytest.raises(ValueError, match="mom2_update_weight must be positive"):
        MEMITHParams(mom2_update_weight=0.0)
    with pytest.raises(ValueError, match="emmet_lambda must be >= 0"):
        EMMETHParams(emmet_lambda=-1.0)


@pytest.mark.real_model
def test_memit_batch_sticks_on_the_default_model(real_models, real_stats):
    model = real_models("hf")
    requests = [
        EditRequest(
            prompt="The Eiffel Tower is located in the city of",
            subject="Eiffel Tower",
            target_new="Rome",
        ),
        EditRequest(
            prompt="The mother tongue of Barack Obama is",
            subject="Barack Obama",
            target_new="French",
        ),
    ]
    method = MEMIT(MEMITHParams(mom2_n_samples=real_stats.n_tokens), stats_cache=real_stats.cache)
    patch = method.compute(model, requests)
    with patch.applied(model):
        assert token_accuracy(model, [r.prompt for r in requests], ["Rome", "French"]) == [1.0, 1.0]
        assert token_accuracy(model, ["The capital of France is"], ["Paris"]) == [1.0]
