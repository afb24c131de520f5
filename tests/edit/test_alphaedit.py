"""AlphaEdit: updates confined to the null space of preserved keys, memory of earlier edits."""

from __future__ import annotations

import logging

import pytest
import torch

from interv.edit import EditRequest
from interv.edit.alphaedit import AlphaEdit, AlphaEditHParams
from tests.edit.conftest import TINY

REQUESTS = [
    EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome"),
    EditRequest(prompt="The cat sat on the", subject="The cat", target_new="mat"),
]


def _method(stats_cache, **changes):
    return AlphaEdit(
        AlphaEditHParams(**{**TINY, "layers": [0, 1], "nullspace_threshold": 5.0, **changes}),
        stats_cache=stats_cache,
    )


def test_updates_leave_preserved_directions_alone(edit_tiny, stats_cache):
    method = _method(stats_cache)
    patch = method.compute(edit_tiny, REQUESTS)
    moments = method.second_moment(edit_tiny, [0, 1])
    for layer, weight_patch in zip([0, 1], patch.patches, strict=True):
        eigvals, eigvecs = torch.linalg.eigh(moments[layer].double())
        kept = eigvecs[:, eigvals >= 5.0].float()  # directions the statistics say matter
        change = kept.T @ weight_patch.dense()
        assert change.norm() < 1e-3 * weight_patch.dense().norm()


def test_sequential_edits_accumulate_keys_and_reset(edit_tiny, stats_cache):
    method = _method(stats_cache)
    assert method.edited_keys(edit_tiny, 0) is None
    first = method.compute(edit_tiny, REQUESTS[:1]).apply(edit_tiny)
    one = method.edited_keys(edit_tiny, 0).clone()
    assert torch.linalg.matrix_rank(one) == 1
    second = method.compute(edit_tiny, REQUESTS[1:]).apply(edit_tiny)
    assert torch.linalg.matrix_rank(method.edited_keys(edit_tiny, 0)) == 2
    second.revert(edit_tiny)
    first.revert(edit_tiny)
    method.reset()
    assert method.edited_keys(edit_tiny, 0) is None


def test_an_empty_null_space_is_an_error(edit_tiny, stats_cache):
    with pytest.raises(ValueError, match="leaves no null space.*raise nullspace_threshold"):
        _method(stats_cache, nullspace_threshold=1e-6).compute(edit_tiny, REQUESTS[:1])


def test_writing_too_little_names_alphaedits_own_knobs(edit_tiny, stats_cache, caplog):
    with caplog.at_level(logging.WARNING):
        _method(stats_cache, L2=1e12).compute(edit_tiny, REQUESTS[:1])
    assert "wrote only" in caplog.text and "Lower L2, raise nullspace_threshold" in caplog.text
    assert "mom2_update_weight" not in caplog.text
