"""Strength calibration: the sweep, the fluency floor, the chosen setting and the plot."""

from __future__ import annotations

import pytest
import torch

from interv.record import ModelRecord
from interv.steer.calibrate import calibrate
from interv.steer.vector import SteeringVector

PROMPTS = ["hi", "a cat", "the sea"]


def _vector(model) -> SteeringVector:
    g = torch.Generator().manual_seed(0)
    dirs = {
        f"blocks.{i}.hook_resid_post": torch.randn(model.cfg.d_model, generator=g) for i in (0, 1)
    }
    return SteeringVector(dirs, method="caa", model=ModelRecord.of(model))


def test_sweep_picks_the_strongest_allowed_setting_and_plots(tiny_models, tmp_path):
    model = tiny_models("llama")

    def strength(texts, graph):  # the metric: how hard the graph pushes
        return sum(abs(n.scale) for n in graph.nodes)

    def floor_at_four(texts, graph):  # fluency falls past scale 4
        return 1.0 if strength(texts, graph) <= 4 else 0.1

    result = calibrate(
        model,
        _vector(model),
        strength,
        0.8,
        prompts=PROMPTS,
        scales=[1, 4, 8],
        fluency=floor_at_four,
        generation={"max_new_tokens": 3},
    )
    assert [(p.layer, p.scale) for p in result.points] == [
        (0, 1),
        (0, 4),
        (0, 8),
        (1, 1),
        (1, 4),
        (1, 8),
    ]
    assert [p.allowed for p in result.points] == [True, True, False] * 2
    assert result.best is not None and result.best.scale == 4.0
    assert result.baseline_metric == 0.0 and result.to_dict()["best"]["scale"] == 4.0
    png = result.plot(tmp_path / "sweep.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_metric_and_errors(tiny_models):
    model = tiny_models("llama")
    result = calibrate(
        model,
        _vector(model),
        "distinct_2",
        0.5,
        prompts=PROMPTS,
        scales=[2],
        layers=[1],
        generation={"max_new_tokens": 3},
    )
    assert len(result.points) == 1 and 0 <= result.points[0].metric <= 1
    with pytest.raises(ValueError, match="fluency_floor must be in"):
        calibrate(model, _vector(model), "distinct_2", 1.5, prompts=PROMPTS)
    with pytest.raises(ValueError, match="Unknown metric 'happiness'"):
        calibrate(
            model,
            _vector(model),
            "happiness",
            0.8,
            prompts=PROMPTS,
            scales=[1],
            generation={"max_new_tokens": 2},
        )
    with pytest.raises(ValueError, match="layer 9 is out of range"):
        calibrate(
            model,
            SteeringVector({"blocks.9.hook_resid_post": torch.ones(32)}),
            "distinct_2",
            prompts=PROMPTS,
        )
