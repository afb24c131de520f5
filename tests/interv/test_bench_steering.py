"""``interv bench steering``: the sentiment summary arithmetic behind the quality targets."""

from __future__ import annotations

import pytest

from interv.bench.steering import _summary


def test_summary_reports_shift_in_points_and_the_distinct_ratio():
    plain = {"vader_positive_share": 0.5, "vader_negative_share": 0.2, "distinct_2": 0.9}
    steered = {"vader_positive_share": 0.85, "vader_negative_share": 0.0, "distinct_2": 0.72}
    row = _summary(steered, plain)
    assert row["shift_points"] == 35.0 and row["distinct_2_ratio"] == 0.8
    assert _summary(plain, plain)["shift_points"] == 0.0


@pytest.mark.real_model
def test_methods_choose_each_strength_on_validation_under_the_fluency_floor(real_models):
    """A stand-in generator: a share strength/4 of the steered texts is positive, and from
    strength 4 on they repeat themselves, so the choice must stop below 4."""
    from interv.bench import sentiment_methods

    seen: list[list[str]] = []

    def generate(model, prompts, graph, seed):
        seen.append(list(prompts))
        scale = 0.0 if graph is None else float(graph.nodes[0].scale)
        if scale >= 4:
            return ["great great great great great great"] * len(prompts)
        return [
            f"{p.split()[0]} {'wonderful happy lovely' if i % 4 < scale else 'the day went by'} {i}"
            for i, p in enumerate(prompts)
        ]

    out = sentiment_methods.methods(real_models(), 12, 0, generate)
    rows = out["rows"]
    assert set(rows) == {"unsteered", "prompt", "mean_diff", "vector_prompt", "sft"}
    assert rows["vector_prompt"]["strength"] == 2.0  # 4.0 repeats itself: below the floor
    assert rows["sft"]["strength"] == 2.0 and rows["mean_diff"]["strength"] == 3.0
    assert rows["vector_prompt"]["vader_positive_share"] > rows["unsteered"]["vader_positive_share"]
    test = set(seen[1])  # the unsteered test run
    assert out["n_test"] == 12 and not test & set(seen[0])  # validation never overlaps test
