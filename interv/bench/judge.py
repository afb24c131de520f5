"""The local LLM-judge's calibration and quality: lo/hi from labelled data, AUROC held out.

``LocalJudge`` turns three raw signals into 0..2 scores with ``lo``/``hi`` constants
(``interv.eval.judge``). ``calibrate`` measures them, each as the median signal of a negative
and of a positive labelled set; ``quality`` scores the judge (with the shipped constants) on
labelled data none of those medians saw, as the AUROC of its score separating positives from
negatives (ties count half, so a clamped score can lose a little against the raw signal,
reported too):

* concept: AxBench Concept10's ``latent_eval_data``: responses that show their concept
  (positive) vs responses to the same instructions without it (negative), scored against that
  concept's description; calibrated on the even concept ids, held out on the odd ones (five
  concepts the constants never saw). Hard negatives (responses that use a word of the concept
  in another sense) are reported apart;
* instruction: AlpacaEval's text-davinci-003 outputs, each instruction with its own output
  (positive) or with the next item's (negative); calibrated on the even items, held out on
  the odd ones;
* fluency: the first words of AlpacaEval outputs (positive) vs the same words shuffled and vs
  a loop of their first few words (negative), the NLL under the reference model after the
  chat-formatted instruction; calibrated on even items (real vs shuffled), held out on odd.

Needs the full benchmark folder (``$INTERV_DATA``): AxBench and AlpacaEval are not bundled.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections.abc import Sequence
from typing import Any

from ..data.paths import data_file
from ..eval.classifiers import auroc, embedder
from ..eval.judge import (
    CONCEPT_COSINE,
    FLUENCY_NLL,
    INSTRUCTION_COSINE,
    LocalJudge,
    calibrated,
    repetition_factor,
)
from ..loading import load

CONCEPT10 = "steering/axbench/concept10/prod_2b_l20_v1"
ALPACA = "steering/axbench/alpaca_eval/text_davinci_003_model_outputs.json"
SHIPPED = {"concept": CONCEPT_COSINE, "instruction": INSTRUCTION_COSINE, "fluency": FLUENCY_NLL}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-fluency", type=int, default=40, help="fluency items per split")
    parser.add_argument("--words", type=int, default=48, help="words of each fluency response")
    parser.add_argument("--seed", type=int, default=0, help="shuffles and loops")


def run(args: argparse.Namespace) -> dict[str, Any]:
    model = load(args.model, device=args.device, dtype=args.dtype)
    judge = LocalJudge(model)
    fluency = fluency_sets(args.n_fluency, args.words, args.seed)
    measured = calibrate(judge, fluency["calibration"])
    report: dict[str, Any] = {
        "model": model.cfg.name,
        "measured_bounds": measured,
        "shipped_bounds": {k: list(v) for k, v in SHIPPED.items()},
        "quality": quality(judge, fluency["held_out"]),
    }
    return report


def _jsonl(relative: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data_file(relative).read_text().splitlines() if line]


def concept_rows(held_out: bool) -> dict[str, list[dict[str, Any]]]:
    """Concept10's latent_eval_data by concept description (odd ids held out, even ones to
    calibrate)."""
    meta = {
        int(r["concept_id"]): r["concept"] for r in _jsonl(f"{CONCEPT10}/generate/metadata.jsonl")
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for row in _jsonl(f"{CONCEPT10}/inference/latent_eval_data.jsonl"):
        cid = int(row["concept_id"])
        if cid % 2 == int(held_out):
            out.setdefault(meta[cid], []).append(row)
    return out


def alpaca(held_out: bool) -> list[dict[str, str]]:
    """AlpacaEval's items: the odd ones held out, the even ones to calibrate."""
    items = json.loads(data_file(ALPACA).read_text())
    return [r for k, r in enumerate(items) if k % 2 == int(held_out)]


