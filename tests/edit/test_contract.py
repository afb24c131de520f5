"""Contract tests over every registered editing method, on the 4-layer tiny model: the patch
teaches the target, compute leaves the model alone, revert is bit-exact, the hyperparameters
round-trip through YAML, the shipped recipe loads, bad input fails first.

Every method in ``EDIT_METHODS`` needs a case in ``CASES`` (its family and hyperparameters for
the tiny model); a registered method without one fails every test parametrised with it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import torch

from interv.adapters import names
from interv.edit import EDIT_METHODS, EditMethod, EditRequest, RequestError
from interv.edit.ft import FineTune
from interv.edit.locate import LocateMethod
from interv.edit.mend import MEND
from interv.edit.serac import SERAC, SERACMemory, shipped_archive
from interv.errors import EditError, ModelMismatchError
from interv.eval.tokens import token_accuracy
from tests.edit.conftest import TINY

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "edit"
SMOLLM2_LAYERS = 30


@dataclass(frozen=True)
class Case:
    """How one registered method edits the tiny model: its family (locate-then-edit methods
    write low-rank ``mlp.W_out`` updates, fine-tuning writes dense deltas on the configured
    weights) and the hyperparameters that make it teach the targets."""

    family: type[EditMethod]
    hparams: dict[str, Any]


# FT: a large step without the norm bound (the tiny model's weights are random; the bound is
# tested in tests/edit/test_ft.py), on two weights of two layers.
FT = dict(
    layers=[1, 2],
    weights=["mlp.W_out", "mlp.W_in"],
    lr=5e-2,
    num_steps=30,
    norm_constraint=None,
    batch_size=2,
)
MEND_WEIGHTS = ["blocks.2.mlp.W_out", "blocks.3.mlp.W_in", "blocks.3.mlp.W_out"]
CASES: dict[str, Case] = {
    "rome": Case(LocateMethod, {**TINY, "layers": [1]}),
    "memit": Case(LocateMethod, {**TINY, "layers": [0, 1], "mom2_update_weight": 1.0}),
    "alphaedit": Case(LocateMethod, {**TINY, "layers": [0, 1], "nullspace_threshold": 5.0}),
    "emmet": Case(LocateMethod, {**TINY, "layers": [0, 1], "mom2_update_weight": 1.0}),
    "ft-l": Case(FineTune, FT),
    "ft-m": Case(FineTune, FT),
    # MEND: the archive trained on REQUESTS by the `mend_archive` fixture (tests/edit/conftest.py)
    "mend": Case(MEND, {"inner_params": MEND_WEIGHTS}),
    # SERAC: the shipped scope classifier re-recorded for the tiny model (`serac_archive`)
    "serac": Case(SERAC, {}),
}
METHODS = EDIT_METHODS.names()
REQUESTS = [
    EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome"),
    EditRequest(prompt="The cat sat on the", subject="The cat", target_new="mat"),
]


def weights_hash(model) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.hf_model.named_parameters()):
        digest.update(name.encode() + param.detach().numpy().tobytes())
    return digest.hexdigest()


def case(name: str) -> Case:
    if name not in CASES:
        pytest.fail(f"Edit method {name!r} is registered but has no contract case in CASES.")
    return CASES[name]


@pytest.fixture(autouse=True)
def _archives(mend_archive, serac_archive):
    ARCHIVES["mend"] = str(mend_archive)
    ARCHIVES["serac"] = str(serac_archive)


ARCHIVES: dict[str, str] = {}


def make(name, stats_cache, **changes):
    cls = EDIT_METHODS.get(name)
    if cls in (MEND, SERAC):
        changes = {"archive": ARCHIVES[name], **changes}
    hparams = cls.hparams_class(**{**case(name).hparams, **changes})
    if issubclass(cls, LocateMethod):
        return cls(hparams, stats_cache=stats_cache)
    return cls(hparams)


def test_every_registered_method_has_a_case():
    assert sorted(CASES) == METHODS
    assert {"rome", "memit", "alphaedit", "emmet", "ft-l", "ft-m"} <= set(METHODS)
    for name in METHODS:
        assert issubclass(EDIT_METHODS.get(name), case(name).family), name


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
    if case(name).family is LocateMethod:
        assert all(p.weight.endswith("mlp.W_out") and p.rank is not None for p in patch.patches)
    elif case(name).family is MEND:  # one low-rank patch per edited weight
        assert patch.weights() == MEND_WEIGHTS and all(p.rank for p in patch.patches)
    elif case(name).family is SERAC:  # a memory of the requests; no weight changes
        assert isinstance(patch, SERACMemory) and patch.weights() == []
        assert patch.edits == [(r.prompt, r.target_new) for r in requests]
    else:  # dense deltas on exactly the configured weights, each of them moved
        hp = case(name).hparams
        assert patch.weights() == [
            names.weight(w, layer) for layer in hp["layers"] for w in hp["weights"]
        ]
        assert all(p.rank is None and p.delta is not None for p in patch.patches)
        assert all(p.delta.abs().max() > 0 for p in patch.patches)
    if case(name).family is SERAC:
        answers_like_the_counterfactual(model, patch, requests)
    else:
        with patch.applied(model):
            assert token_accuracy(model, prompts, targets) == [1.0] * len(requests)
    assert weights_hash(model) == original


def answers_like_the_counterfactual(model, memory, requests):
    """Applied, a SERAC memory answers each request's prompt as the model does with the edit's
    context before it (a random tiny model cannot read the answer from its context; the real
    model does, tests/edit/test_serac.py), and an unrelated prompt exactly as before."""
    tok = model.tokenizer
    expected = []
    for r in requests:
        ids = tok(memory.archive.context(r.prompt, r.target_new), add_special_tokens=False)
        row = ids["input_ids"] + tok(r.prompt)["input_ids"]
        expected.append(model.forward(torch.tensor([row]))[0, -1])
    unrelated = model.forward(["A bird flew over"])
    plain = model.forward([r.prompt for r in requests])
    with memory.applied(model):
        got = model.forward([r.prompt for r in requests])
        assert got.shape == plain.shape  # the context is sliced off again
        for i, logits in enumerate(expected):
            torch.testing.assert_close(got[i, -1], logits, atol=1e-5, rtol=1e-5)
            assert not torch.allclose(got[i, -1], plain[i, -1])
        assert torch.equal(model.forward(["A bird flew over"]), unrelated)
    assert not model.patches
    assert torch.equal(model.forward(["A bird flew over"]), unrelated)


@pytest.mark.parametrize("name", METHODS)
def test_hparams_yaml_round_trip_and_recipe(name, tmp_path):
    cls = EDIT_METHODS.get(name).hparams_class
    hp = cls(**case(name).hparams)
    path = tmp_path / "hp.yaml"
    hp.to_yaml(path)
    assert cls.from_yaml(path) == hp
    recipe = RECIPES / f"{name}-smollm2.yaml"
    loaded = cls.from_yaml(recipe)
    assert f"method: {name}" in recipe.read_text() and loaded.method == name
    if case(name).family is SERAC:  # no layers: the archive shipped for the model routes
        assert loaded.archive is None and loaded.threshold is None
        with pytest.raises(ValueError, match="unknown key"):
            cls.from_dict({"rewrite_module_tmp": "model.layers.{}.mlp.down_proj"})
        return
    layers = (
        [names.layer_of(w) for w in loaded.inner_params]
        if case(name).family is MEND
        else loaded.layers
    )
    assert layers and all(0 <= layer < SMOLLM2_LAYERS for layer in layers)
    if case(name).family is MEND:  # canonical names of MLP weights
        assert all(
            names.template_of(w)[0].startswith("blocks.{i}.mlp.W_") for w in loaded.inner_params
        )
    elif case(name).family is LocateMethod:
        assert loaded.model_dims == {"n_layers": 30, "d_model": 576, "d_mlp": 1536}
    else:  # canonical weight names in a block (an unknown name raises)
        assert [names.weight(w, 0) for w in loaded.weights] == [
            f"blocks.0.{w}" for w in loaded.weights
        ]
    with pytest.raises(ValueError, match="unknown key"):
        cls.from_dict({"rewrite_module_tmp": "model.layers.{}.mlp.down_proj"})


@pytest.mark.parametrize("name", METHODS)
def test_bad_input_fails_before_anything_changes(name, edit_tiny, stats_cache):
    model = edit_tiny
    original = weights_hash(model)
    if case(name).family is SERAC:
        serac_bad_input(name, model, stats_cache)
    elif case(name).family is MEND:
        with pytest.raises(ValueError, match=r"layer\(s\) \[7\] out of range"):
            make(name, stats_cache, inner_params=["blocks.7.mlp.W_out"]).compute(
                model, REQUESTS[:1]
            )
        with pytest.raises(ValueError, match="cannot edit blocks.1.mlp.W_out"):
            make(name, stats_cache, inner_params=["blocks.1.mlp.W_out"]).compute(
                model, REQUESTS[:1]
            )
        with pytest.raises(ValueError, match="edit_lr must be positive"):
            make(name, stats_cache, edit_lr=0.0)
    else:
        with pytest.raises(ValueError, match=r"layer\(s\) \[7\] out of range"):
            make(name, stats_cache, layers=[7]).compute(model, REQUESTS[:1])
    if case(name).family is SERAC:
        pass
    elif case(name).family is MEND:
        with pytest.raises(ValueError, match="neither a canonical weight"):
            make(name, stats_cache, inner_params=["model.layers.3.mlp.down_projj.weight"]).compute(
                model, REQUESTS[:1]
            )
    elif case(name).family is LocateMethod:
        with pytest.raises(
            ValueError, match="another architecture: d_mlp=1536 \\(model has 128\\)"
        ):
            make(name, stats_cache, model_dims={"d_mlp": 1536}).compute(model, REQUESTS[:1])
        with pytest.raises(ValueError, match="v_loss_layer=31"):
            make(name, stats_cache, v_loss_layer=31).compute(model, REQUESTS[:1])
        with pytest.raises(RequestError, match="needs `subject`"):
            make(name, stats_cache).compute(
                model, [EditRequest(prompt="Hello world", target_new="Rome")]
            )
        with pytest.raises(ValueError, match="v_lr must be positive"):
            make(name, stats_cache, v_lr=0.0)
    else:
        with pytest.raises(KeyError, match="Unknown weight name 'mlp.W_outt'"):
            make(name, stats_cache, weights=["mlp.W_outt"]).compute(model, REQUESTS[:1])
        with pytest.raises(ValueError, match="lr must be positive"):
            make(name, stats_cache, lr=0.0)
        with pytest.raises(ValueError, match="num_steps must be at least 1"):
            make(name, stats_cache, num_steps=0)
    with pytest.raises(RequestError, match="does not occur in prompt"):
        EditRequest(prompt="Hello world", subject="Goodbye", target_new="Rome")
    with pytest.raises(RequestError, match="empty `target_new`"):
        EditRequest(prompt="Hello world", subject="Hello", target_new=" ")
    assert weights_hash(model) == original


def serac_bad_input(name, model, stats_cache):
    """SERAC: a bad threshold, no requests, an archive for another model, a truncated one."""
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\)"):
        make(name, stats_cache, threshold=1.5)
    with pytest.raises(EditError, match="no requests"):
        make(name, stats_cache).compute(model, [])
    assert shipped_archive(model) is None  # the shipped archive is for the default model
    shipped = files("interv.edit") / "archives" / "SmolLM2-135M-Instruct.serac.safetensors"
    with pytest.raises(ModelMismatchError, match="trained on SmolLM2-135M-Instruct"):
        make(name, stats_cache, archive=str(shipped)).compute(model, REQUESTS[:1])
    truncated = Path(ARCHIVES[name]).with_name("truncated.safetensors")
    truncated.write_bytes(Path(ARCHIVES[name]).read_bytes()[:5000])
    with pytest.raises(ValueError, match="corrupt or not a safetensors SERAC archive"):
        make(name, stats_cache, archive=str(truncated)).compute(model, REQUESTS[:1])
    assert not model.patches
