"""Knowledge editing on CounterFact: quality (EasyEdit metrics) and seconds per edit.

Sections (``--methods``, comma-separated): ``rome`` (independent single edits, each scored
with its own patch alone; computed ``v_chunk_size`` at a time as ``interv edit`` does, and the
first ``--alone`` also one per call), ``memit``, ``alphaedit``, ``emmet`` (one batch of
``--batch-n`` records), ``sequential`` (``--seq-n`` AlphaEdit edits applied one after another,
``--seq-batch`` at a time, with the hyperparameters of
``recipes/edit/alphaedit-sequential-smollm2.yaml``) and ``stats`` (computing one layer's
statistics from ``--stats-tokens`` tokens into a fresh cache). Batch locality is measured on
neighbourhood prompts that mention no edited subject, and also on the prompts of CounterFact
records outside the batch (``locality_other_facts``). At the end every patch is reverted and
the weights' hash is compared with the original.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..adapters import HookedModel, names
from ..data.editing import counterfact, zsre
from ..edit import EDIT_METHODS, EditRequest
from ..edit.runner import run_edits
from ..errors import ConfigError
from ..eval.editing import evaluate, summarize
from ..files import write_json
from ..loading import load
from ..patch import PatchSet
from ..recipes import recipe_path
from ..stats import StatsCache, layer_stats

log = logging.getLogger(__name__)

# long sequential runs clamp each value lower (see the recipe)
SEQUENTIAL_RECIPE = "edit/alphaedit-sequential-smollm2"
SECTIONS = ("stats", "rome", "memit", "alphaedit", "emmet", "sequential", "mend", "serac")
TARGETS = {
    "rome": {"rewrite_acc": 0.95, "rephrase_acc": 0.7, "locality": 0.95},
    "memit": {"rewrite_acc": 0.9, "locality": 0.9},
    "alphaedit": {"rewrite_acc": 0.9, "locality": 0.9},
    "sequential": {"rewrite_first": 0.8, "locality": 0.85},
    "mend": {"rewrite_acc": 0.9, "locality": 0.9},
    "serac": {"rewrite_acc": 0.9, "locality": 0.95},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--methods", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}"
    )
    parser.add_argument("--n", type=int, default=50, help="ROME single edits")
    parser.add_argument(
        "--batch-n", type=int, default=100, help="records per MEMIT/AlphaEdit/EMMET batch"
    )
    parser.add_argument(
        "--alone",
        type=int,
        default=10,
        help="ROME records also timed one edit per call (single-edit latency)",
    )
    parser.add_argument("--seq-n", type=int, default=200, help="sequential AlphaEdit edits")
    parser.add_argument("--seq-batch", type=int, default=1, help="edits per sequential step")
    parser.add_argument(
        "--seq-first", type=int, default=50, help="rewrite is reported on the first N"
    )
    for name in ("mend", "serac"):
        parser.add_argument(
            f"--{name}-n",
            type=int,
            default=100,
            help=f"held-out ZsRE records {name.upper()} edits one by one",
        )
    parser.add_argument("--stats-tokens", type=int, default=100_000)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="METHOD.KEY=VALUE",
        help="override a hyperparameter, e.g. rome.layers=[5] (repeatable)",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:

    if args.threads:
        torch.set_num_threads(args.threads)
    sections = [s.strip() for s in args.methods.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"Unknown bench edit section(s) {unknown}; choose from {', '.join(SECTIONS)}."
        )
    model = load(args.model, device=args.device, dtype=args.dtype)
    original = weights_hash(model)
    report: dict[str, Any] = {
        "model": model.cfg.name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    runners = {
        "stats": _stats,
        "rome": _rome,
        "memit": _batch,
        "alphaedit": _batch,
        "emmet": _batch,
        "sequential": _sequential,
        "mend": _learned,
        "serac": _learned,
    }
    for section in sections:
        log.info("bench edit: %s", section)
        report[section] = runners[section](model, args, section)
        _check_targets(report[section], section)
        _write_partial(getattr(args, "json", None), report)
        log.info(
            "bench edit: %s done: %s",
            section,
            {k: report[section].get(k) for k in ("post", "seconds_per_edit")},
        )
    report["weights_restored"] = weights_hash(model) == original
    return report


def _write_partial(path: Path | None, report: dict[str, Any]) -> None:
    """Keep the finished sections on disk (marked partial) so a stopped run is not lost; the
    CLI overwrites the file with the whole report at the end."""
    if path is not None:
        write_json(path, {**report, "partial": True})


def make_method(name: str, args: argparse.Namespace, recipe: str | None = None) -> Any:
    """The method with its default hyperparameters (or a shipped ``recipe``'s) and the ``--set``
    overrides for it."""
    import yaml

    cls = EDIT_METHODS.get(name)
    base = cls.hparams_class()
    if recipe is not None:
        base = cls.hparams_class.from_yaml(recipe_path(recipe))
    changes = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        target, _, field = key.partition(".")
        if not sep or not field:
            raise ConfigError(f"--set {item!r}: use METHOD.KEY=VALUE, e.g. rome.layers=[5].")
        if target == name:
            changes[field] = yaml.safe_load(value)
    hparams = cls.hparams_class.from_dict({**base.to_dict(), **changes})
    return cls(hparams)


def weights_hash(model: HookedModel) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.hf_model.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_targets(result: dict[str, Any], section: str) -> None:
    targets = TARGETS.get(section)
    if not targets:
        return
    values = {k: result.get(k, result.get("post", {}).get(k)) for k in targets}
    result["targets"] = targets
    result["meets_targets"] = all(
        values[k] is not None and values[k] >= v for k, v in targets.items()
    )


def _stats(model: HookedModel, args: argparse.Namespace, section: str) -> dict[str, Any]:

    weight = names.weight("mlp.W_out", make_method("rome", args).hparams.layers[0])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        layer_stats(
            model, [weight], n_tokens=args.stats_tokens, cache=StatsCache(Path(tmp)), progress=False
        )
        seconds = time.perf_counter() - start
    return {
        "weight": weight,
        "tokens": args.stats_tokens,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(args.stats_tokens / seconds, 1),
    }


def _timed_warm(model: HookedModel, method: Any, requests: list[EditRequest]) -> float:
    """Statistics and templates are loaded before timing (a one-off per model)."""
    start = time.perf_counter()
    layers = method.resolve_layers(model, requests, getattr(method, "default_layer_count", 1))
    method.second_moment(model, layers)
    method.templates(model)
    return time.perf_counter() - start


def _rome(model: HookedModel, args: argparse.Namespace, section: str) -> dict[str, Any]:
    """Independent single edits, each scored on the model with its patch alone. They are
    computed as ``interv edit`` computes them, ``v_chunk_size`` at a time (``compute_each``:
    ``seconds_per_edit``); the first ``--alone`` are also timed one call each
    (``seconds_per_edit_alone``: the wait for a single edit)."""
    requests = counterfact(args.n)
    method = make_method("rome", args)
    warm = _timed_warm(model, method, requests)
    pre = evaluate(model, requests)
    result = run_edits(model, method, requests, evaluate, pre=pre)
    alone = []
    for request in requests[: args.alone]:
        start = time.perf_counter()
        method.compute(model, [request])
        alone.append(time.perf_counter() - start)
    return {
        "n": len(requests),
        "pre": summarize(pre),
        "post": summarize([record["post"] for record in result.records]),
        "seconds_per_edit": round(result.seconds["per_edit"], 3),
        "edits_per_call": method.independent_group,
        "seconds_per_edit_alone": round(statistics.mean(alone), 3) if alone else None,
        "seconds_per_edit_alone_median": round(statistics.median(alone), 3) if alone else None,
        "n_alone": len(alone),
        "seconds_load_stats": round(warm, 2),
        "hparams": method.hparams.to_dict(),
    }


SECONDS = {"mend": 0.2}  # per edit, after training


def _learned(model: HookedModel, args: argparse.Namespace, section: str) -> dict[str, Any]:
    """Single edits of the first ``--<section>-n`` ZsRE records (``interv train mend|serac``
    never trains on them), each scored with its edit alone, with the shipped archive unless
    ``--set <section>.archive=PATH``."""
    requests = zsre(getattr(args, f"{section}_n"))
    method = make_method(section, args)
    method.prepare(model)
    pre = evaluate(model, requests)
    result = run_edits(model, method, requests, evaluate, pre=pre)
    archive = method.archive(model)
    per_edit = result.seconds["per_edit"]
    out = {
        "n": len(requests),
        "dataset": f"zsre, records 0..{len(requests) - 1}",
        "pre": summarize(pre),
        "post": summarize([record["post"] for record in result.records]),
        "seconds_per_edit": round(per_edit, 3),
        "archive": {"trained": archive.meta.get("trained")},
        "hparams": method.hparams.to_dict(),
    }
    if section in SECONDS:
        out.update(seconds_target=SECONDS[section], meets_time_target=per_edit <= SECONDS[section])
    if section == "mend":
        out["archive"]["weights"] = archive.network.weights
    else:
        out["forward_cost"] = _routing_cost(model, method.compute(model, requests), requests)
    return out


@torch.no_grad()
def _routing_cost(model: HookedModel, memory: Any, requests: list[EditRequest]) -> dict[str, Any]:
    """Seconds of one forward of 16 prompts with a memory of every edit applied, relative to
    the same forward without it: edit prompts (routed, with their context) and their locality
    prompts (scored by the classifier, not routed). Best of 3."""
    edited = [r.prompt for r in requests[:16]]
    unrelated = [p for r in requests[:16] for pairs in r.locality.values() for p, _ in pairs][:16]

    def best(prompts: list[str]) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            model.forward(prompts)
            times.append(time.perf_counter() - start)
        return min(times)

    plain = {"edit_prompts": best(edited), "unrelated_prompts": best(unrelated or edited)}
    with memory.applied(model):
        routed = {"edit_prompts": best(edited), "unrelated_prompts": best(unrelated or edited)}
    return {
        "memory_edits": len(memory.edits),
        **{f"{k}_ratio": round(routed[k] / plain[k], 2) for k in plain},
        "seconds_plain": {k: round(v, 4) for k, v in plain.items()},
    }


def _outside_locality(requests: list[EditRequest], others: list[EditRequest]) -> list[EditRequest]:
    """Neighbourhood probes that mention no edited subject, plus the prompts of records outside
    the batch as a second probe set."""
    subjects = [r.subject for r in requests if r.subject]
    out = []
    for i, request in enumerate(requests):
        kept = {
            name: [(p, a) for p, a in pairs if not any(s in p for s in subjects)]
            for name, pairs in request.locality.items()
        }
        kept = {k: v for k, v in kept.items() if v}
        other = others[i % len(others)]
        kept["other_facts"] = [(other.prompt, other.ground_truth or other.target_new)]
        out.append(replace(request, locality=kept))
    return out


def _locality_split(results: list[dict[str, Any]]) -> dict[str, float]:
    return {
        name: round(value, 4)
        for name, value in summarize(results).get("locality_by_key", {}).items()
    }


def _batch(model: HookedModel, args: argparse.Namespace, section: str) -> dict[str, Any]:
    requests = counterfact(args.batch_n)
    others = counterfact(args.batch_n, start=1000)
    probes = _outside_locality(requests, others)
    method = make_method(section, args)
    warm = _timed_warm(model, method, requests)
    pre = evaluate(model, probes)
    start = time.perf_counter()
    patch = method.compute(model, requests)
    seconds = time.perf_counter() - start
    with patch.applied(model):
        post = evaluate(model, probes, reference=pre)
    summary = summarize(
        [
            {**r, "locality": {k: v for k, v in r["locality"].items() if k != "other_facts_acc"}}
            for r in post
        ]
    )
    return {
        "n": len(requests),
        "pre": summarize(pre),
        "post": summary,
        "locality_by_probe": _locality_split(post),
        "seconds_batch": round(seconds, 2),
        "seconds_per_edit": round(seconds / len(requests), 3),
        "seconds_load_stats": round(warm, 2),
        "hparams": method.hparams.to_dict(),
    }


def _sequential(model: HookedModel, args: argparse.Namespace, section: str) -> dict[str, Any]:
    requests = counterfact(args.seq_n)
    others = counterfact(args.seq_n, start=1000)
    probes = _outside_locality(requests, others)
    method = make_method("alphaedit", args, SEQUENTIAL_RECIPE)
    warm = _timed_warm(model, method, requests)
    pre = evaluate(model, probes)
    applied: list[PatchSet] = []
    start = time.perf_counter()
    try:
        for begin in range(0, len(requests), args.seq_batch):
            applied.append(
                method.compute(model, requests[begin : begin + args.seq_batch]).apply(model)
            )
        seconds = time.perf_counter() - start
        post = evaluate(model, probes, reference=pre)
    finally:
        for patch in reversed(applied):
            patch.revert(model)
    first = summarize(post[: args.seq_first])
    summary = summarize(
        [
            {**r, "locality": {k: v for k, v in r["locality"].items() if k != "other_facts_acc"}}
            for r in post
        ]
    )
    return {
        "method": "alphaedit",
        "n": len(requests),
        "edits_per_step": args.seq_batch,
        "pre": summarize(pre),
        "post": summary,
        "rewrite_first": first["rewrite_acc"],
        "first": args.seq_first,
        "locality": summary.get("locality"),
        "locality_by_probe": _locality_split(post),
        "seconds_total": round(seconds, 2),
        "seconds_per_edit": round(seconds / len(requests), 3),
        "seconds_load_stats": round(warm, 2),
        "hparams": method.hparams.to_dict(),
    }
