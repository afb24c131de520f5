"""Weight patches over random sequences (hypothesis): stacking and reverting in reverse order
restores every byte, an out-of-order revert gives the bytes of applying the remaining sets in
order, ``PatchSet.combine`` has the effect of the sets in sequence, files round-trip exactly.
(Long random sequences with merges and folded graphs: ``test_patch_stack.py``.)

Patches are drawn as specs (weight, dense or rank, seed, dtype, scale) and built on a tiny Llama
loaded for each test (never the session's cached one); every example starts from the weights as
loaded and reverts whatever it left applied, also when it fails.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interv.patch import PatchError, PatchSet, WeightPatch
from interv.record import ModelRecord

MATRICES = ("blocks.0.mlp.W_out", "blocks.1.mlp.W_out")  # 2-D: dense or low-rank
WEIGHTS = (*MATRICES, "blocks.0.attn.W_Q", "blocks.0.mlp.b_out")  # Llama has no b_out
CREATED = "blocks.0.mlp.b_out"
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass(frozen=True)
class Spec:
    weight: str
    rank: int | None  # None: a dense delta
    seed: int
    dtype: torch.dtype
    scale: float


def spec_strategy(dtypes=DTYPES) -> st.SearchStrategy[Spec]:
    common = dict(
        seed=st.integers(0, 2**16),
        dtype=st.sampled_from(dtypes),
        scale=st.sampled_from([0.01, 0.1, 1.0]),
    )
    dense = st.builds(Spec, weight=st.sampled_from(WEIGHTS), rank=st.none(), **common)
    low_rank = st.builds(Spec, weight=st.sampled_from(MATRICES), rank=st.integers(1, 4), **common)
    return st.one_of(dense, low_rank)


def sequences(dtypes=DTYPES, min_sets=1) -> st.SearchStrategy[list[list[Spec]]]:
    """Patch sets to apply in order, each a list of 1-3 patch specs (weights may repeat)."""
    return st.lists(
        st.lists(spec_strategy(dtypes), min_size=1, max_size=3), min_size=min_sets, max_size=4
    )


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
REQUESTS = st.lists(
    st.fixed_dictionaries(
        {"prompt": st.text(min_size=1, max_size=12), "target_new": st.text(max_size=6)}
    ),
    max_size=3,
)


def build(model, spec: Spec) -> WeightPatch:
    g = torch.Generator().manual_seed(spec.seed)
    shape = model.weight_shape(spec.weight)
    if spec.rank is None:
        delta = spec.scale * torch.randn(shape, generator=g)
        return WeightPatch(spec.weight, delta=delta.to(spec.dtype))
    U = spec.scale * torch.randn(shape[0], spec.rank, generator=g)
    V = torch.randn(shape[1], spec.rank, generator=g)
    return WeightPatch(spec.weight, U=U.to(spec.dtype), V=V.to(spec.dtype))


def build_sets(model, sequence: list[list[Spec]]) -> list[PatchSet]:
    record = ModelRecord.of(model)
    return [
        PatchSet([build(model, s) for s in specs], method=f"set{i}", model=record)
        for i, specs in enumerate(sequence)
    ]


def state(model) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in model.hf_model.state_dict().items()}


def state_hash(model) -> str:
    """Names, dtypes, shapes and bytes of every tensor in the state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.hf_model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def applied(model) -> list[int]:
    return [id(p) for p in model.patches]


@pytest.fixture
def llama(fresh_tiny):
    """``(model, hash of its state as loaded)``: one newly loaded tiny Llama per test."""
    model = fresh_tiny("llama")
    return model, state_hash(model)


@contextmanager
def example(llama) -> Iterator[object]:
    """The model as loaded; whatever the example leaves applied is reverted afterwards."""
    model, loaded = llama
    assert not model.patches and state_hash(model) == loaded
    try:
        yield model
    finally:
        while model.patches:
            model.patches.top().revert(model)


@SETTINGS
@given(sequence=sequences())
def test_reverting_in_reverse_order_restores_every_byte(llama, sequence):
    with example(llama) as model:
        assert CREATED not in model.weight_names()
        before = state_hash(model)
        sets = build_sets(model, sequence)
        touched = dict.fromkeys(p.weight for s in sets for p in s.patches)
        originals = {
            w: model.weight(w).detach().clone() if w in model.weight_names() else None
            for w in touched
        }
        for patch_set in sets:
            assert patch_set.apply(model) is patch_set
        assert applied(model) == [id(s) for s in sets]
        assert state_hash(model) != before
        for weight, original in originals.items():  # each weight moved by the sum of its deltas
            total = sum(p.dense().float() for s in sets for p in s.patches if p.weight == weight)
            expected = total if original is None else original + total
            torch.testing.assert_close(
                model.weight(weight).detach(), expected, rtol=1e-5, atol=1e-5
            )
        assert (CREATED in model.weight_names()) == (CREATED in touched)
        for patch_set in reversed(sets):
            patch_set.revert(model)
        assert state_hash(model) == before
        assert not model.patches and len(model.patches) == 0
        assert CREATED not in model.weight_names()


