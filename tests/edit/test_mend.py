"""MEND on tiny models: the hook sites are the weights, the hooks give the weight's gradient, an
untrained network is a gradient step, archives round-trip and refuse what they were not made
for, and an interrupted training run resumes where it stopped."""

from __future__ import annotations

import pytest
import torch

from interv.adapters import names
from interv.cli.train import overrides, split
from interv.data.editing import load_requests
from interv.edit.mend import MEND, MENDArchive, MENDHParams, MENDNetwork, shipped_archive
from interv.edit.mend_training import episodes, new_network, train
from interv.edit.token_grads import (
    EDITABLE,
    canonical_weights,
    edited,
    nll,
    rows_of,
    site,
    token_pairs,
)
from interv.errors import (
    ArtefactError,
    ConfigError,
    DataError,
    ModelMismatchError,
    RequestError,
    UnsupportedError,
)
from interv.patch import PatchSet, WeightPatch
from interv.requests import EditRequest
from tests.edit.conftest import MEND_FACTS, MEND_PROBES
from tests.tiny import FAMILIES

PAIRS = [("Hello world, this is", " Rome"), ("The cat sat", " on the mat")]


def _weights(model) -> list[str]:
    layer = model.cfg.n_layers - 1
    return [
        names.weight(w, layer) for w in EDITABLE if names.weight(w, layer) in model.weight_names()
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_hooks_at_the_sites_equal_the_weight_patch(family, tiny_models):
    model = tiny_models(family)
    rows = rows_of(model, PAIRS, 40)
    torch.manual_seed(0)
    for weight in _weights(model):
        if family == "gemma2" and weight.endswith("W_out"):  # normed before the residual
            with pytest.raises(UnsupportedError, match="normalises the MLP output"):
                site(model, weight)
            continue
        where = site(model, weight)
        d_in, d_out = model.weight_shape(weight)
        U, V = torch.randn(d_in, 3) * 0.1, torch.randn(d_out, 3) * 0.1
        with torch.no_grad():
            with edited(model, [where], {weight: [(U, V), (U, V)]}) as hooks:
                hooked = model.forward(rows.inputs, hooks=hooks)
            with PatchSet([WeightPatch(weight, U=U, V=V)]).applied(model):
                patched = model.forward(rows.inputs)
            plain = model.forward(rows.inputs)
        assert not torch.allclose(hooked, plain, atol=1e-3), weight  # the change is visible
        torch.testing.assert_close(hooked, patched, atol=2e-4, rtol=1e-4, msg=weight)


def _canonical_grad(model, weight, loss_fn):
    native_name, param = model.native_weight(weight)
    with torch.enable_grad():
        flag = param.requires_grad
        param.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(), [param])
        param.requires_grad_(flag)
    return grad if tuple(grad.shape) == model.weight_shape(weight) else grad.T


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox"])
def test_token_pairs_sum_to_the_weight_gradient(family, tiny_models):
    model = tiny_models(family)
    rows = rows_of(model, PAIRS, 40)
    weights = _weights(model)
    pairs = token_pairs(model, rows, [site(model, w) for w in weights])
    for weight in weights:
        expected = _canonical_grad(
            model, weight, lambda: nll(model.forward(rows.inputs), rows, [0, 1]) * 2
        )
        summed = sum(x.T @ d for x, d in pairs[weight])
        torch.testing.assert_close(summed, expected, atol=1e-5, rtol=1e-4, msg=weight)


def test_an_untrained_network_without_norm_is_a_gradient_step(tiny_models):
    model = tiny_models("llama")
    hp = MENDHParams(inner_params=_weights(model), norm=False, rank=4, edit_lr=0.01)
    network = new_network(model, hp)
    rows = rows_of(model, PAIRS[:1], 40)
    pairs = token_pairs(model, rows, [site(model, w) for w in network.weights])
    for weight in network.weights:
        x, d = pairs[weight][0]
        U, V = network.factors(weight, x, d)
        torch.testing.assert_close(U @ V.T, -0.01 * (x.T @ d), atol=1e-7, rtol=1e-5)


def test_native_names_map_to_canonical_ones(tiny_models):
    model = tiny_models("llama")
    assert canonical_weights(
        model, ["model.layers.1.mlp.down_proj.weight", "blocks.0.mlp.W_in"]
    ) == [
        "blocks.1.mlp.W_out",
        "blocks.0.mlp.W_in",
    ]
    with pytest.raises(ConfigError, match="did you mean 'model.layers.1.mlp.down_proj.weight'"):
        canonical_weights(model, ["model.layers.1.mlp.down_proj.weights"])
    with pytest.raises(ConfigError, match="MEND edits MLP weights"):
        site(model, "blocks.0.attn.W_Q")


