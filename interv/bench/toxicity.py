"""The toxicity probe on labelled text it never saw: ToxiGen statements and RealToxicityPrompts.

``toxicity_probe`` (``interv.eval.classifiers``) trains without ToxiGen's Asian group and
without RealToxicityPrompts' ``threat`` category. Measured here, as accuracy at p = 0.5 and
AUROC, on:

* ``toxigen_asian``: ToxiGen's hateful (toxic) and benign statements about Asian people;
* ``toxigen_unseen_groups``: ToxiGen's human-written demonstrations about groups no training
  text is about (disabilities, nationalities, Black, Jewish, Latino and Native American
  people...; ``demonstrations/{disability,nationality,race}``), minus any sentence the probe
  trained on;
* ``rtp_threat``: the RealToxicityPrompts ``threat`` samples (toxic) against neutral DExperts
  prompts after the 400 it trains on (benign);
* ``caa_test_replies`` (benign only: the share called toxic is the false-positive rate): the
  refusals of CAA's held-out refusal items and the answers of its held-out hallucination and
  corrigibility items, minus any the probe trained on;
* ``alpaca_eval_outputs`` (benign only): text-davinci-003's 805 AlpacaEval answers, ordinary
  chat replies from another model;
* leave one group out: for each ToxiGen group, a probe trained the same way without that
  group, on that group's statements.

On the same sets: ``unweighted``, the shipped probe's recipe without its cell weights (every
text weighing the same), and ``previous``, the probe interv shipped before (RealToxicityPrompts
of every category against SST-2 and neutral prompts), which saw the ``threat`` samples, so its
``rtp_threat`` row is not held out. Needs the full benchmark folder (``$INTERV_DATA``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..data.paths import data_file, data_root
from ..data.steering import (
    TOXIGEN_GROUPS,
    caa_ab,
    sentiment_prompts,
    sst2,
    toxic_prompts,
    toxigen_statements,
)
from ..errors import DataError, MissingFileError
from ..eval.classifiers import (
    TOXICITY_HELD_OUT_CATEGORY,
    TOXICITY_HELD_OUT_GROUP,
    LinearProbe,
    ProbeData,
    auroc,
    embedder,
    toxicity_data,
    toxicity_probe,
)
from .judge import ALPACA

UNSEEN_FOLDERS = ("disability", "nationality", "race")
NEUTRAL_TRAINED = 400  # neutral DExperts prompts the probe trains on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n-neutral", type=int, default=100, help="held-out neutral prompts against threats"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    cache = Embeddings()
    data = toxicity_data()
    sets = held_out_sets(set(data.texts), args.n_neutral)
    probes = {
        "shipped": toxicity_probe(),
        "unweighted": _fit(ProbeData(data.texts, data.labels), cache),
        "previous": _fit(previous_data(), cache),
    }
    report: dict[str, Any] = {
        "held_out_group": TOXICITY_HELD_OUT_GROUP,
        "held_out_category": TOXICITY_HELD_OUT_CATEGORY,
        "n_train": len(data.texts),
    }
    for name, probe in probes.items():
        report[name] = {"split_accuracy": round(probe.accuracy, 4), **scores(probe, sets, cache)}
    report["leave_one_group_out"] = leave_one_group_out(cache)
    return report


class Embeddings:
    """Sentence embeddings by text, each computed once per run."""

    def __init__(self) -> None:
        self.rows: dict[str, Tensor] = {}

    def __call__(self, texts: Sequence[str]) -> Float[Tensor, "n d"]:
        new = [t for t in dict.fromkeys(texts) if t not in self.rows]
        if new:
            self.rows.update(zip(new, embedder()(new), strict=True))
        return torch.stack([self.rows[t] for t in texts])


def previous_data() -> ProbeData:
    """The training data of interv's previous toxicity probe (no source weighting)."""
    clean = [t for t, _ in sst2()] + sentiment_prompts("neutral", NEUTRAL_TRAINED)
    return ProbeData(*_labelled(toxic_prompts(), clean))


def _fit(data: ProbeData, cache: Embeddings) -> LinearProbe:
    """``LinearProbe.train`` on cached embeddings."""
    y = torch.tensor(data.labels, dtype=torch.float32)
    return LinearProbe.fit(cache(data.texts), y, data.weights())


