"""Weight patches: bit-exact revert, stacking, persistence, errors that leave the model alone."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from interv.adapters.identity import encode_sample
from interv.errors import ModelMismatchError
from interv.patch import PatchError, PatchSet, WeightPatch
from interv.record import ModelRecord


def weights_hash(model) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.hf_model.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def _random_set(model, seed=0, rank=None) -> PatchSet:
    g = torch.Generator().manual_seed(seed)
    c = model.cfg
    patches = [
        WeightPatch("blocks.0.mlp.W_out", delta=torch.randn(c.d_mlp, c.d_model, generator=g)),
        WeightPatch(
            "blocks.1.attn.W_Q", delta=torch.randn(c.n_heads, c.d_model, c.d_head, generator=g)
        ),
    ]
    if rank:
        patches.append(
            WeightPatch(
                "blocks.1.mlp.W_in",
                U=torch.randn(c.d_model, rank, generator=g),
                V=torch.randn(c.d_mlp, rank, generator=g),
            )
        )
    return PatchSet(patches, method="test", model=ModelRecord.of(model))


@pytest.mark.parametrize("backend", ["hf", "transformer_lens", "nnsight"])
def test_apply_and_revert_are_bit_exact(fresh_tiny, backend):
    model = fresh_tiny("llama", backend)
    original, logits = weights_hash(model), model.forward("Hello").detach()
    patch = _random_set(model, rank=3).apply(model)
    assert weights_hash(model) != original
    assert not torch.allclose(model.forward("Hello"), logits)
    patch.revert(model)
    assert weights_hash(model) == original
    torch.testing.assert_close(model.forward("Hello"), logits, atol=0, rtol=0)


def test_stacked_patches_revert_in_any_order(fresh_tiny):
    model = fresh_tiny("gpt2")
    original = weights_hash(model)
    first, second = _random_set(model, 1), _random_set(model, 2)  # same weights, twice
    first.apply(model)
    after_first = weights_hash(model)
    second.apply(model)
    second.revert(model)
    assert weights_hash(model) == after_first
    second.apply(model)
    first.revert(model)  # under `second`: rebased, as if `second` alone were applied
    only_second = fresh_tiny("gpt2")
    second.apply(only_second)
    assert weights_hash(model) == weights_hash(only_second)
    assert list(model.patches) == [second]
    second.revert(model)
    assert weights_hash(model) == original


def test_low_rank_patch_equals_its_dense_form(fresh_tiny):
    model = fresh_tiny("llama")
    U, V = torch.randn(32, 2), torch.randn(64, 2)
    low = PatchSet([WeightPatch("blocks.0.mlp.W_in", U=U, V=V)])
    dense = PatchSet([WeightPatch("blocks.0.mlp.W_in", delta=U @ V.T)])
    with low.applied(model):
        a = model.forward("abc").detach()
    with dense.applied(model):
        b = model.forward("abc").detach()
    torch.testing.assert_close(a, b)


def test_context_manager_reverts_after_exception(fresh_tiny):
    model = fresh_tiny("llama")
    original = weights_hash(model)
    with pytest.raises(RuntimeError), _random_set(model).applied(model):
        raise RuntimeError("boom")
    assert weights_hash(model) == original


def test_save_load_round_trip(fresh_tiny, tmp_path):
    model = fresh_tiny("llama")
    patch = _random_set(model, rank=2)
    patch.requests = [{"prompt": "x", "target_new": "y"}]
    loaded = PatchSet.load(patch.save(tmp_path / "p.safetensors"))
    assert loaded.weights() == patch.weights()
    assert (loaded.method, loaded.fingerprint, loaded.requests) == (
        "test",
        model.fingerprint(),
        patch.requests,
    )
    for a, b in zip(loaded.patches, patch.patches, strict=True):
        for key, tensor in b.tensors().items():
            assert torch.equal(a.tensors()[key], tensor)


def test_errors_leave_the_model_unchanged(fresh_tiny, tiny_models, tmp_path):
    model = fresh_tiny("llama")
    original = weights_hash(model)
    wrong_shape = PatchSet([WeightPatch("blocks.0.mlp.W_out", delta=torch.zeros(3, 3))])
    with pytest.raises(PatchError, match="has shape"):
        wrong_shape.apply(model)
    other_model = _random_set(tiny_models("qwen2"))
    with pytest.raises(ModelMismatchError, match="model_type 'qwen2' != 'llama'"):
        other_model.apply(model)
    record = ModelRecord.of(model)
    values, dtype = model.weight_sample()
    finetuned = dataclasses.replace(
        record, sample=encode_sample(values * 1.01), fingerprint="f" * 16
    )  # the same family, other weights
    with pytest.raises(ModelMismatchError, match="weights differ .fingerprint"):
        PatchSet(_random_set(model).patches, model=finetuned).apply(model)
    late_typo = PatchSet(
        [
            WeightPatch("blocks.0.mlp.W_out", delta=torch.ones(64, 32)),
            WeightPatch("blocks.0.mlp.W_outt", delta=torch.ones(64, 32)),
        ]
    )
    with pytest.raises(KeyError, match="blocks.0.mlp.W_out"):
        late_typo.apply(model)
    assert weights_hash(model) == original
    corrupt = tmp_path / "bad.safetensors"
    _random_set(model).save(corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    with pytest.raises(PatchError, match="corrupt"):
        PatchSet.load(corrupt)
    with pytest.raises(PatchError, match="NaN"):
        WeightPatch("blocks.0.mlp.W_out", delta=torch.full((64, 32), float("nan")))


def test_merge_into_is_permanent(fresh_tiny):
    model = fresh_tiny("llama")
    patch = _random_set(model)
    expected = model.weight("blocks.0.mlp.W_out") + patch.patches[0].delta
    patch.merge_into(model)
    torch.testing.assert_close(model.weight("blocks.0.mlp.W_out"), expected)
    with pytest.raises(PatchError, match="not applied"):
        patch.revert(model)


@pytest.mark.parametrize("backend", ["hf", "transformer_lens", "nnsight"])
def test_patch_on_an_absent_bias_creates_and_removes_it(fresh_tiny, backend):
    model = fresh_tiny("llama", backend)
    original, logits = weights_hash(model), model.forward("Hello").detach()
    names = sorted(n for n, _ in model.hf_model.named_parameters())
    delta = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    patch = PatchSet([WeightPatch("blocks.1.attn.b_O", delta=delta)])
    with patch.applied(model):
        torch.testing.assert_close(model.weight("blocks.1.attn.b_O"), delta)
        assert not torch.allclose(model.forward("Hello"), logits)
    assert sorted(n for n, _ in model.hf_model.named_parameters()) == names
    assert weights_hash(model) == original
    torch.testing.assert_close(model.forward("Hello"), logits, atol=0, rtol=0)
    with pytest.raises(PatchError, match="shape \\(3,\\), but the weight has shape \\(32,\\)"):
        PatchSet([WeightPatch("blocks.1.attn.b_O", delta=torch.ones(3))]).apply(model)
    assert "blocks.1.attn.b_O" not in model.weight_names()
