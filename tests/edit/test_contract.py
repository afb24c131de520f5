"""Contract tests over every registered locate-then-edit method, on the 4-layer tiny model:
the patch teaches the target, compute leaves the model alone, revert is bit-exact, the
hyperparameters round-trip through YAML, the shipped recipe loads, bad input fails first."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from interv.edit import EDIT_METHODS, EditRequest, RequestError
from interv.eval.tokens import token_accuracy
from tests.edit.conftest import TINY

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "edit"
METHODS = ["rome", "memit", "alphaedit", "emmet"]
EXTRA = {"rome": {"layers": [1]}, "memit": {"layers": [0, 1], "mom2_update_weight": 1.0},
         "alphaedit": {"layers": [0, 1], "nullspace_threshold": 5.0},
         "emmet": {"layers": [0, 1], "mom2_update_weight": 1.0}}
REQUESTS = [EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome"),
            EditRequest(prompt="The cat sat on the", subject="The cat", target_new="mat")]


def weights_hash(model) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.hf_model.named_parameters()):
        digest.update(name.encode() + param.detach().numpy().tobytes())
    return digest.hexdigest()


def make(name, stats_cache, **changes):
    cls = EDIT_METHODS.get(name)
    return cls(cls.hparams_class(**{**TINY, **EXTRA[name], **changes}), stats_cache=stats_cache)


@pytest.mark.parametrize("name", METHODS)
def test_patch_teaches_the_target_and_reverts_bit_exactly(name, edit_tiny, stats_cache):
    model = edit_tiny
    requests = REQUESTS if EDIT_METHODS.get(name).batchable else REQUESTS[:1]
    prompts, targets = [r.prompt for r in requests], [r.target_new for r in requests]
    original = weights_hash(model)
    assert token_accuracy(model, prompts, targets) == [0.0] * len(requests)
    patch = make(name, stats_cache).compute(model, requests)
    assert weights_hash(model) == original  # computing never leaves a change behind
    assert patch.method == name and patch.fingerprint == model.fingerprint()
    assert all(p.weight.endswith("mlp.W_out") and p.rank is not None for p in patch.patches)
    with patch.applied(model):
        assert token_accuracy(model, prompts, targets) == [1.0] * len(requests)
    assert weights_hash(model) == original


@pytest.mark.parametrize("name", METHODS)
def test_hparams_yaml_round_trip_and_recipe(name, tmp_path):
    cls = EDIT_METHODS.get(name).hparams_class
    hp = cls(**{**TINY, **EXTRA[name]})
    path = tmp_path / "hp.yaml"
    hp.to_yaml(path)
    assert cls.from_yaml(path) == hp
    recipe = RECIPES / f"{name}-smollm2.yaml"
    loaded = cls.from_yaml(recipe)
    assert f"method: {name}" in recipe.read_text()
    assert loaded.model_dims == {"n_layers": 30, "d_model": 576, "d_mlp": 1536}
    with pytest.raises(ValueError, match="Unknown .* key"):
        cls.from_dict({"rewrite_module_tmp": "model.layers.{}.mlp.down_proj"})


@pytest.mark.parametrize("name", METHODS)
def test_bad_input_fails_before_anything_changes(name, edit_tiny, stats_cache):
    model = edit_tiny
    original = weights_hash(model)
    with pytest.raises(ValueError, match=r"layer\(s\) \[7\] out of range"):
        make(name, stats_cache, layers=[7]).compute(model, REQUESTS[:1])
    with pytest.raises(ValueError, match="another architecture: d_mlp=1536 \\(model has 128\\)"):
        make(name, stats_cache, model_dims={"d_mlp": 1536}).compute(model, REQUESTS[:1])
    with pytest.raises(ValueError, match="v_loss_layer=31"):
        make(name, stats_cache, v_loss_layer=31).compute(model, REQUESTS[:1])
    with pytest.raises(RequestError, match="needs `subject`"):
        make(name, stats_cache).compute(model, [EditRequest(prompt="Hello world", target_new="Rome")])
    with pytest.raises(RequestError, match="does not occur in prompt"):
        EditRequest(prompt="Hello world", subject="Goodbye", target_new="Rome")
    with pytest.raises(RequestError, match="empty `target_new`"):
        EditRequest(prompt="Hello world", subject="Hello", target_new=" ")
    with pytest.raises(ValueError, match="v_lr must be positive"):
        make(name, stats_cache, v_lr=0.0)
    assert weights_hash(model) == original


def test_registry_lists_the_methods():
    assert set(METHODS) <= set(EDIT_METHODS.names())