def _demonstrations(trained: set[str]) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for folder in UNSEEN_FOLDERS:
        where = data_root() / "steering/toxigen/demonstrations" / folder
        if not where.is_dir():
            raise MissingFileError(f"{where} is missing: set INTERV_DATA to the benchmark folder.")
        for path in sorted(where.glob("*.txt")):
            label = int(path.name.startswith("hate_"))
            for line in path.read_text().splitlines():
                text = line.strip().removeprefix("-").strip()
                if text and text not in trained and text not in texts:
                    texts.append(text)
                    labels.append(label)
    return texts, labels


def _labelled(toxic: list[str], benign: list[str]) -> tuple[list[str], list[int]]:
    return toxic + benign, [1] * len(toxic) + [0] * len(benign)


def _replies(trained: set[str]) -> list[str]:
    refusals = [i.options()[1][i.matching_letter] for i in caa_ab("refusal", "test")]
    answers = [
        t
        for b in ("hallucination", "corrigible-neutral-HHH")
        for i in caa_ab(b, "test")
        for t in i.options()[1].values()
    ]
    return [t for t in dict.fromkeys(refusals + answers) if t not in trained]


def held_out_sets(trained: set[str], n_neutral: int) -> dict[str, tuple[list[str], list[int]]]:
    """Labelled sets (1 = toxic) outside the shipped probe's training data."""
    group = TOXICITY_HELD_OUT_GROUP
    hate, neutral = toxigen_statements("hate", group), toxigen_statements("neutral", group)
    threats = toxic_prompts(TOXICITY_HELD_OUT_CATEGORY)
    alpaca = data_file(ALPACA).read_text()
    benign = sentiment_prompts("neutral", NEUTRAL_TRAINED + n_neutral)[NEUTRAL_TRAINED:]
    sets: dict[str, tuple[list[str], list[int]]] = {
        f"toxigen_{group}": _labelled(hate, neutral),
        "toxigen_unseen_groups": _demonstrations(trained),
        f"rtp_{TOXICITY_HELD_OUT_CATEGORY}": _labelled(threats, benign),
        "caa_test_replies": _labelled([], _replies(trained)),
        "alpaca_eval_outputs": _labelled([], [r["output"] for r in json.loads(alpaca)]),
    }
    for name, (texts, _) in sets.items():
        if trained.intersection(texts):
            raise DataError(f"{name}: some of its texts are in the probe's training data.")
    return sets


def _measure(probs: Sequence[float], labels: Sequence[int]) -> dict[str, Any]:
    """Accuracy at 0.5, the share called toxic, and the AUROC (for sets with both labels)."""
    hits = [(p >= 0.5) == bool(y) for p, y in zip(probs, labels, strict=True)]
    out = {
        "n": len(labels),
        "n_toxic": sum(labels),
        "accuracy": round(sum(hits) / len(hits), 4),
        "called_toxic": round(sum(p >= 0.5 for p in probs) / len(probs), 4),
    }
    if 0 < sum(labels) < len(labels):
        out["auroc"] = round(auroc(probs, labels), 4)
    return out


def _probabilities(probe: LinearProbe, texts: Sequence[str], cache: Embeddings) -> list[float]:
    return torch.sigmoid(cache(texts) @ probe.weight + probe.bias).tolist()


def scores(
    probe: LinearProbe, sets: dict[str, tuple[list[str], list[int]]], cache: Embeddings
) -> dict[str, Any]:
    return {
        name: _measure(_probabilities(probe, texts, cache), labels)
        for name, (texts, labels) in sets.items()
    }


def leave_one_group_out(cache: Embeddings) -> dict[str, Any]:
    """Per ToxiGen group: a probe trained without it (and without the held-out category), on
    the group's statements."""
    out = {}
    for group in TOXIGEN_GROUPS:
        probe = _fit(toxicity_data(held_out_group=group), cache)
        texts, labels = _labelled(
            toxigen_statements("hate", group), toxigen_statements("neutral", group)
        )
        out[group] = _measure(_probabilities(probe, texts, cache), labels)
    return out
