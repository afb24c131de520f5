"""CAA: Contrastive Activation Addition (Rimsky et al. 2023, arXiv 2312.06681).

The vector is the mean difference of residual-stream activations between examples that show
a behaviour and examples that do not. For multiple-choice (A/B) data it is read at the answer
letter, the one token where the two examples differ; for free-form pairs it is the mean over
the tokens of each continuation. Added with a multiplier (about +-1 for A/B behaviours) it
pushes generation towards (or away from) the behaviour. EasyEdit2 adds it to the block output,
``blocks.{L}.hook_resid_post``, which is the default ``hook`` here.

At the answer letter the two sides also differ in the letter itself: an item whose matching
answer is A contributes ``h(A) - h(B) + b``, one whose matching answer is B ``h(B) - h(A) + b``.
The plain mean keeps ``(2f - 1)(h(A) - h(B))`` of the letter difference when a fraction ``f`` of
items match with A. On a small model that residue can outweigh the behaviour part. With
``balance_answers`` (the default) the vector is the mean of the A-matching and the B-matching
items' mean differences, so the letter term cancels whatever the balance.

``read_at: answer`` reads A/B items in their cloze form instead: the question without its
choices, then each choice's text, averaged over the text's tokens (the free-form variant on the
items' own answers). A model too small to tie a letter to its choice (SmolLM2-135M answers
CAA's A/B items at chance, and its letter-read vectors move the letter, not the behaviour) still
tells the two answers' texts apart; such vectors are scored with
``interv.eval.steering.ab_answer_probability`` (the workflow's ``ab_form: answer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..contrast import (
    AB_FORMS,
    ABItem,
    Contrast,
    ContrastPair,
    answer_groups,
    balance_answer_letters,
)
from ..errors import ConfigError, SteeringError
from ..hparams import HParams
from ..prompts import ab_answer_ids, ab_prompt
from ..record import ModelRecord
from ..tokens import tokenize
from .activations import read_pair_activations
from .base import STEER_METHODS, SteerMethod
from .vector import SteeringVector


@dataclass(kw_only=True)
class CAAHParams(HParams):
    method = "caa"
    ee2_renames: ClassVar[dict[str, str]] = {"use_chat_template": "chat_template"}
    layers: list[int] = field(default_factory=lambda: [12])
    hook: str = "hook_resid_post"  # read and steer blocks.{layer}.<hook>
    chat_template: bool = True  # A/B questions as a user turn
    system_prompt: str = ""
    multiple_choice: bool | None = None  # EasyEdit2's flag; None: decided by the data
    balance_answers: bool = True  # A/B data: weigh A-matching and B-matching items equally
    # A/B data: read at the answer "letter" (CAA), or over each choice's text after the
    # question without its choices ("answer": the cloze form, see the module docstring)
    read_at: str = "letter"
    batch_size: int = 16
    dataset: str = ""

    def __post_init__(self) -> None:
        if not self.layers:
            raise ConfigError("CAA needs at least one layer in `layers`.")
        if self.batch_size < 1:
            raise ConfigError(f"`batch_size` must be >= 1, got {self.batch_size}.")
        if self.read_at not in AB_FORMS:
            raise ConfigError(
                f"`read_at` must be one of {', '.join(AB_FORMS)}, got {self.read_at!r}."
            )


def check_contrast_data(data: Sequence[Contrast], method: str) -> None:
    """One clear error for an empty or one-sided contrastive dataset."""
    if not data:
        raise SteeringError(f"The dataset is empty; {method} needs contrastive examples.")
    for item in data:
        if isinstance(item, ABItem):
            if item.matching_letter == item.not_matching_letter:
                raise SteeringError(f"An A/B item has the same answer on both sides: {item!r}.")
        elif isinstance(item, ContrastPair):
            if not item.positive.strip() or not item.negative.strip():
                raise SteeringError(f"An example has an empty side (a one-sided pair): {item!r}.")
        else:
            raise SteeringError(
                f"{method} data must be ABItem or ContrastPair, got {type(item).__name__}."
            )
    if all(isinstance(i, ContrastPair) and i.positive == i.negative for i in data):
        raise SteeringError(f"Every pair has identical sides; {method} has nothing to contrast.")


def contrast_texts(
    model: HookedModel,
    data: Sequence[Contrast],
    chat_template: bool,
    system_prompt: str = "",
    method: str = "CAA",
    read_at: str = "letter",
):
    """Token ids and read spans of the positive and negative side of each example."""
    check_contrast_data(data, method)
    pos_ids, neg_ids, pos_spans, neg_spans = [], [], [], []
    for item in data:
        if isinstance(item, ABItem) and read_at == "answer":  # each choice's text, cloze form
            prompt, answers = ab_answer_ids(
                model.tokenizer, item, chat_template, system_prompt or None
            )
            for answer, ids, spans in (
                (answers[item.matching_letter], pos_ids, pos_spans),
                (answers[item.not_matching_letter], neg_ids, neg_spans),
            ):
                ids.append(prompt + answer)
                spans.append((len(prompt), len(prompt) + len(answer)))
        elif isinstance(item, ABItem):
            prefix = ab_prompt(model.tokenizer, item.question, chat_template, system_prompt or None)
            for letter, ids, spans in (
                (item.matching_letter, pos_ids, pos_spans),
                (item.not_matching_letter, neg_ids, neg_spans),
            ):
                tokens = tokenize(model, [prefix + letter], special_tokens=not chat_template)[0]
                ids.append(tokens)
                spans.append((len(tokens) - 1, len(tokens)))  # the answer letter
        else:
            prompt_ids = tokenize(model, [item.prompt])[0] if item.prompt else []
            for text, ids, spans in (
                (item.positive, pos_ids, pos_spans),
                (item.negative, neg_ids, neg_spans),
            ):
                cont = tokenize(
                    model,
                    [(" " if prompt_ids else "") + text.strip()],
                    special_tokens=not prompt_ids,
                )[0]
                ids.append(prompt_ids + cont)
                spans.append((len(prompt_ids), len(prompt_ids) + len(cont)))
    return pos_ids, pos_spans, neg_ids, neg_spans


def mean_difference(
    model: HookedModel,
    data,
    hooks: list[str],
    chat_template: bool,
    batch_size: int,
    system_prompt: str = "",
    read_at: str = "letter",
) -> dict[str, Float[Tensor, "n d"]]:
    """Per example, positive minus negative activation at every hook: ``{hook: [n, d]}``."""
    pos_ids, pos_spans, neg_ids, neg_spans = contrast_texts(
        model, data, chat_template, system_prompt, read_at=read_at
    )
    pos, neg = read_pair_activations(
        model, pos_ids, pos_spans, neg_ids, neg_spans, hooks, batch_size
    )
    return {hook: pos[hook] - neg[hook] for hook in hooks}


def check_multiple_choice(flag: bool | None, data: Sequence[Contrast]) -> None:
    if flag is None or not data:
        return
    is_ab = isinstance(data[0], ABItem)
    if flag != is_ab:
        kind = "A/B items" if is_ab else "free-form pairs"
        raise ConfigError(
            f"multiple_choice: {str(flag).lower()} contradicts the dataset, which holds {kind}."
        )


@STEER_METHODS.register("caa")
class CAA(SteerMethod[Sequence[Contrast], SteeringVector]):
    name = "caa"
    hparams_class = CAAHParams
    hparams: CAAHParams

    def fit(self, model: HookedModel, data: Sequence[Contrast]) -> SteeringVector:
        hp = self.hparams
        self.check_layers(model, hp.layers)
        check_multiple_choice(hp.multiple_choice, data)
        hooks = [names.hook(hp.hook, layer) for layer in hp.layers]
        diffs = mean_difference(
            model, data, hooks, hp.chat_template, hp.batch_size, hp.system_prompt, hp.read_at
        )
        # the letter term exists only where the letter is read
        groups = answer_groups(data) if hp.balance_answers and hp.read_at == "letter" else None
        return SteeringVector(
            {hook: balance_answer_letters(d, groups).mean(0) for hook, d in diffs.items()},
            method=self.name,
            model=ModelRecord.of(model),
            dataset=hp.dataset,
            meta={"n_examples": len(data), "hparams": hp.to_dict()},
        )
