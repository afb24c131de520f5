"""EasyEdit-style metrics for edit requests, computed in batches.

Two protocols, both giving EasyEdit's per-request dicts:

* ``evaluate`` — teacher-forced token accuracy, EasyEdit's default (see ``interv.eval.tokens``):
  ``{"rewrite_acc": [..], "rephrase_acc": [..], "locality": {...}, "portability":
  {"<name>_acc": [..]}}`` and, with ``test_generation=True``, ``"fluency": {"ngram_entropy": x}``
  (see ``interv.eval.fluency``).
* ``evaluate_generation`` — answers by open generation (EasyEdit's ``LLM-judge`` protocol
  without the judge, see ``interv.eval.generation``): ``"rewrite_acc"`` plus
  ``"rewrite_gen_content"`` (the answers), the same for rephrase, locality and portability.

Locality follows EasyEdit exactly: ``pre = evaluate(model, requests)`` records, per locality
set, the predicted answer tokens under ``"<name>_output"`` (generations under
``"<name>_gen_content"``); ``post = evaluate(model, requests, reference=pre)`` records them
again and adds ``"<name>_acc"``: per probe, the fraction of tokens unchanged from ``pre``
(1.0 or 0.0 for identical generations). Whether the locality answers are right does not
matter; only change counts.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import torch

from ..adapters import HookedModel
from ..errors import ConfigError
from ..requests import EditRequest
from .fluency import fluency
from .generation import answer_matches, generate_answers
from .tokens import answer_ids, predicted_answer_tokens, unchanged_fraction

Result = dict[str, Any]


def evaluate(
    model: HookedModel,
    requests: Sequence[EditRequest],
    reference: Sequence[Result] | None = None,
    *,
    batch_size: int = 16,
    test_generation: bool = False,
    seed: int = 0,
) -> list[Result]:
    """Teacher-forced metrics per request; pass the pre-edit results as ``reference`` after an
    edit."""
    _check_reference(requests, reference)
    items = _items(requests)  # one batched teacher-forced pass over every (prompt, answer) pair
    predicted = predicted_answer_tokens(
        model, [x[3] for x in items], [x[4] for x in items], batch_size
    )
    results: list[Result] = [{"locality": {}, "portability": {}} for _ in requests]
    for (i, section, name, _, answer), tokens in zip(items, predicted, strict=True):
        where = results[i][section] if section else results[i]
        if section == "locality":
            where.setdefault(f"{name}_output", []).append(tokens.tolist())
        else:
            target = torch.tensor(answer_ids(model, answer))
            where.setdefault(f"{name}_acc", []).append(float((tokens == target).float().mean()))
    if reference is not None:
        for i, result in enumerate(results):
            _token_locality(result["locality"], reference[i]["locality"])
    if test_generation:
        prompts = [r.prompt for r in requests]
        for result, value in zip(
            results, fluency(model, prompts, seed=seed, batch_size=batch_size), strict=True
        ):
            result["fluency"] = {"ngram_entropy": value}
    return results


def evaluate_generation(
    model: HookedModel,
    requests: Sequence[EditRequest],
    reference: Sequence[Result] | None = None,
    *,
    match: str = "exact",
    max_new_tokens: int = 32,
    chat_template: bool | None = None,
    batch_size: int = 16,
) -> list[Result]:
    """Open-generation metrics per request (greedy answers, string match, unchanged generations)."""
    _check_reference(requests, reference)
    answer_matches("", "", match)  # validate `match` before generating anything
    items = _items(requests)
    answers = generate_answers(
        model,
        [x[3] for x in items],
        max_new_tokens=max_new_tokens,
        chat_template=chat_template,
        batch_size=batch_size,
    )
    results: list[Result] = [{"locality": {}, "portability": {}} for _ in requests]
    for (i, section, name, _, target), answer in zip(items, answers, strict=True):
        where = results[i][section] if section else results[i]
        where.setdefault(f"{name}_gen_content", []).append(answer)
        if section != "locality":
            where.setdefault(f"{name}_acc", []).append(float(answer_matches(answer, target, match)))
    if reference is not None:
        for i, result in enumerate(results):
            for key, texts in result["locality"].copy().items():
                before = reference[i]["locality"][key]
                name = key.removesuffix("_gen_content")
                result["locality"][f"{name}_acc"] = [
                    float(a == b) for a, b in zip(before, texts, strict=True)
                ]
    return results


def summarize(results: Sequence[Result]) -> dict[str, Any]:
    """Means over requests: rewrite_acc, rephrase_acc, locality, portability, fluency (where
    present).

    ``locality`` and ``portability`` average every ``*_acc`` list of their section (per request
    and probe set); ``locality_by_key`` / ``portability_by_key`` keep EasyEdit's per-key means.
    """

    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 4) if values else None

    summary: dict[str, Any] = {
        "rewrite_acc": mean(
            [statistics.fmean(r["rewrite_acc"]) for r in results if r.get("rewrite_acc")]
        ),
        "rephrase_acc": mean(
            [statistics.fmean(r["rephrase_acc"]) for r in results if r.get("rephrase_acc")]
        ),
    }
    for section in ("locality", "portability"):
        per_key: dict[str, list[float]] = {}
        for r in results:
            for key, values in r.get(section, {}).items():
                if key.endswith("_acc") and values:
                    per_key.setdefault(key, []).append(statistics.fmean(values))
        summary[section] = mean([v for values in per_key.values() for v in values])
        if per_key:
            summary[f"{section}_by_key"] = {k: mean(v) for k, v in sorted(per_key.items())}
    summary["fluency"] = mean([r["fluency"]["ngram_entropy"] for r in results if "fluency" in r])
    return {k: v for k, v in summary.items() if v is not None}


def _items(requests: Sequence[EditRequest]) -> list[tuple[int, str, str, str, str]]:
    """(request index, section, name, prompt, answer) for every probe of every request."""
    items = [(i, "", "rewrite", r.prompt, r.target_new) for i, r in enumerate(requests)]
    items += [
        (i, "", "rephrase", p, r.target_new)
        for i, r in enumerate(requests)
        for p in r.rephrase_prompts
    ]
    items += [(i, "locality", n, p, a) for i, n, p, a in _probes(requests, "locality")]
    items += [(i, "portability", n, p, a) for i, n, p, a in _probes(requests, "portability")]
    return items


def _probes(requests: Sequence[EditRequest], section: str) -> list[tuple[int, str, str, str]]:
    return [
        (i, name, prompt, answer)
        for i, r in enumerate(requests)
        for name, pairs in getattr(r, section).items()
        for prompt, answer in pairs
    ]


def _token_locality(current: Result, before: Result) -> None:
    for key, tokens in list(current.items()):
        if key.endswith("_output"):
            base = [torch.tensor(t) for t in before[key]]
            after = [torch.tensor(t) for t in tokens]
            current[f"{key.removesuffix('_output')}_acc"] = unchanged_fraction(base, after)


def _check_reference(requests: Sequence[EditRequest], reference: Sequence[Result] | None) -> None:
    if reference is not None and len(reference) != len(requests):
        raise ConfigError(
            f"reference has {len(reference)} results for {len(requests)} requests; pass the "
            "pre-edit results of the same requests."
        )
