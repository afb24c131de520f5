"""Strength calibration: sweep scale and layer, keep fluency within a floor, pick the best.

For every layer of the vector and every scale, the vector (at that one layer) steers generation
on a few prompts; ``metric`` scores the effect and a fluency measure (distinct-2 by default, or
n-gram-entropy ``fluency``, or ``perplexity`` under the unsteered model) guards the side effect.
A setting is allowed when its fluency stays within ``fluency_floor`` of the unsteered run
(``distinct_2 >= floor * unsteered``; for perplexity ``unsteered / ppl >= floor``). Among allowed
settings the one with the best metric wins (ties: the smaller scale). ``result.plot(path)``
draws the sweep.

Example:
    >>> result = calibrate(model, vector, "vader_positive_share", fluency_floor=0.8,
    ...                    prompts=prompts, scales=[2, 4, 8])  # doctest: +SKIP
    >>> result.best, result.plot("sweep.png")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..adapters import HookedModel
from ..errors import ConfigError
from ..eval.steering import perplexity
from ..graph import Graph
from .apply import Steering
from .prompt import score_texts
from .vector import SteeringVector

log = logging.getLogger(__name__)
Metric = Callable[[list[str], Graph], float]  # (generated texts, the graph) -> score
FLUENCY = ("distinct_2", "fluency", "perplexity")


@dataclass(frozen=True)
class Point:
    layer: int | None
    scale: float
    metric: float
    fluency: float
    allowed: bool


@dataclass
class Calibration:
    """The sweep, the unsteered baseline and the chosen setting (``best``, None if none passed)."""

    points: list[Point]
    baseline_metric: float
    baseline_fluency: float
    fluency_floor: float
    fluency_name: str
    metric_name: str
    goal: str
    best: Point | None = None
    samples: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric_name,
            "goal": self.goal,
            "fluency": self.fluency_name,
            "fluency_floor": self.fluency_floor,
            "baseline_metric": self.baseline_metric,
            "baseline_fluency": self.baseline_fluency,
            "best": None if self.best is None else self.best.__dict__,
            "points": [p.__dict__ for p in self.points],
        }

    def plot(self, path: str | Path) -> Path:
        """Metric and fluency against scale, one line per layer (matplotlib PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        for layer in sorted({p.layer for p in self.points}, key=lambda v: -1 if v is None else v):
            mine = sorted((p for p in self.points if p.layer == layer), key=lambda p: p.scale)
            label = f"layer {layer}"
            left.plot([p.scale for p in mine], [p.metric for p in mine], marker="o", label=label)
            right.plot([p.scale for p in mine], [p.fluency for p in mine], marker="o", label=label)
        left.axhline(self.baseline_metric, color="grey", linestyle=":", label="unsteered")
        limit = self._limit()
        right.axhline(limit, color="red", linestyle="--", label=f"floor ({self.fluency_floor:g})")
        if self.best is not None:
            left.plot(
                [self.best.scale], [self.best.metric], marker="*", markersize=16, color="black"
            )
        left.set(xlabel="scale", ylabel=self.metric_name, title="effect")
        right.set(xlabel="scale", ylabel=self.fluency_name, title="fluency")
        left.legend(fontsize=7)
        right.legend(fontsize=7)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def _limit(self) -> float:
        if self.fluency_name == "perplexity":
            return self.baseline_fluency / self.fluency_floor
        return self.baseline_fluency * self.fluency_floor


def _fluency(
    name: str | Metric, model: HookedModel, prompts: Sequence[str], texts: list[str], graph: Graph
) -> float:
    if callable(name):
        return float(name(texts, graph))
    if name == "perplexity":
        values = [p for p in perplexity(model, prompts, texts) if math.isfinite(p)]
        return sum(values) / len(values) if values else float("inf")
    return score_texts(texts, name)


def _within(value: float, baseline: float, floor: float, name: str) -> bool:
    if name == "perplexity":
        return value > 0 and baseline / value >= floor
    return value >= floor * baseline


def _metric_fn(metric: str | Metric) -> tuple[Metric, str]:
    if callable(metric):
        return metric, getattr(metric, "__name__", "metric")
    return (lambda texts, graph: score_texts(texts, metric)), metric


def calibrate(
    model: HookedModel,
    vector: SteeringVector,
    metric: str | Metric,
    fluency_floor: float = 0.8,
    *,
    prompts: Sequence[str],
    scales: Sequence[float] = (1.0, 2.0, 4.0, 8.0),
    layers: Sequence[int] | None = None,
    goal: str = "max",
    fluency: str | Metric = "distinct_2",
    positions: str = "all",
    generation: dict[str, Any] | None = None,
) -> Calibration:
    """Sweep ``scales`` x ``layers`` (default: the vector's layers); see the module docstring."""
    _check_settings(fluency_floor, fluency, goal, prompts, scales)
    vector.check(model)
    score, name = _metric_fn(metric)
    gen = {"max_new_tokens": 30, **(generation or {})}
    sweep: list[int | None] = list(layers) if layers is not None else sorted(set(vector.layers))
    plain = model.generate(list(prompts), **gen)
    fluency_name = fluency if isinstance(fluency, str) else getattr(fluency, "__name__", "fluency")
    baseline = _fluency(fluency, model, prompts, plain, Graph())
    result = Calibration(
        [],
        score(plain, Graph()),
        baseline,
        fluency_floor,
        fluency_name,
        name,
        goal,
        samples={"unsteered": plain[:3]},
    )
    for layer in sweep or [None]:
        single = vector.at_layers([layer]) if layer is not None else vector
        for scale in scales:
            graph = single.to_graph(scale=scale, positions=positions)
            texts = Steering(graph).generate(model, list(prompts), **gen)
            value, flu = score(texts, graph), _fluency(fluency, model, prompts, texts, graph)
            allowed = _within(flu, result.baseline_fluency, fluency_floor, fluency_name)
            result.points.append(Point(layer, float(scale), value, flu, allowed))
            result.samples[f"L{layer} x{scale:g}"] = texts[:3]
            log.info(
                "layer %s scale %g: %s=%.3f %s=%.3f%s",
                layer,
                scale,
                name,
                value,
                fluency_name,
                flu,
                "" if allowed else " (below the floor)",
            )
    sign = 1.0 if goal == "max" else -1.0
    allowed = [p for p in result.points if p.allowed]
    if allowed:
        result.best = max(allowed, key=lambda p: (sign * p.metric, -abs(p.scale)))
    return result


def _check_settings(
    fluency_floor: float,
    fluency: str | Metric,
    goal: str,
    prompts: Sequence[str],
    scales: Sequence[float],
) -> None:
    if not 0 < fluency_floor <= 1:
        raise ConfigError(f"fluency_floor must be in (0, 1], got {fluency_floor}.")
    if not callable(fluency) and fluency not in FLUENCY:
        raise ConfigError(f"fluency must be one of {', '.join(FLUENCY)}, not {fluency!r}.")
    if goal not in ("max", "min"):
        raise ConfigError(f"goal must be 'max' or 'min', not {goal!r}.")
    if not prompts or not scales:
        raise ConfigError("Calibration needs prompts and at least one scale.")
