"""EasyEdit's ``edit()`` arguments -> EasyEdit request dicts -> interv ``EditRequest``s.

The dicts are what EasyEdit reports as ``requested_rewrite``: ``prompt``, ``target_new``,
``ground_truth``, ``portability`` and ``locality`` (``{name: {"prompt", "ground_truth"}}``),
plus ``subject``, ``rephrase_prompt`` and ``target_neg`` when given. Every length mismatch
or missing value is an error naming the argument, raised before anything is edited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..data.editing import first_answer
from ..edit.base import EditRequest, RequestError

Probes = dict[str, dict[str, Any]]


def prepare_requests(
    prompts: str | Sequence[str],
    target_new: str | Sequence[str],
    ground_truth: str | Sequence[str | None] | None = None,
    target_neg: str | Sequence[str] | None = None,
    rephrase_prompts: str | Sequence[Any] | None = None,
    locality_inputs: Probes | None = None,
    portability_inputs: Probes | None = None,
    subject: str | Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """EasyEdit's ``_prepare_requests``, with errors instead of asserts."""
    prompts = _listed("prompts", prompts, None)
    n = len(prompts)
    targets = _listed("target_new", target_new, n)
    truths = [None] * n if ground_truth is None else _listed("ground_truth", ground_truth, n)
    requests: list[dict[str, Any]] = [
        {"prompt": p, "target_new": t, "ground_truth": g, "portability": {}, "locality": {}}
        for p, t, g in zip(prompts, targets, truths, strict=True)
    ]
    for name, values in (
        ("target_neg", target_neg),
        ("subject", subject),
        ("rephrase_prompt", rephrase_prompts),
    ):
        if values is not None:
            argument = "rephrase_prompts" if name == "rephrase_prompt" else name
            for request, value in zip(requests, _listed(argument, values, n), strict=True):
                request[name] = value
    for section, inputs in (("locality", locality_inputs), ("portability", portability_inputs)):
        for key, probe in (inputs or {}).items():
            argument = f"{section}_inputs[{key!r}]"
            if not isinstance(probe, dict) or "prompt" not in probe or "ground_truth" not in probe:
                raise RequestError(
                    f"{argument} must be a dict with 'prompt' and 'ground_truth' lists."
                )
            probe_prompts = _listed(f"{argument}['prompt']", probe["prompt"], n)
            answers = _listed(f"{argument}['ground_truth']", probe["ground_truth"], n)
            for request, p, a in zip(requests, probe_prompts, answers, strict=True):
                if p is not None:
                    request[section][key] = {"prompt": p, "ground_truth": a}
    return requests


def to_edit_request(request: dict[str, Any], index: int) -> EditRequest:
    """An EasyEdit request dict as an interv ``EditRequest`` (errors name the request index)."""
    try:
        rephrase = request.get("rephrase_prompt")
        return EditRequest(
            prompt=request["prompt"],  # EditRequest refuses a non-string or blank one
            target_new=request["target_new"],
            subject=request.get("subject"),
            ground_truth=None
            if request.get("ground_truth") is None
            else first_answer(request["ground_truth"]),
            rephrase_prompts=[]
            if rephrase is None
            else [rephrase]
            if isinstance(rephrase, str)
            else list(rephrase),
            locality=_pairs(request.get("locality")),
            portability=_pairs(request.get("portability")),
            case_id=index,
        )
    except (RequestError, KeyError, TypeError) as err:
        detail = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise RequestError(f"Request {index} ({request.get('prompt')!r}): {detail}") from None


def _pairs(sets: Probes | None) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for key, probe in (sets or {}).items():
        prompts, answers = probe["prompt"], probe["ground_truth"]
        if isinstance(prompts, str):  # one probe; its answer may be an alias list
            pairs = [(prompts, first_answer(answers))]
        else:
            if isinstance(answers, str) or len(answers) != len(prompts):
                raise RequestError(
                    f"{key}: {len(prompts)} prompts need as many ground_truth entries"
                )
            pairs = [(p, first_answer(a)) for p, a in zip(prompts, answers, strict=True)]
        out[key] = [(p, a) for p, a in pairs if a.strip()]
    return {k: v for k, v in out.items() if v}


def _listed(argument: str, values: Any, n: int | None) -> list[Any]:
    if isinstance(values, str) or values is None:
        values = [values]
    values = list(values)
    if n is None:
        if not values:
            raise RequestError(f"{argument} is empty; pass at least one prompt.")
        return values
    if len(values) != n:
        raise RequestError(
            f"{argument} has {len(values)} entries for {n} prompts; give one per prompt."
        )
    return values
