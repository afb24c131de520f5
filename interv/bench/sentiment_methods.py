"""Sentiment steering by method, strengths chosen on a validation split: the ``methods`` part
of ``interv bench steering``.

Rows: no steering, the prompt baseline (a positive instruction before each input), the shipped
``sentiment_positive`` mean-difference vector, ``vector_prompt`` read off the same instruction
on 40 neutral training prompts, and an ``sft`` vector trained on 40 positive ConvSent
sentences. For each vector a strength is chosen among ``STRENGTHS`` on 30 validation prompts
(the highest VADER-positive share whose distinct-2 stays at least ``FLUENCY_FLOOR`` of
unsteered), then every row is scored on the test prompts, which neither training nor the
choice saw: neutral DExperts prompts 0-39 train, 100-129 validate, 200 onwards test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..data.steering import convsent_pairs, sentiment_prompts
from ..eval.steering import text_metrics
from ..steer.library import load
from ..steer.sft import SFT, SFTHParams
from ..steer.vector_prompt import VectorPrompt, VectorPromptHParams

PROMPT = "Write a very positive, happy and cheerful text:"
LAYER = 10
STRENGTHS = {"vector_prompt": (1.0, 2.0, 4.0), "sft": (0.5, 1.0, 2.0), "mean_diff": (3.0, 6.0)}
FLUENCY_FLOOR = 0.9  # distinct-2 relative to unsteered
METRICS = ["sentiment", "distinct"]
VALIDATION, TEST_START = (100, 130), 200  # neutral prompts validated on / tested from


def choose_strength(
    tried: Mapping[float, Mapping[str, Any]],
    plain: Mapping[str, Any],
    floor: float,
    score: Callable[[Mapping[str, Any]], float],
) -> float:
    """The tried strength with the highest ``score`` among those whose distinct-2 stays at least
    ``floor`` of ``plain``'s (among all of them when none does).

    Example:
        >>> tried = {2.0: {"distinct_2": 0.9, "s": 0.6}, 4.0: {"distinct_2": 0.5, "s": 0.9}}
        >>> choose_strength(tried, {"distinct_2": 0.9}, 0.8, lambda r: r["s"])
        2.0
    """
    fluent = [s for s, r in tried.items() if r["distinct_2"] >= floor * plain["distinct_2"]]
    return max(fluent or tried, key=lambda s: score(tried[s]))


def methods(model: Any, n_test: int, seed: int, generate: Callable[..., list[str]]) -> dict:
    """The table described in the module docstring; ``generate(model, prompts, graph, seed)``."""
    neutral = sentiment_prompts("neutral", TEST_START + n_test)
    train, val, test = neutral[:40], neutral[slice(*VALIDATION)], neutral[TEST_START:]
    vectors = {
        "mean_diff": load("sentiment_positive"),
        "vector_prompt": VectorPrompt(VectorPromptHParams(layers=[LAYER], prompt=PROMPT)).fit(
            model, train
        ),
        "sft": SFT(SFTHParams(layers=[LAYER], seed=seed)).fit(
            model,
            [
                {"input": p.prompt or "Say something.", "output": p.positive}
                for p in convsent_pairs(40)
            ],
        ),
    }

    def score(prompts: list[str], graph: Any = None, prefix: str = "") -> dict[str, float]:
        texts = [f"{prefix} {p}" for p in prompts] if prefix else prompts
        result = text_metrics(generate(model, texts, graph, seed), METRICS)
        return {k: round(result[k], 4) for k in ("vader_positive_share", "distinct_2")}

    plain_val, plain = score(val), score(test)
    rows: dict[str, Any] = {"unsteered": plain, "prompt": score(test, prefix=PROMPT)}
    for name, vector in vectors.items():
        tried = {s: score(val, vector.to_graph(scale=s, model=model)) for s in STRENGTHS[name]}
        best = choose_strength(tried, plain_val, FLUENCY_FLOOR, lambda r: r["vader_positive_share"])
        rows[name] = {**score(test, vector.to_graph(scale=best, model=model)), "strength": best}
        rows[name]["validation"] = {str(s): r for s, r in tried.items()}
    for row in rows.values():
        row["distinct_2_ratio"] = round(row["distinct_2"] / plain["distinct_2"], 3)
    return {
        "n_test": len(test),
        "prompt": PROMPT,
        "layer": LAYER,
        "rows": rows,
        "sft_losses": vectors["sft"].meta["losses"],
    }