@SETTINGS
@given(sequence=sequences(min_sets=2), data=st.data())
def test_out_of_order_revert_rebases_exactly(llama, fresh_tiny, sequence, data):
    with example(llama) as model:
        before = state_hash(model)
        sets = build_sets(model, sequence)
        for patch_set in sets:
            patch_set.apply(model)
        stacked, order = state_hash(model), applied(model)
        never = build_sets(model, [data.draw(st.lists(spec_strategy(), min_size=1, max_size=2))])[0]
        with pytest.raises(PatchError, match="not applied to this model"):
            never.revert(model)
        buried = data.draw(st.sampled_from(sets[:-1]), label="buried")
        with pytest.raises(PatchError, match="already applied"):
            buried.apply(model)
        assert state_hash(model) == stacked and applied(model) == order
        buried.revert(model)
        rest = [s for s in sets if s is not buried]
        assert applied(model) == [id(s) for s in rest]
        reference = fresh_tiny("llama")  # the remaining sets applied in order, from scratch
        for patch_set in rest:
            patch_set.apply(reference)
        assert state_hash(model) == state_hash(reference)
        for patch_set in rest:  # oldest first: every revert rebases the ones above it
            patch_set.revert(reference)
        assert state_hash(reference) == before
        for patch_set in data.draw(st.permutations(rest), label="order"):
            patch_set.revert(model)
        assert state_hash(model) == before and not model.patches


@SETTINGS
@given(sequence=sequences(dtypes=(torch.float32,)))
def test_combine_has_the_effect_of_the_sets_in_sequence(llama, sequence):
    with example(llama) as model:
        before = state_hash(model)
        sets = build_sets(model, sequence)
        for patch_set in sets:
            patch_set.apply(model)
        in_sequence = state(model)
        for patch_set in reversed(sets):
            patch_set.revert(model)

        combined = PatchSet.combine(sets)
        parts: dict[str, list[WeightPatch]] = {}
        for patch in (p for s in sets for p in s.patches):
            parts.setdefault(patch.weight, []).append(patch)
        assert combined.weights() == list(parts)  # one patch per weight, in first-touched order
        for patch in combined.patches:
            if all(p.rank is not None for p in parts[patch.weight]):  # low-rank stays low-rank
                assert patch.rank == sum(p.rank for p in parts[patch.weight])
        assert combined.method == "+".join(s.method for s in sets)
        assert combined.fingerprint == model.fingerprint()
        with combined.applied(model):
            once = state(model)
        assert once.keys() == in_sequence.keys()
        for name, tensor in in_sequence.items():
            torch.testing.assert_close(once[name], tensor, rtol=1e-5, atol=1e-5, msg=name)
        stacked = PatchSet.combine(sets, merge=False)  # every patch kept, in order: bit-exact
        assert stacked.weights() == [p.weight for s in sets for p in s.patches]
        with stacked.applied(model):
            exact = state(model)
        assert all(torch.equal(exact[name], tensor) for name, tensor in in_sequence.items())
        assert state_hash(model) == before and not model.patches


@SETTINGS
@given(specs=st.lists(spec_strategy(), min_size=1, max_size=4), requests=REQUESTS, hparams=JSON)
def test_save_load_round_trips_exactly(llama, tmp_path, specs, requests, hparams):
    with example(llama) as model:
        (patch_set,) = build_sets(model, [specs])
        patch_set.requests, patch_set.hparams = requests, {"drawn": hparams}
        with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
            loaded = PatchSet.load(patch_set.save(Path(folder) / "p.safetensors"))
        assert loaded.weights() == patch_set.weights()
        for got, want in zip(loaded.patches, patch_set.patches, strict=True):
            assert got.rank == want.rank and got.tensors().keys() == want.tensors().keys()
            for key, tensor in want.tensors().items():
                assert got.tensors()[key].dtype == tensor.dtype
                assert torch.equal(got.tensors()[key], tensor)
        assert (loaded.method, loaded.requests, loaded.hparams, loaded.created) == (
            patch_set.method,
            requests,
            {"drawn": hparams},
            patch_set.created,
        )
        assert loaded.model == patch_set.model and loaded.fingerprint == model.fingerprint()
        with patch_set.applied(model):
            original = state_hash(model)
        with loaded.applied(model):
            assert state_hash(model) == original
