"""SAE quality and SAE steering: the shipped SAE on held-out text; STA vs CAA on sentiment.

* ``heldout``: explained variance, L0 and dead-feature share of the shipped SAE on the held-out
  part of the default corpus (documents chosen by hash, never trained on), also without the 1%
  of tokens of largest norm, whose variance dominates the total.
* ``steering``: STA and CAA vectors fitted on the same ConvSent positive/negative pairs at the
  SAE's layer; greedy continuations of neutral DExperts prompts, unsteered and at each
  multiplier. For each method the report picks the multiplier with the highest VADER-positive
  share whose distinct-2 stays >= ``--min-distinct`` of the unsteered one (the fluency
  constraint), and gives CAA at the multiplier whose fluency is closest to STA's pick.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..data.steering import convsent_pairs, sentiment_prompts
from ..devices import resolve_device, resolve_dtype
from ..eval.steering import text_metrics
from ..graph import Add, Graph
from ..loading import load
from ..sae import DEFAULT_SAE, activations, corpus
from ..sae import load as load_sae
from ..sae.metrics import evaluate, without_outliers
from ..steer.caa import CAA, CAAHParams
from ..steer.sae_feature import feature_graph
from ..steer.sta import STA, STAHParams

METRICS = ("distinct", "fluency", "sentiment")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sae", default=None, help="SAE to measure (default: the shipped one)")
    parser.add_argument("--heldout-tokens", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=64, help="ConvSent pairs to fit STA/CAA on")
    parser.add_argument("--prompts", type=int, default=40, help="neutral prompts to continue")
    parser.add_argument("--new-tokens", type=int, default=30)
    parser.add_argument("--sta-multipliers", default="2,4,6")
    parser.add_argument("--caa-multipliers", default="2,4,6")
    parser.add_argument(
        "--min-distinct",
        type=float,
        default=0.8,
        help="distinct-2 floor, as a fraction of the unsteered distinct-2",
    )
    parser.add_argument("--skip-steering", action="store_true")


def run(args: argparse.Namespace) -> dict[str, Any]:

    model = load(args.model, device=resolve_device(args.device), dtype=resolve_dtype(args.dtype))
    sae = load_sae(args.sae or DEFAULT_SAE, model=model)
    report: dict[str, Any] = {
        "model": model.cfg.name,
        "sae": sae.id,
        "hook": sae.hook_name,
        "d_sae": sae.d_sae,
        "architecture": sae.architecture,
        "heldout": heldout_quality(model, sae, args.heldout_tokens),
    }
    if not args.skip_steering:
        report["steering"] = sentiment_steering(model, sae, args)
    return report


def heldout_quality(model: Any, sae: Any, n_tokens: int) -> dict[str, Any]:
    """All held-out tokens, and without the 1% of largest norm (massive activations)."""

    _, heldout = corpus.split(corpus.load_documents())
    acts = activations.cached(model, sae.hook_name, heldout, n_tokens, progress=False)
    return {**evaluate(sae, acts), "without_top1pct_norms": evaluate(sae, without_outliers(acts))}


def sentiment_steering(model: Any, sae: Any, args: argparse.Namespace) -> dict[str, Any]:

    layer = int(sae.hook_name.split(".")[1])
    pairs, prompts = convsent_pairs(args.pairs), sentiment_prompts("neutral", args.prompts)
    started = time.perf_counter()
    sta = STA(STAHParams(dataset="convsent"), sae=sae).fit(model, pairs)
    caa = CAA(CAAHParams(layers=[layer], dataset="convsent")).fit(model, pairs)
    fit_seconds = round(time.perf_counter() - started, 1)

    def generate(graph: Any = None) -> dict[str, float]:
        texts = model.generate(prompts, max_new_tokens=args.new_tokens, graph=graph)
        return _metrics(texts)

    unsteered = generate()
    sweeps: dict[str, dict[str, dict[str, float]]] = {"sta": {}, "caa": {}}
    for m in _floats(args.sta_multipliers):
        sweeps["sta"][str(m)] = generate(feature_graph(sta, sae, m))
    for m in _floats(args.caa_multipliers):
        sweeps["caa"][str(m)] = generate(
            Graph([Add(sae.hook_name, m * caa.directions[sae.hook_name])])
        )
    floor = args.min_distinct * unsteered["distinct_2"]
    best = {name: _best(sweep, floor) for name, sweep in sweeps.items()}
    report: dict[str, Any] = {
        "pairs": len(pairs),
        "prompts": len(prompts),
        "new_tokens": args.new_tokens,
        "sta_features": len(sta.meta["features"]),
        "fit_seconds": fit_seconds,
        "distinct_2_floor": round(floor, 4),
        "unsteered": unsteered,
        "sweeps": sweeps,
        "best": best,
    }
    if best["sta"] is not None:
        fluency = sweeps["sta"][best["sta"]]["fluency"]
        report["caa_at_sta_fluency"] = min(
            sweeps["caa"], key=lambda m: abs(sweeps["caa"][m]["fluency"] - fluency)
        )
        shift = (
            sweeps["sta"][best["sta"]]["vader_positive_share"] - unsteered["vader_positive_share"]
        )
        report["sta_positive_shift_points"] = round(100 * shift, 1)
    if best["caa"] is not None:
        shift = (
            sweeps["caa"][best["caa"]]["vader_positive_share"] - unsteered["vader_positive_share"]
        )
        report["caa_positive_shift_points"] = round(100 * shift, 1)
    return report


def _metrics(texts: list[str]) -> dict[str, float]:

    result = text_metrics(texts, METRICS)
    return {
        k: result[k] for k in ("vader_positive_share", "vader_compound", "distinct_2", "fluency")
    }


def _best(sweep: dict[str, dict[str, float]], floor: float) -> str | None:
    """The multiplier with the highest positive share whose distinct-2 is above the floor."""
    fine = [m for m, r in sweep.items() if r["distinct_2"] >= floor]
    return max(fine, key=lambda m: (sweep[m]["vader_positive_share"], -float(m))) if fine else None


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]
