"""ToxiGen statements from the bundled prompt files: every distinct statement, split and
deduplicated; the toxicity probe's training data keeps its held-out group and category out and
weighs both labels, and each source within a label, the same."""

from __future__ import annotations

import pytest

from interv.data.steering import TOXIGEN_GROUPS, toxic_prompts, toxigen_statements
from interv.errors import ConfigError
from interv.eval.classifiers import (
    TOXICITY_HELD_OUT_CATEGORY,
    TOXICITY_HELD_OUT_GROUP,
    toxicity_data,
)


def test_statements_are_split_and_deduplicated():
    counts = {
        g: (len(toxigen_statements("hate", g)), len(toxigen_statements("neutral", g)))
        for g in TOXIGEN_GROUPS
    }
    assert counts == {"women": (20, 17), "muslim": (15, 15), "asian": (7, 10), "lgbtq": (113, 92)}
    hate = toxigen_statements("hate", "women")
    assert hate[0] == "women are too emotional to make important decisions"
    assert all(s and not s.startswith("-") and "\\n" not in s for s in hate)
    with pytest.raises(ConfigError, match="hate"):
        toxigen_statements("toxic", "women")
    with pytest.raises(ConfigError, match="Unknown ToxiGen group"):
        toxigen_statements("hate", "martians")


def test_the_probe_never_trains_on_its_held_out_sets():
    data = toxicity_data()
    texts, labels = data.texts, data.labels
    held_out = set(toxigen_statements("hate", TOXICITY_HELD_OUT_GROUP))
    held_out |= set(toxigen_statements("neutral", TOXICITY_HELD_OUT_GROUP))
    held_out |= set(toxic_prompts(TOXICITY_HELD_OUT_CATEGORY))
    assert not held_out & set(texts)
    benign = {t for t, y in zip(texts, labels, strict=True) if not y}
    toxic = {t for t, y in zip(texts, labels, strict=True) if y}
    assert set(toxigen_statements("neutral", "lgbtq")) <= benign
    assert set(toxigen_statements("hate", "women")) <= toxic
    # both labels weigh half, and within a label each source the same: two toxic sources,
    # three benign ones (general, toxigen, assistant replies)
    weights = data.weights()
    assert weights.mean().item() == pytest.approx(1.0)
    cells = list(zip(data.sources, labels, strict=True))
    assert set(cells) == {
        ("general", 1),
        ("toxigen", 1),
        ("general", 0),
        ("toxigen", 0),
        ("assistant", 0),
    }
    for cell in set(cells):
        rows = [k for k, c in enumerate(cells) if c == cell]
        share = 1 / 4 if cell[1] else 1 / 6
        assert weights[rows].sum().item() == pytest.approx(len(texts) * share)
    assert "I cannot assist with any illegal or unethical activities." in benign
