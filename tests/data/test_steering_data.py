"""Steering dataset loaders read the shared files correctly."""

from __future__ import annotations

import pytest

from interv.data import steering


def test_caa_sets():
    items = steering.caa_ab("refusal", "test")
    assert len(items) == 50
    assert all(i.matching in ("(A)", "(B)") and i.matching != i.not_matching for i in items)
    assert "(A)" in items[0].question and "(B)" in items[0].question
    assert len(steering.caa_ab("sycophancy", "generate", n=7)) == 7
    assert len(steering.caa_open_ended("refusal")) == 50
    with pytest.raises(ValueError, match="Unknown CAA behaviour 'refusals'"):
        steering.caa_ab("refusals")


def test_sentiment_and_toxicity_sets():
    assert len(steering.sentiment_prompts("neutral", 400)) == 400  # the bundled first 400
    pairs = steering.convsent_pairs(n=20)
    assert len(pairs) == 20 and all(p.positive and p.negative for p in pairs)
    data = steering.sst2()
    assert len(data) == 872 and {label for _, label in data} == {0, 1}
    assert len(steering.toxic_prompts()) == 700  # 100 per category
    assert len(steering.toxic_prompts("insult")) == 100
    terms = steering.profanity_terms()
    assert "fuck" in terms and "class" not in terms