def test_archive_round_trip_and_refusals(edit_tiny, mend_archive, tiny_models, tmp_path):
    archive = MENDArchive.load(mend_archive)
    again = MENDArchive.load(archive.save(tmp_path / "again.safetensors"))
    for key, value in archive.network.state_dict().items():
        assert torch.equal(value, again.network.state_dict()[key]), key
    assert again.meta["trained"]["steps"] == 80 and len(again.meta["history"]) == 2
    request = EditRequest(**MEND_FACTS[0])
    hp = MENDHParams(inner_params=archive.network.weights, archive=str(mend_archive))
    first = MEND(hp).compute(edit_tiny, [request])
    second = MEND(hp.replace(archive=str(tmp_path / "again.safetensors"))).compute(
        edit_tiny, [request]
    )
    for a, b in zip(first.patches, second.patches, strict=True):
        assert torch.equal(a.dense(), b.dense())

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(mend_archive.read_bytes()[:-1000])
    with pytest.raises(ArtefactError, match="corrupt or not a safetensors MEND archive"):
        MEND(hp.replace(archive=str(truncated))).compute(edit_tiny, [request])
    other = tiny_models("llama")  # another model: other widths and weights
    assert shipped_archive(other) is None
    with pytest.raises(ConfigError, match="No MEND archive ships for"):
        MEND().compute(other, [request])
    with pytest.raises(ModelMismatchError, match="Train one for this model"):
        MEND(hp.replace(inner_params=["blocks.1.mlp.W_out"])).compute(other, [request])


def test_bad_training_data_fails_clearly(tmp_path):
    facts = [EditRequest(**f) for f in MEND_FACTS]  # no locality probes anywhere
    with pytest.raises(ConfigError, match="needs locality probes"):
        episodes(facts)
    records = tmp_path / "records.json"
    records.write_text('[{"prompt": "Who wrote Hamlet?", "subject": "Hamlet"}]')
    with pytest.raises(RequestError, match="missing field 'target_new'"):
        load_requests(records)
    with pytest.raises(DataError, match="only its first 40 records ship"):  # training needs
        split("zsre", held_out=100, val=50)  # the full file: INTERV_DATA
    with pytest.raises(ConfigError, match="--held-out must be >= 0"):
        split("zsre", held_out=-1, val=50)
    assert overrides(["rank=64", "lr=5e-4"]) == {"rank": 64, "lr": "5e-4"}
    assert MENDHParams.from_dict({"lr": "5e-4"}).lr == 5e-4  # how `interv train --set` reads it
    with pytest.raises(ConfigError, match="--set takes KEY=VALUE"):
        overrides(["rank"])
    with pytest.raises(ConfigError, match="one_sided=True is not supported"):
        MENDHParams(one_sided=True)


def test_training_resumes_where_it_stopped(edit_tiny, tmp_path):
    facts = [EditRequest(**f, locality=MEND_PROBES) for f in MEND_FACTS]
    hp = MENDHParams(
        inner_params=["blocks.3.mlp.W_out"], rank=4, max_iters=6, val_interval=3, lr=1e-3
    )
    whole = train(edit_tiny, facts, facts, hp, tmp_path / "whole", resume=False, progress=False)
    train(edit_tiny, facts, facts, hp.replace(max_iters=3), tmp_path / "parts", progress=False)
    resumed = train(edit_tiny, facts, facts, hp, tmp_path / "parts", progress=False)
    assert [h["step"] for h in resumed.history] == [3, 6]
    for key, value in whole.archive.network.state_dict().items():
        torch.testing.assert_close(value, resumed.archive.network.state_dict()[key], msg=key)
    assert isinstance(resumed.archive.network, MENDNetwork)


@pytest.mark.real_model
def test_shipped_archive_edits_the_default_model(real_models):
    model = real_models()
    request = EditRequest(
        prompt="What university did Watts Humphrey attend?",
        target_new="University of Michigan",
        locality={"nq": [("nq question: who sings does he love me with reba", "Linda Davis")]},
    )
    method = MEND()  # inner_params None: every weight of the shipped archive
    archive = method.archive(model)
    assert archive.meta["trained"]["dataset"] == "zsre" and archive.meta["history"]
    before = method.weights(model)
    patch = method.compute(model, [request])
    assert patch.weights() == before and all(p.rank for p in patch.patches)
    from interv.eval.tokens import token_accuracy

    plain = token_accuracy(model, [request.prompt], [request.target_new])[0]
    with patch.applied(model):
        edited = token_accuracy(model, [request.prompt], [request.target_new])[0]
    assert edited > plain and edited >= 0.75
    assert shipped_archive(model).name == "SmolLM2-135M-Instruct.mend.safetensors"
