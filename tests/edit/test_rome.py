"""ROME: its key-consistency variants, sequential requests, and edits on the default model."""

from __future__ import annotations

import pytest
import torch

from interv.edit import EditRequest
from interv.edit._keys import gather, templated
from interv.edit._values import optimise_values
from interv.edit.rome import ROME, ROMEHParams
from interv.eval.tokens import token_accuracy
from tests.edit.conftest import TINY

REQUEST = EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome")
OTHER = EditRequest(prompt="The cat sat on the", subject="The cat", target_new="mat")


@pytest.mark.parametrize("variant", [
    {"original_implementation": True},
    {"enable_prompt_keys": True, "enable_random_prefix_keys": False},
    {},  # R-ROME: prefix-averaged keys on both sides
])
def test_variants_write_the_fact(edit_tiny, stats_cache, variant):
    model = edit_tiny
    hp = ROMEHParams(**{**TINY, "layers": [1], **variant})
    patch = ROME(hp, stats_cache=stats_cache).compute(model, [REQUEST])
    (weight_patch,) = patch.patches
    assert weight_patch.weight == "blocks.1.mlp.W_out" and weight_patch.rank == 1
    with patch.applied(model):
        assert token_accuracy(model, [REQUEST.prompt], ["Rome"]) == [1.0]


@pytest.mark.parametrize("original", [False, True])
def test_the_key_the_update_is_solved_for_gets_the_optimised_value(edit_tiny, stats_cache, original):
    """R-ROME's fix: the prefix-averaged key maps to v*; ROME's code maps the bare prompt's key."""
    model = edit_tiny
    hp = ROMEHParams(**{**TINY, "layers": [1], "original_implementation": original})
    method = ROME(hp, stats_cache=stats_cache)
    patch = method.compute(model, [REQUEST])
    templates = method.templates(model)
    values = optimise_values(model, [REQUEST], "blocks.1.hook_mlp_out", templates, hp, "rome")
    target = values.init[0] + values.delta[0]
    encoded = templated(model, REQUEST, templates, "last", "rome")
    with patch.applied(model):
        out = gather(model, encoded, ["blocks.1.hook_mlp_out"], 1)["blocks.1.hook_mlp_out"]
    reached = out[0] if original else out.mean(0)
    torch.testing.assert_close(reached, target, atol=1e-3 * float(target.norm()), rtol=0)


def test_several_requests_are_edited_one_after_another(edit_tiny, stats_cache):
    model = edit_tiny
    patch = ROME(ROMEHParams(**{**TINY, "layers": [1]}), stats_cache=stats_cache).compute(model, [REQUEST, OTHER])
    assert len(patch.patches) == 2 and len(patch.requests) == 2
    with patch.applied(model):
        assert token_accuracy(model, [REQUEST.prompt, OTHER.prompt], ["Rome", "mat"]) == [1.0, 1.0]


def test_hparams_validation():
    with pytest.raises(ValueError, match="ROME edits one layer"):
        ROMEHParams(layers=[3, 4])
    with pytest.raises(ValueError, match="exactly one of enable_prompt_keys"):
        ROMEHParams(enable_prompt_keys=True, enable_random_prefix_keys=True)
    with pytest.raises(ValueError, match="layers must be a list of layer indices or 'auto'"):
        ROMEHParams(layers="all")
    assert ROMEHParams(layers="auto").layers == "auto"


@pytest.mark.real_model
def test_rome_edit_sticks_on_the_default_model(real_models, real_stats):
    model = real_models("hf")
    request = EditRequest(prompt="The Eiffel Tower is located in the city of", subject="Eiffel Tower",
                          target_new="Rome")
    paraphrase = "Where is the Eiffel Tower? It is in"
    assert token_accuracy(model, [request.prompt, paraphrase], ["Rome", "Rome"]) == [0.0, 0.0]
    method = ROME(ROMEHParams(mom2_n_samples=real_stats.n_tokens), stats_cache=real_stats.cache)
    patch = method.compute(model, [request])
    with patch.applied(model):
        assert token_accuracy(model, [request.prompt, paraphrase], ["Rome", "Rome"]) == [1.0, 1.0]
        assert token_accuracy(model, ["The capital of France is"], ["Paris"]) == [1.0]
    assert token_accuracy(model, [request.prompt], ["Paris"]) == [1.0]
