"""Calls bounded by the model: a prompt plus new tokens beyond the context window is refused
before any work (or truncated on request, with a warning); ``max_time`` bounds wall-clock."""

from __future__ import annotations

import pytest
import torch

from interv.errors import ConfigError
from tests.conftest import BACKENDS
from tests.reliability.matrix import assert_refused


@pytest.mark.parametrize("backend", BACKENDS)
def test_generation_beyond_the_context_window_is_refused(tiny_models, backend):
    model = tiny_models("llama", backend)  # n_ctx 128
    assert model.cfg.n_ctx == 128
    long = "ab" * 70  # 140 byte tokens
    assert_refused(
        model, lambda: model.generate("Hi", max_new_tokens=10**9), ConfigError, "max_new_tokens"
    )
    assert_refused(
        model, lambda: model.generate(long, max_new_tokens=4), ConfigError, ["128", "truncate"]
    )
    assert_refused(model, lambda: model.forward(long), ConfigError, ["140 tokens", "128"])
    edge = "ab" * 60  # 120 + 8 new tokens fit exactly
    assert len(model.generate(edge, max_new_tokens=8)) == 1


def test_truncation_keeps_the_end_of_the_prompt_and_warns(tiny_models):
    model = tiny_models("llama")
    text = "x" * 40 + "The cat sat on the mat " * 5  # 155 tokens
    with pytest.warns(UserWarning, match="truncated to their last 120 tokens"):
        got = model.generate([text, "Hi"], max_new_tokens=8, truncate=True)
    ids = model.tokenizer(text)["input_ids"][-120:]
    expected = model.generate(model.tokenizer.decode(ids), max_new_tokens=8)
    assert got[0] == expected[0]


def test_a_prefilled_prefix_counts_towards_the_window(tiny_models):
    model = tiny_models("llama")
    past = model.prefill(["ab" * 50])  # 100 positions held
    more = torch.full((1, 40), 5)
    assert_refused(model, lambda: model.forward(more, past=past), ConfigError, "140 tokens")


def test_max_time_bounds_a_generation(tiny_models):
    model = tiny_models("llama")
    full = model.generate("Hi", max_new_tokens=100, do_sample=True, seed=0)[0]
    cut = model.generate("Hi", max_new_tokens=100, do_sample=True, seed=0, max_time=1e-6)[0]
    assert len(cut) < len(full)
