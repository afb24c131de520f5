"""Mean difference / ActAdd (Turner et al. 2023, arXiv 2308.10248).

ActAdd steers with the activation difference of a single prompt pair such as "Love" - "Hate".
Here the difference is taken of the mean activation over each prompt's tokens (``read="mean"``)
or at their last token (``read="last"``); with several pairs the differences are averaged,
which makes this the free-form cousin of CAA without a shared context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..adapters import HookedModel, names
from ..errors import ConfigError, SteeringError
from ..hparams import HParams
from ..record import ModelRecord
from ..tokens import tokenize
from .activations import read_activations
from .base import STEER_METHODS, SteerMethod
from .vector import SteeringVector


@dataclass(kw_only=True)
class MeanDiffHParams(HParams):
    method = "mean_diff"
    layers: list[int] = field(default_factory=lambda: [6])
    hook: str = "hook_resid_pre"
    read: str = "last"  # "last" token or "mean" over the prompt
    positive: list[str] = field(default_factory=lambda: ["Love"])
    negative: list[str] = field(default_factory=lambda: ["Hate"])
    batch_size: int = 16
    dataset: str = ""

    def __post_init__(self) -> None:
        if self.read not in ("last", "mean"):
            raise ConfigError(f"`read` must be 'last' or 'mean', not {self.read!r}.")
        if not self.positive or len(self.positive) != len(self.negative):
            raise ConfigError("`positive` and `negative` must be non-empty lists of equal length.")


@STEER_METHODS.register("mean_diff")
class MeanDiff(SteerMethod[list[tuple[str, str]] | None, SteeringVector]):
    name = "mean_diff"
    hparams_class = MeanDiffHParams
    data_kind = None  # the prompt pairs are hyperparameters
    hparams: MeanDiffHParams

    def fit(self, model: HookedModel, data: list[tuple[str, str]] | None = None) -> SteeringVector:
        """``data``: (positive, negative) prompt pairs; defaults to the hyperparameters' pairs."""
        hp = self.hparams
        self.check_layers(model, hp.layers)
        pairs = list(data) if data else list(zip(hp.positive, hp.negative, strict=True))
        if any(not p.strip() or not n.strip() for p, n in pairs):
            raise SteeringError("A mean_diff prompt pair has an empty side; give both prompts.")
        texts = [p for p, _ in pairs] + [n for _, n in pairs]
        ids = tokenize(model, texts)
        spans = [(len(t) - 1, len(t)) if hp.read == "last" else (0, len(t)) for t in ids]
        hooks = [names.hook(hp.hook, layer) for layer in hp.layers]
        acts = read_activations(model, ids, spans, hooks, hp.batch_size)
        n = len(pairs)
        return SteeringVector(
            {hook: (a[:n] - a[n:]).mean(0) for hook, a in acts.items()},
            method=self.name,
            model=ModelRecord.of(model),
            dataset=hp.dataset or "prompt pairs",
            meta={"pairs": pairs, "hparams": hp.to_dict()},
        )
