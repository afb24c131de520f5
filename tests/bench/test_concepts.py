"""The concept benchmark's machinery: many steering arms share a batch without leaking into
each other's rows, strengths are chosen on validation by the judge, the table averages."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from interv.bench.concepts import Arm, Settings, calibrate, generate_arms, table
from interv.data.concepts import Concept
from interv.eval.judge import Judge, Judgement
from interv.steer.vector import SteeringVector

HOOK = "blocks.1.hook_resid_post"


def _vector(model, seed: int) -> SteeringVector:
    gen = torch.Generator().manual_seed(seed)
    return SteeringVector({HOOK: torch.randn(model.cfg.d_model, generator=gen)}, method="test")


def test_arms_in_one_batch_match_each_arm_run_alone(tiny_models):
    model = tiny_models("llama")
    a, b = _vector(model, 0), _vector(model, 1)
    arms = [Arm("plain"), Arm("a", a, 3.0), Arm("b", b, -2.0), Arm("p", prefix="Be brief.")]
    prompts = ["hello", "a cat sat"]
    together = generate_arms(model, arms, prompts, Settings(max_new_tokens=6, batch_size=5))
    for arm in arms:
        graph = arm.vector.to_graph(scale=arm.scale) if arm.vector is not None else None
        texts = [f"{arm.prefix}\n\n{p}" if arm.prefix else p for p in prompts]
        alone = model.generate(texts, graph=graph, chat_template=True, max_new_tokens=6)
        assert together[arm.label] == alone, arm.label
    assert together["a"] != together["plain"]  # the vector did steer its rows


class _LengthJudge(Judge):
    """Concept score = 2 if the answer is longer than 10 characters; the rest fixed."""

    name = "length"

    def judge(
        self, instructions: Sequence[str], responses: Sequence[str], concept: str
    ) -> list[Judgement]:
        return [Judgement(2.0 if len(r) > 10 else 0.5, 1.0, 1.0) for r in responses]


def test_calibration_picks_the_best_validation_strength(tiny_models, monkeypatch):
    model = tiny_models("llama")
    vector = _vector(model, 0)
    settings = Settings(strengths=(0.5, 1.0, 2.0), val=["x", "y"], max_new_tokens=4)

    # answers get long only at the largest strength (scale = k * norm / |v|)
    def fake(model, arms, instructions, settings):
        return {arm.label: ["long answer here" if arm.scale > 1.5 else "no"] * 2 for arm in arms}

    monkeypatch.setattr("interv.bench.concepts.generate_arms", fake)
    norm = float(vector.directions[HOOK].norm())
    chosen = calibrate(model, _LengthJudge(), Concept(0, "c", ()), {"m": vector}, norm, settings)
    assert chosen["m"]["strength"] == 2.0
    assert chosen["m"]["scale"] == pytest.approx(2.0)
    # harmonic mean of (2, 1, 1) = 1.2 and of (0.5, 1, 1) = 0.75
    assert chosen["m"]["tried"] == pytest.approx({0.5: 0.75, 1.0: 0.75, 2.0: 1.2})


def test_table_averages_over_concepts():
    rows = [
        {"concept": 1.0, "instruction": 2.0, "fluency": 1.0, "harmonic_mean": 1.2},
        {"concept": 0.0, "instruction": 1.0, "fluency": 1.0, "harmonic_mean": 0.0},
    ]
    concepts = [
        {"rows": {"m": rows[i], "m:control": rows[1 - i]}, "calibration": {"m": {"strength": s}}}
        for i, s in enumerate((0.5, 1.0))
    ]
    out = table(concepts)
    assert out["m"] == {
        "concept": 0.5,
        "instruction": 1.5,
        "fluency": 1.0,
        "harmonic_mean": 0.6,
        "strength": 0.75,
    }
    assert "strength" not in out["m:control"]
