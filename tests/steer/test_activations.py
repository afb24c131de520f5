"""Reading activations for vector generation: paired texts share their common beginning."""

from __future__ import annotations

import pytest
import torch

from interv.steer.activations import read_activations, read_pair_activations
from tests.conftest import BACKENDS


def _pairs(vocab: int):
    g = torch.Generator().manual_seed(1)
    ids = lambda n: torch.randint(3, vocab, (n,), generator=g).tolist()  # noqa: E731
    stems = [ids(n) for n in (7, 3, 12, 5, 9)]
    first = [s + ids(k) for s, k in zip(stems, (1, 2, 1, 3, 1), strict=True)]
    second = [s + ids(k) for s, k in zip(stems, (1, 1, 4, 2, 1), strict=True)]
    second[3] = ids(6)  # shares nothing with its first text
    spans_first = [(len(s), len(t)) for s, t in zip(stems, first, strict=True)]
    spans_second = [(len(s), len(t)) for s, t in zip(stems, second, strict=True)]
    spans_second[3] = (2, 6)
    return first, spans_first, second, spans_second


@pytest.mark.parametrize("backend", BACKENDS)
def test_pair_reading_equals_reading_whole_texts(tiny_models, backend):
    model = tiny_models("llama", backend)
    first, fs, second, ss = _pairs(model.cfg.d_vocab)
    hooks = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    expected = read_activations(model, first + second, fs + ss, hooks, batch_size=2)
    got_first, got_second = read_pair_activations(model, first, fs, second, ss, hooks, batch_size=2)
    for hook in hooks:
        tol = 1e-5 * float(expected[hook].abs().max())  # float noise of a different summation order
        torch.testing.assert_close(got_first[hook], expected[hook][: len(first)], atol=tol, rtol=0)
        torch.testing.assert_close(got_second[hook], expected[hook][len(first) :], atol=tol, rtol=0)
        assert got_first[hook].shape == (len(first), model.cfg.d_model)


def test_pair_reading_errors(tiny_models):
    model = tiny_models("llama")
    first, fs, second, ss = _pairs(model.cfg.d_vocab)
    with pytest.raises(ValueError, match="as many second texts"):
        read_pair_activations(model, first, fs, second[:-1], ss[:-1], ["blocks.0.hook_resid_post"])
    with pytest.raises(ValueError, match=r"Span \(0, 99\) is outside"):
        read_pair_activations(
            model, first, [(0, 99)] + fs[1:], second, ss, ["blocks.0.hook_resid_post"]
        )
