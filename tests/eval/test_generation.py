"""Answers by open generation: normalisation, matching, stops, batching."""

from __future__ import annotations

import pytest

from interv.eval.generation import (
    SYSTEM_PROMPT,
    answer_matches,
    cut_at_stop,
    generate_answers,
    normalize_answer,
)


def test_normalisation_and_matching():
    assert normalize_answer("  The Eiffel-Tower, in PARIS! ") == "eiffeltower in paris"
    assert answer_matches("Paris.", "paris") and not answer_matches("It is Paris", "Paris")
    assert answer_matches("It is Paris", "Paris", "contains")
    assert not answer_matches("Parisian food", "Paris", "contains")  # whole words only
    assert not answer_matches("anything", "", "contains")
    with pytest.raises(ValueError, match="match must be one of"):
        answer_matches("a", "a", "regex")


def test_stops_at_period_or_newline():
    assert cut_at_stop("Rome. Then more") == "Rome"
    assert cut_at_stop("Rome\nnext line") == "Rome"
    assert cut_at_stop("no stop here") == "no stop here"


def test_answers_are_greedy_chat_generations(tiny_models):
    model = tiny_models("llama")
    prompts = ["What is x?", "Tell me a much longer thing please"]
    answers = generate_answers(model, prompts, max_new_tokens=8)
    direct = model.generate(
        prompts, max_new_tokens=8, chat_template=True, system_prompt=SYSTEM_PROMPT
    )
    assert answers == [cut_at_stop(t).strip() for t in direct]
    assert generate_answers(model, prompts[1:], max_new_tokens=8, batch_size=1) == answers[1:]
    raw = generate_answers(model, prompts, max_new_tokens=8, chat_template=False)
    assert raw == [cut_at_stop(t).strip() for t in model.generate(prompts, max_new_tokens=8)]
