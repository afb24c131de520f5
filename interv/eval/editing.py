"""EasyEdit-style metrics for edit requests, computed in batches.

``pre = evaluate(model, requests)`` before the edit and ``post = evaluate(model, requests,
reference=pre)`` after it give, per request, EasyEdit's dicts:
``{"rewrite_acc": [..], "rephrase_acc": [..], "locality": {"<name>_acc": [..]},
"portability": {"<name>_acc": [..]}}``. Locality is the fraction of predicted tokens unchanged
from ``reference`` (so it is 1.0 by definition in ``pre``); see ``interv.eval.tokens``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ..adapters import HookedModel
from ..edit.base import EditRequest
from .tokens import predicted_answer_tokens, token_accuracy, unchanged_fraction


def evaluate(
    model: HookedModel,
    requests: Sequence[EditRequest],
    reference: Sequence[dict[str, Any]] | None = None,
    batch_size: int = 16,
) -> list[dict[str, Any]]:
    """Per-request metric dicts (EasyEdit's layout); locality tokens kept under ``_locality_tokens``."""
    rewrite = token_accuracy(model, [r.prompt for r in requests], [r.target_new for r in requests], batch_size)
    reph_p = [(i, p) for i, r in enumerate(requests) for p in r.rephrase_prompts]
    reph = token_accuracy(model, [p for _, p in reph_p], [requests[i].target_new for i, _ in reph_p], batch_size)
    results: list[dict[str, Any]] = [{"rewrite_acc": [score]} for score in rewrite]
    for (i, _), score in zip(reph_p, reph):
        results[i].setdefault("rephrase_acc", []).append(score)
    _probe_sets(model, requests, results, batch_size, reference)
    return results


def _probe_sets(model, requests, results, batch_size, reference) -> None:
    loc_items = [(i, name, p, a) for i, r in enumerate(requests) for name, pairs in r.locality.items() for p, a in pairs]
    port_items = [(i, name, p, a) for i, r in enumerate(requests) for name, pairs in r.portability.items() for p, a in pairs]
    tokens = predicted_answer_tokens(model, [x[2] for x in loc_items], [x[3] for x in loc_items], batch_size)
    for result in results:
        result["locality"], result["portability"], result["_locality_tokens"] = {}, {}, {}
    for (i, name, _, _), tok in zip(loc_items, tokens):
        results[i]["_locality_tokens"].setdefault(name, []).append(tok)
    for i, result in enumerate(results):
        for name, toks in result["_locality_tokens"].items():
            base = reference[i]["_locality_tokens"][name] if reference is not None else toks
            result["locality"][f"{name}_acc"] = unchanged_fraction(base, toks)
    scores = token_accuracy(model, [x[2] for x in port_items], [x[3] for x in port_items], batch_size)
    for (i, name, _, _), score in zip(port_items, scores):
        results[i]["portability"].setdefault(f"{name}_acc", []).append(score)


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means over requests: rewrite_acc, rephrase_acc, locality, portability (where present)."""
    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 4) if values else None

    rewrite = [statistics.fmean(r["rewrite_acc"]) for r in results]
    rephrase = [statistics.fmean(r["rephrase_acc"]) for r in results if r.get("rephrase_acc")]
    locality = [statistics.fmean(v) for r in results for v in r["locality"].values()]
    portability = [statistics.fmean(v) for r in results for v in r["portability"].values()]
    summary = {"rewrite_acc": mean(rewrite), "rephrase_acc": mean(rephrase),
               "locality": mean(locality), "portability": mean(portability)}
    return {k: v for k, v in summary.items() if v is not None}
