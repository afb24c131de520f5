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


def test_choose_strength_keeps_the_distinct_floor():
    from interv.bench.sentiment_methods import choose_strength

    tried = {
        2.0: {"distinct_2": 0.85, "net": 0.2},
        4.0: {"distinct_2": 0.75, "net": 0.5},
        6.0: {"distinct_2": 0.40, "net": 0.7},
    }
    plain = {"distinct_2": 0.9}
    assert choose_strength(tried, plain, 0.8, lambda r: r["net"]) == 4.0
    assert choose_strength(tried, plain, 0.9, lambda r: r["net"]) == 2.0
    assert choose_strength(tried, plain, 0.8, lambda r: -r["net"]) == 2.0
    # when no strength keeps the floor, the best score among all of them
    assert choose_strength(tried, {"distinct_2": 2.0}, 0.8, lambda r: r["net"]) == 6.0


class _Vector:
    """A stand-in library vector: its graph is (direction, strength, is it the control)."""

    def __init__(self, direction: int, is_control: bool = False) -> None:
        self.direction, self.is_control = direction, is_control
        self.recommended_scale, self.layers, self.method = 4.0, [10], "mean_diff"

    def to_graph(self, scale: float, model: object) -> tuple[int, float, bool]:
        return (self.direction, scale, self.is_control)

    def control(self, seed: int) -> _Vector:
        return _Vector(self.direction, is_control=True)


class _Graph:
    """A stand-in for LM-Steer's shipped graph (no control)."""

    def __init__(self, direction: int) -> None:
        self.direction, self.recommended_scale, self.method = direction, 2.0, "lm_steer"

    def to_graph(self, scale: float, model: object) -> tuple[int, float, bool]:
        return (self.direction, scale, False)


def test_sentiment_chooses_on_validation_and_reports_on_test(monkeypatch):
    """Stand-in generations: a share strength/8 of the steered texts carries the vector's
    sentiment, and from strength 6 on they repeat themselves, so the choice stops at 4; the
    test rows are generated on prompts the validation never saw."""
    from interv.bench import steering

    seen: list[tuple[list[str], object]] = []
    words = {1: "wonderful happy lovely", -1: "awful sad terrible"}

    def generate(model, prompts, graph, seed):
        seen.append((list(prompts), graph))
        if graph is None or graph[2]:
            return [f"{p} the day went by {i}" for i, p in enumerate(prompts)]
        direction, scale, _ = graph
        if scale >= 6:
            return [words[direction]] * len(prompts)
        return [
            f"{p} {words[direction] if i % 8 < scale else 'the day went by'} {i}"
            for i, p in enumerate(prompts)
        ]

    neutral = [f"prompt {i}" for i in range(300)]
    monkeypatch.setattr(steering, "sentiment_prompts", lambda kind, n: neutral[:n])
    monkeypatch.setattr(steering, "_generate", generate)
    monkeypatch.setattr(
        steering, "_library_vector", lambda model, name, layer: _Vector(steering.SENTIMENT[name])
    )
    monkeypatch.setattr(steering, "SteeringVector", _Vector)
    monkeypatch.setattr(steering, "load", lambda name: _Graph(steering.OTHERS[name]))
    out = steering.sentiment(None, 40, 0, None, None)
    pos, neg, lm_steer = (
        out[k] for k in ("sentiment_positive", "sentiment_negative", "sst2_label")
    )
    assert pos["strength"] == 4.0 and neg["strength"] == 4.0 and lm_steer["strength"] == 4.0
    assert "control" in pos and "control" not in lm_steer and lm_steer["recommended_scale"] == 2.0
    assert set(pos["validation"]) == {str(s) for s in steering.STRENGTHS}
    assert pos["shift_points"] > 30 and neg["shift_points"] == 0.0
    assert neg["vader_negative_share"] > 0.3 and pos["recommended_scale"] == 4.0
    validation = {p for prompts, _ in seen[:1] for p in prompts}
    test = {p for prompts, _ in seen[1:2] for p in prompts}
    assert validation == set(neutral[100:130]) and test == set(neutral[200:240])
    assert out["n_prompts"] == 40 and out["split"] == {"validation": [100, 130], "test": [200, 240]}
    assert steering.sentiment(None, 40, 0, None, 2.0)["sentiment_negative"]["validation"] == {}
