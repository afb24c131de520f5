"""Concept steering, AxBench-style: every method against the prompt baseline, judged.

For each of the first ``--n-concepts`` AxBench Concept10 concepts, each method of
``interv.bench.concept_methods`` fits its vector on ``--n-train`` of the concept's positive
examples. Vectors steer greedy, chat-formatted answers to AlpacaEval instructions; a judge
(``interv.eval.judge``, the local one unless ``--judge`` names another) scores each answer's
concept relevance, instruction relevance and fluency (0-2 each) and their harmonic mean.

Calibration: each vector's strength is chosen on the validation instructions, among
``--strengths`` given as fractions of the median residual-stream norm at the vector's layer
(so one grid fits vectors of any norm), as the strength with the highest mean harmonic mean.
The report is on the test instructions, which the choice never saw. Rows: no steering, the
prompt baseline (``PROMPT`` before each instruction), each method at its chosen strength, and
each method's control (a random direction orthogonal to it, same norm, layer and strength).
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..adapters import HookedModel
from ..data.concepts import Concept, alpaca_instructions, axbench_concepts, axbench_negatives
from ..errors import ConfigError
from ..eval.judge import Judge, Judgement, judge_from, summarise
from ..graph import Add, Graph
from ..loading import load as load_model
from ..steer.vector import SteeringVector
from .concept_methods import METHODS, TrainSet, clipped, fit_all, residual_norm

log = logging.getLogger(__name__)
SCORES = ("concept", "instruction", "fluency", "harmonic_mean")


@dataclass(frozen=True)
class Arm:
    """One steering condition: a vector at a strength, a prompt before the input, or neither."""

    label: str
    vector: SteeringVector | None = None
    scale: float = 0.0
    prefix: str = ""


@dataclass
class Settings:
    layer: int = 12
    n_train: int = 16
    response_tokens: int = 32
    max_new_tokens: int = 32
    strengths: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5)
    methods: tuple[str, ...] = METHODS
    seed: int = 0
    batch_size: int = 32
    val: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-concepts", type=int, default=10, help="Concept10 concepts, in order")
    parser.add_argument("--n-train", type=int, default=16, help="positive examples per concept")
    parser.add_argument("--n-val", type=int, default=8, help="validation instructions")
    parser.add_argument("--n-test", type=int, default=12, help="test instructions")
    parser.add_argument("--layer", type=int, default=12, help="the layer every vector steers")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument(
        "--strengths", default="0.05,0.1,0.25,0.5", help="fractions of the residual norm to try"
    )
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--judge", default="local", help="local, model:NAME or openai:MODEL")
    parser.add_argument("--seed", type=int, default=0)


def settings_of(args: argparse.Namespace) -> Settings:
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(
            f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}."
        )
    instructions = alpaca_instructions(args.n_val + args.n_test)
    return Settings(
        layer=args.layer,
        n_train=args.n_train,
        max_new_tokens=args.max_new_tokens,
        strengths=tuple(float(s) for s in args.strengths.split(",")),
        methods=methods,
        seed=args.seed,
        val=instructions[: args.n_val],
        test=instructions[args.n_val :],
    )


def generate_arms(
    model: HookedModel, arms: Sequence[Arm], instructions: Sequence[str], settings: Settings
) -> dict[str, list[str]]:
    """Every arm's answers to every instruction, many arms per batch (each vector steers
    only its own rows)."""
    rows = [(arm, text) for arm in arms for text in instructions]
    out: dict[str, list[str]] = {arm.label: [] for arm in arms}
    for begin in range(0, len(rows), settings.batch_size):
        chunk = rows[begin : begin + settings.batch_size]
        nodes = [
            Add(hook, direction, scale=arm.scale, rows=[i], name=f"row{i}_{n}")
            for i, (arm, _) in enumerate(chunk)
            if arm.vector is not None
            for n, (hook, direction) in enumerate(arm.vector.directions.items())
        ]
        texts = [f"{arm.prefix}\n\n{text}" if arm.prefix else text for arm, text in chunk]
        answers = model.generate(
            texts,
            graph=Graph(nodes) if nodes else None,
            chat_template=True,
            max_new_tokens=settings.max_new_tokens,
        )
        for (arm, _), answer in zip(chunk, answers, strict=True):
            out[arm.label].append(answer)
    return out


def judged(
    judge: Judge, answers: dict[str, list[str]], instructions: Sequence[str], concept: str
) -> dict[str, list[Judgement]]:
    labels = list(answers)
    flat = [a for label in labels for a in answers[label]]
    scores = judge.judge(list(instructions) * len(labels), flat, concept)
    n = len(instructions)
    return {label: scores[i * n : (i + 1) * n] for i, label in enumerate(labels)}


def calibrate(
    model: HookedModel,
    judge: Judge,
    concept: Concept,
    vectors: dict[str, SteeringVector],
    norm: float,
    settings: Settings,
) -> dict[str, dict[str, Any]]:
    """Per method, the validation harmonic mean at each strength and the chosen strength."""
    arms = [
        Arm(f"{name}@{k}", vector, k * norm / _norm(vector))
        for name, vector in vectors.items()
        for k in settings.strengths
    ]
    answers = generate_arms(model, arms, settings.val, settings)
    scores = judged(judge, answers, settings.val, concept.description)
    out = {}
    for name, vector in vectors.items():
        tried = {k: summarise(scores[f"{name}@{k}"])["harmonic_mean"] for k in settings.strengths}
        best = max(settings.strengths, key=lambda k: (tried[k], -k))  # ties: the smaller
        out[name] = {"tried": tried, "strength": best, "scale": best * norm / _norm(vector)}
    return out


def _norm(vector: SteeringVector) -> float:
    return max(float(torch.linalg.vector_norm(d.float())) for d in vector.directions.values())


def one_concept(
    model: HookedModel, judge: Judge, concept: Concept, negatives: Sequence[Any], settings: Settings
) -> dict[str, Any]:
    positives = concept.positives[: settings.n_train]
    own = model.generate(
        [e.instruction for e in positives],
        chat_template=True,
        max_new_tokens=settings.response_tokens,
    )
    n = settings.response_tokens
    data = TrainSet(
        concept,
        clipped(model, positives, n),
        own,
        clipped(model, negatives, n),
        settings.layer,
        n,
        settings.seed,
    )
    vectors = fit_all(model, data, settings.methods)
    norm = residual_norm(model, [e.response for e in positives[:8]], settings.layer)
    chosen = calibrate(model, judge, concept, vectors, norm, settings)
    arms = [Arm("unsteered"), Arm("prompt", prefix=data.prompt)]
    for name, vector in vectors.items():
        scale = chosen[name]["scale"]
        arms += [
            Arm(name, vector, scale),
            Arm(f"{name}:control", vector.control(settings.seed), scale),
        ]
    answers = generate_arms(model, arms, settings.test, settings)
    scores = judged(judge, answers, settings.test, concept.description)
    return {
        "concept": concept.description,
        "residual_norm": round(norm, 2),
        "calibration": chosen,
        "rows": {label: _rounded(summarise(s)) for label, s in scores.items()},
        "samples": {label: texts[:2] for label, texts in answers.items()},
    }


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in scores.items()}


def table(concepts: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean over concepts of every row's scores (and each method's chosen strength)."""
    labels = concepts[0]["rows"]
    out: dict[str, dict[str, float]] = {}
    for label in labels:
        row = {k: round(statistics.fmean(c["rows"][label][k] for c in concepts), 4) for k in SCORES}
        method = label.split(":")[0]
        if method in concepts[0]["calibration"] and ":" not in label:
            row["strength"] = statistics.median(
                c["calibration"][method]["strength"] for c in concepts
            )
        out[label] = row
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = settings_of(args)
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    judge = judge_from(args.judge, model, loader=load_model)
    negatives = axbench_negatives()[: settings.n_train]
    per_concept = []
    for concept in axbench_concepts(args.n_concepts):
        log.info("concept %d: %s", concept.id, concept.description)
        per_concept.append(one_concept(model, judge, concept, negatives, settings))
        log.info("concept %d rows: %s", concept.id, per_concept[-1]["rows"])
    return {
        "model": model.cfg.name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "judge": judge.name,
        "settings": {k: v for k, v in vars(settings).items() if k not in ("val", "test")},
        "n_val": len(settings.val),
        "n_test": len(settings.test),
        "table": table(per_concept),
        "concepts": per_concept,
    }