def fluency_sets(n: int, n_words: int, seed: int) -> dict[str, dict[str, list[str]]]:
    """Per split: instructions, real responses (their first ``n_words`` words), shuffled and
    looped versions of them."""
    rng = random.Random(seed)
    out = {}
    for split, held_out in (("calibration", False), ("held_out", True)):
        items = alpaca(held_out)[:n]
        real = [" ".join(r["output"].split()[:n_words]) for r in items]
        shuffled, looped = [], []
        for text in real:
            tokens = text.split()
            shuffled.append(" ".join(rng.sample(tokens, len(tokens))))
            piece = tokens[: rng.randint(1, 6)]
            length = max(len(tokens), 12)
            looped.append(" ".join((piece * (length // len(piece) + 1))[:length]))
        out[split] = {
            "instructions": [r["instruction"] for r in items],
            "real": real,
            "shuffled": shuffled,
            "looped": looped,
        }
    return out


def _concept_cosines(judge: LocalJudge, held_out: bool) -> dict[str, list[float]]:
    cosines: dict[str, list[float]] = {"positive": [], "negative": [], "hard negative": []}
    for concept, rows in concept_rows(held_out).items():
        values = judge.concept_cosines([r["output"] for r in rows], concept)
        for row, value in zip(rows, values, strict=True):
            cosines[row["category"]].append(value)
    return cosines


def _instruction_cosines(held_out: bool) -> dict[str, list[float]]:
    """``LocalJudge.instruction_cosines`` of each instruction with its own output and with the
    next item's (each text embedded once)."""
    items = alpaca(held_out)
    instructions = embedder()([r["instruction"] for r in items])
    outputs = embedder()([r["output"] for r in items])
    return {
        "positive": (instructions * outputs).sum(-1).tolist(),
        "negative": (instructions * outputs.roll(-1, 0)).sum(-1).tolist(),
    }


def calibrate(judge: LocalJudge, fluency: dict[str, list[str]]) -> dict[str, list[float]]:
    """``[lo, hi]`` per score: the negative and the positive set's median raw signal, on the
    calibration splits."""
    concept = _concept_cosines(judge, held_out=False)
    instruction = _instruction_cosines(held_out=False)
    nll_real = judge.nll(fluency["instructions"], fluency["real"])
    nll_shuffled = judge.nll(fluency["instructions"], fluency["shuffled"])
    pairs = {
        "concept": (concept["negative"], concept["positive"]),
        "instruction": (instruction["negative"], instruction["positive"]),
        "fluency": (nll_shuffled, nll_real),
    }
    return {k: [round(statistics.median(v), 4) for v in sets] for k, sets in pairs.items()}


def _separation(
    positives: Sequence[float], negatives: Sequence[float], raw: tuple[list[float], list[float]]
) -> dict[str, Any]:
    labels = [1] * len(positives) + [0] * len(negatives)
    return {
        "n_positive": len(positives),
        "n_negative": len(negatives),
        "auroc": round(auroc([*positives, *negatives], labels), 4),
        "auroc_raw": round(auroc([*raw[0], *raw[1]], labels), 4),
        "mean_positive": round(statistics.fmean(positives), 3),
        "mean_negative": round(statistics.fmean(negatives), 3),
    }


def quality(judge: LocalJudge, fluency: dict[str, list[str]]) -> dict[str, Any]:
    """Held-out AUROC of each score with the judge's bounds (raw signal's AUROC too)."""
    out: dict[str, Any] = {}
    concept = _concept_cosines(judge, held_out=True)
    score = [[calibrated(x, judge.concept_bounds) for x in concept[k]] for k in concept]
    pos, neg, hard = score
    out["concept"] = _separation(pos, neg, (concept["positive"], concept["negative"]))
    out["concept_hard_negatives"] = _separation(
        pos, hard, (concept["positive"], concept["hard negative"])
    )
    instruction = _instruction_cosines(held_out=True)
    pos, neg = ([calibrated(x, judge.instruction_bounds) for x in v] for v in instruction.values())
    out["instruction"] = _separation(pos, neg, (instruction["positive"], instruction["negative"]))
    fluent: dict[str, list[float]] = {}
    raw: dict[str, list[float]] = {}
    for kind in ("real", "shuffled", "looped"):
        texts = fluency[kind]
        nll = judge.nll(fluency["instructions"], texts)
        raw[kind] = [-x for x in nll]  # the raw signal, higher = more fluent
        fluent[kind] = [
            calibrated(x, judge.fluency_bounds) * repetition_factor(t)
            for x, t in zip(nll, texts, strict=True)
        ]
    for kind in ("shuffled", "looped"):
        out[f"fluency_vs_{kind}"] = _separation(
            fluent["real"], fluent[kind], (raw["real"], raw[kind])
        )
    both = fluent["shuffled"] + fluent["looped"]
    out["fluency"] = _separation(
        fluent["real"], both, (raw["real"], raw["shuffled"] + raw["looped"])
    )
    return out
