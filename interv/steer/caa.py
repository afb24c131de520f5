"""CAA: Contrastive Activation Addition (Rimsky et al. 2023, arXiv 2312.06681).

The vector is the mean difference of residual-stream activations between examples that show
a behaviour and examples that do not. For multiple-choice (A/B) data it is read at the answer
letter, the one token where the two examples differ; for free-form pairs it is the mean over
the tokens of each continuation. Added with a multiplier (about +-1 for A/B behaviours) it
pushes generation towards (or away from) the behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..adapters import HookedModel
from ..data.steering import ABItem, ContrastPair
from ..hparams import HParams
from ..prompts import ab_prompt
from .activations import read_activations, tokenize
from .base import STEER_METHODS, SteerMethod
from .vector import SteeringVector, model_identity


@dataclass(kw_only=True)
class CAAHParams(HParams):
    method = "caa"
    layers: list[int] = field(default_factory=lambda: [12])
    hook: str = "hook_resid_post"  # read and steer blocks.{layer}.<hook>
    chat_template: bool = True  # A/B questions as a user turn
    batch_size: int = 16
    multipliers: list[float] = field(default_factory=lambda: [1.0])  # applied per layer
    dataset: str = ""

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("CAA needs at least one layer in `layers`.")
        if len(self.multipliers) not in (1, len(self.layers)):
            raise ValueError("`multipliers` must have one value or one per layer.")


def contrast_texts(model: HookedModel, data: Sequence[ABItem | ContrastPair], chat_template: bool):
    """Token ids and read spans of the positive and negative side of each example."""
    if not data:
        raise ValueError("The dataset is empty; CAA needs contrastive examples.")
    pos_ids, neg_ids, pos_spans, neg_spans = [], [], [], []
    for item in data:
        if isinstance(item, ABItem):
            prefix = ab_prompt(model.tokenizer, item.question, chat_template)
            for letter, ids, spans in ((item.matching, pos_ids, pos_spans), (item.not_matching, neg_ids, neg_spans)):
                tokens = tokenize(model, [prefix + letter.strip("() ")], special_tokens=not chat_template)[0]
                ids.append(tokens)
                spans.append((len(tokens) - 1, len(tokens)))  # the answer letter
        elif isinstance(item, ContrastPair):
            prompt_ids = tokenize(model, [item.prompt])[0] if item.prompt else []
            if not item.positive.strip() or not item.negative.strip():
                raise ValueError(f"An example has an empty side: {item!r}.")
            for text, ids, spans in ((item.positive, pos_ids, pos_spans), (item.negative, neg_ids, neg_spans)):
                cont = tokenize(model, [(" " if prompt_ids else "") + text.strip()], special_tokens=not prompt_ids)[0]
                ids.append(prompt_ids + cont)
                spans.append((len(prompt_ids), len(prompt_ids) + len(cont)))
        else:
            raise TypeError(f"CAA data must be ABItem or ContrastPair, got {type(item).__name__}.")
    return pos_ids, pos_spans, neg_ids, neg_spans


def mean_difference(model: HookedModel, data, hooks: list[str], chat_template: bool, batch_size: int):
    pos_ids, pos_spans, neg_ids, neg_spans = contrast_texts(model, data, chat_template)
    acts = read_activations(model, pos_ids + neg_ids, pos_spans + neg_spans, hooks, batch_size)
    n = len(pos_ids)
    return {hook: (a[:n] - a[n:]) for hook, a in acts.items()}


@STEER_METHODS.register("caa")
class CAA(SteerMethod):
    name = "caa"
    hparams_class = CAAHParams

    def fit(self, model: HookedModel, data: Sequence[ABItem | ContrastPair]) -> SteeringVector:
        hp: CAAHParams = self.hparams  # type: ignore[assignment]
        self.check_layers(model, hp.layers)
        hooks = [f"blocks.{layer}.{hp.hook}" for layer in hp.layers]
        diffs = mean_difference(model, data, hooks, hp.chat_template, hp.batch_size)
        return SteeringVector(
            {hook: d.mean(0) for hook, d in diffs.items()},
            method=self.name, model=model_identity(model), dataset=hp.dataset,
            meta={"n_examples": len(data), "hparams": hp.to_dict()},
        )
