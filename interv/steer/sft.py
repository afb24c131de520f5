"""SFT steering vector: a vector trained by language-modelling loss on target completions
(EasyEdit2's ``sft``, the supervised baseline of AxBench and RePS, arXiv 2501.17148).

For records ``{input, output}`` the vector ``v`` is added to the residual stream at each
chosen layer's block output, at every position, and trained (AdamW; the model's weights stay
frozen) to minimise the mean negative log-likelihood of the output's tokens after the input.
Applied at strength 1 it reproduces the training condition; the apply spec scales it.

Example:
    >>> from interv.steer.sft import SFTHParams
    >>> SFTHParams().lr
    0.08
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, HookFn, names
from ..adapters.frozen import frozen
from ..adapters.text import apply_chat_template, left_pad_offsets
from ..errors import ConfigError, SteeringError
from ..hparams import HParams
from ..record import ModelRecord
from ..tokens import answer_ids, tokenize
from .base import STEER_METHODS, SteerMethod
from .vector import SteeringVector

# EasyEdit2's keys of its sft/reps training harness that interv's trained vectors do not use
HARNESS_IGNORED = frozenset(
    {
        "exclude_bos",
        "max_concepts",
        "max_num_of_examples",
        "preference_pairs",
        "gradient_accumulation_steps",
        "neg_loss_weight",
        "pos_loss_weight",
        "margin_penalty_weight",
        "ref_loss_weight",
        "margin_threshold",
        "loss_output_dir",
        "inference",
        "intervention_positions_dropout",
        "intervention_type",
        "low_rank_dimension",
        "intervention_method",
        "steering_prompt_type",
    }
)


@dataclass(kw_only=True)
class TrainedVectorHParams(HParams):
    """What every steering vector trained on ``{input, output}`` records is fitted with (the
    base of ``sft``'s and ``reps``'s hyperparameters)."""

    ee2_renames: ClassVar[dict[str, str]] = {"use_chat_template": "chat_template"}
    layers: list[int] = field(default_factory=lambda: [10])
    hook: str = "hook_resid_post"
    lr: float = 0.08
    n_epochs: int = 2
    batch_size: int = 4
    weight_decay: float = 0.0
    dropout: float = 0.0  # on the vector during training
    output_length: int = 64  # output tokens trained on, at most
    chat_template: bool = False
    system_prompt: str = ""
    seed: int = 0
    dataset: str = ""

    def __post_init__(self) -> None:
        for key in ("n_epochs", "batch_size", "output_length"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}.")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.dropout < 1:
            raise ConfigError("lr must be positive, weight_decay >= 0 and dropout in [0, 1).")


@dataclass(kw_only=True)
class SFTHParams(TrainedVectorHParams):
    method = "sft"
    ee2_ignored: ClassVar[frozenset[str]] = HARNESS_IGNORED | {
        "steering_factors",
        "substraction_type",
    }


@STEER_METHODS.register("sft")
class SFT(SteerMethod[Sequence[Mapping[str, Any]], SteeringVector]):
    """Returns a ``SteeringVector`` trained to make the model say the records' outputs."""

    name = "sft"
    hparams_class = SFTHParams
    data_kind = "records"
    hparams: SFTHParams

    def fit(self, model: HookedModel, data: Sequence[Mapping[str, Any]]) -> SteeringVector:
        hp = self.hparams
        self.check_layers(model, hp.layers)
        rows = [self._row(model, r) for r in data]
        if not rows:
            raise SteeringError("The dataset is empty; sft needs {input, output} records.")
        torch.manual_seed(hp.seed)
        hooks = [names.hook(hp.hook, layer) for layer in hp.layers]
        width = model.hook_shape(hooks[0])[0]
        vectors = {h: torch.zeros(width, device=model.device, requires_grad=True) for h in hooks}
        optimiser = torch.optim.AdamW(vectors.values(), lr=hp.lr, weight_decay=hp.weight_decay)
        order, losses = list(range(len(rows))), []
        rng = random.Random(hp.seed)
        with frozen(model):
            for _ in range(hp.n_epochs):
                rng.shuffle(order)
                for begin in range(0, len(order), hp.batch_size):
                    batch = [rows[i] for i in order[begin : begin + hp.batch_size]]
                    loss = output_nll(model, batch, vectors, hp.dropout)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    losses.append(round(loss.item(), 5))
        return SteeringVector(
            {h: v.detach().clone() for h, v in vectors.items()},
            method=self.name,
            model=ModelRecord.of(model),
            dataset=hp.dataset or "records",
            meta={"losses": losses, "n_records": len(rows), "hparams": hp.to_dict()},
        )

    def _row(self, model: HookedModel, record: Mapping[str, Any]) -> tuple[list[int], list[int]]:
        hp = self.hparams
        text, output = str(record.get("input") or ""), str(record.get("output") or "").strip()
        if not output or not text.strip():
            raise SteeringError(
                f"An sft record needs an `input` and the `output` to train on: {dict(record)!r}."
            )
        prompt = prompt_ids(model, text, hp.chat_template, hp.system_prompt)
        return prompt, answer_ids(model, output)[: hp.output_length]


def prompt_ids(model: HookedModel, text: str, chat_template: bool, system_prompt: str) -> list[int]:
    """Token ids of an input as the model reads it: a user turn of its chat template, or after
    the system prompt and a blank line."""
    if chat_template:
        text = apply_chat_template(model.tokenizer, [text], system_prompt or None)[0]
    elif system_prompt:
        text = f"{system_prompt}\n\n{text}"
    return tokenize(model, [text], special_tokens=not chat_template)[0]


def output_logprobs(
    model: HookedModel,
    rows: Sequence[tuple[list[int], list[int]]],
    hooks: Sequence[tuple[str, HookFn]] = (),
) -> Float[Tensor, " row"]:
    """Each row's mean log-probability of its output's tokens after its prompt (rows are
    ``(prompt ids, output ids)``), in one left-padded forward with ``hooks`` running."""
    batch, starts = left_pad_offsets(
        [p + t for p, t in rows], model.tokenizer.pad_token_id, model.device
    )
    logits = model.forward(batch, hooks=list(hooks))
    means = []
    for row, ((prompt, target), start) in enumerate(zip(rows, starts, strict=True)):
        first = start + len(prompt)  # the first output token's column
        logprobs = logits[row, first - 1 : first - 1 + len(target)].float().log_softmax(-1)
        picked = logprobs.gather(-1, torch.tensor(target, device=logits.device)[:, None])
        means.append(picked.mean())
    return torch.stack(means)


def output_nll(
    model: HookedModel,
    rows: Sequence[tuple[list[int], list[int]]],
    vectors: Mapping[str, Float[Tensor, " d_model"]],
    dropout: float = 0.0,
) -> Float[Tensor, ""]:
    """Mean over rows of each output's mean token NLL, with ``vectors`` added at their hooks."""

    def add(vector: Float[Tensor, " d_model"]) -> HookFn:
        def hook(act, ctx):
            return act + torch.nn.functional.dropout(vector, dropout, training=dropout > 0)

        return hook

    return -output_logprobs(model, rows, [(h, add(v)) for h, v in vectors.items()]).mean()
