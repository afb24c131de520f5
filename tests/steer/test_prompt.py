"""Prompt steering: a hand-written prompt, or the best candidate by an evaluation metric."""

from __future__ import annotations

import dataclasses

import pytest

from interv.steer.prompt import PromptHParams, PromptIntervention, PromptSteer


def test_manual_prompt_needs_no_model():
    out = PromptSteer(PromptHParams(prompt="Be cheerful.", mode="system")).fit(None)
    assert out == PromptIntervention("Be cheerful.", "system", {"method": "prompt"})


def test_candidates_are_scored_on_generations_and_the_best_is_kept(tiny_models):
    model = tiny_models("llama")
    hp = PromptHParams(
        candidates=["aaaa aaaa aaaa", "the cat sat on a mat"],
        metric="distinct_1",
        n_inputs=2,
        max_new_tokens=3,
    )
    out = PromptSteer(hp).fit(model, ["hi", "yo", "ignored"])
    scores = out.meta["scores"]
    assert set(scores) == set(hp.candidates)
    assert out.prompt == max(hp.candidates, key=lambda c: scores[c])
    worst = PromptSteer(dataclasses.replace(hp, goal="min")).fit(model, ["hi", "yo"])
    assert (
        worst.prompt == min(hp.candidates, key=lambda c: scores[c])
        or len(set(scores.values())) == 1
    )


def test_prompt_errors(tiny_models):
    with pytest.raises(ValueError, match="exactly one of `prompt` or `candidates`"):
        PromptHParams()
    with pytest.raises(ValueError, match="exactly one of `prompt` or `candidates`"):
        PromptHParams(prompt="x", candidates=["y"])
    with pytest.raises(ValueError, match="needs the model"):
        PromptSteer(PromptHParams(candidates=["a"])).fit(None, ["hi"])
    with pytest.raises(ValueError, match="dataset is empty"):
        PromptSteer(PromptHParams(candidates=["a"])).fit(tiny_models("llama"), [])
