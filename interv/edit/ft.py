"""FT-L and FT-M: constrained fine-tuning of chosen MLP weights to write a fact.

The simplest editor: run gradient steps (Adam) on the weights of a few layers until the model
continues ``prompt`` with ``target_new``, then hand the change back as a weight patch. Two
objectives, named as in EasyEdit (``objective_optimization``) and its survey
(https://arxiv.org/abs/2401.01286):

* **FT-L** (``prompt_last``, the ROME paper's baseline, https://arxiv.org/abs/2202.05262): the
  loss is read at the last prompt position only, as the mean negative log-probability of each
  target token there (for a one-token target: plain next-token cross-entropy).
* **FT-M** (``target_new``): teacher-forced cross-entropy over the target tokens of
  ``prompt + target_new``, prompt positions masked out.

``norm_constraint`` keeps every changed element within ``± norm_constraint`` of its original
value (EasyEdit's clamp), which limits the damage to unrelated facts; optimisation stops early
once the mean loss falls below ``early_stop_loss``. The weights are optimised in place and put
back bit-exactly afterwards, so ``compute`` leaves the model as it found it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..errors import ConfigError, EditError
from ..hparams import HParams
from ..patch import PatchSet, WeightPatch
from ..requests import EditRequest
from ..tokens import answer_ids
from .base import EDIT_METHODS, EditMethod

log = logging.getLogger(__name__)

OBJECTIVES = ("prompt_last", "target_new")


@dataclass(kw_only=True)
class FTHParams(HParams):
    """Hyperparameters shared by FT-L and FT-M (EasyEdit's key names).

    ``weights`` are canonical weight names inside a block (``mlp.W_out``, ``mlp.W_in``...),
    edited at every layer in ``layers``. Defaults are tuned for SmolLM2-135M-Instruct.
    """

    objective: ClassVar[str] = ""
    layers: list[int] = field(default_factory=lambda: [5])
    weights: list[str] = field(default_factory=lambda: ["mlp.W_out"])
    num_steps: int = 25
    lr: float = 5e-4
    weight_decay: float = 0.0
    norm_constraint: float | None = None
    objective_optimization: str = ""
    batch_size: int = 1
    max_length: int = 40
    early_stop_loss: float = 1e-2

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True, source: str = "") -> FTHParams:
        if data.get("norm_constraint") is False:  # EasyEdit's way of writing "off"
            data = {**data, "norm_constraint": None}
        return super().from_dict(data, strict=strict, source=source)

    def __post_init__(self) -> None:
        if not self.objective_optimization:
            self.objective_optimization = self.objective
        if self.objective_optimization not in OBJECTIVES:
            raise ConfigError(
                f"objective_optimization must be one of {OBJECTIVES}, got "
                f"{self.objective_optimization!r}."
            )
        if self.objective and self.objective_optimization != self.objective:
            other = "ft-l" if self.objective_optimization == "prompt_last" else "ft-m"
            raise ConfigError(
                f"{self.method} optimises {self.objective!r}; objective_optimization="
                f"{self.objective_optimization!r} is method {other!r}. Use method: {other}."
            )
        if self.norm_constraint is not None and (
            isinstance(self.norm_constraint, bool) or self.norm_constraint <= 0
        ):
            raise ConfigError(
                f"norm_constraint must be a positive number or null, got {self.norm_constraint!r}."
            )
        if not self.layers or not self.weights:
            raise ConfigError("layers and weights must each name at least one entry.")
        for name, value in (
            ("num_steps", self.num_steps),
            ("batch_size", self.batch_size),
            ("max_length", self.max_length),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}.")
        if self.lr <= 0 or self.weight_decay < 0 or self.early_stop_loss < 0:
            raise ConfigError("lr must be positive; weight_decay and early_stop_loss non-negative.")


@dataclass(kw_only=True)
class FTLHParams(FTHParams):
    method = "ft-l"
    objective = "prompt_last"
    norm_constraint: float | None = 7e-3


@dataclass(kw_only=True)
class FTMHParams(FTHParams):
    method = "ft-m"
    objective = "target_new"
    norm_constraint: float | None = 7e-3


class FineTune(EditMethod):
    """Adam on the chosen weights; the result is a dense delta per weight."""

    batchable = True

    hparams: FTHParams

    def compute(self, model: HookedModel, requests: Sequence[EditRequest]) -> PatchSet:
        hp = self.hparams
        if not requests:
            raise EditError(f"{self.name}: no requests to edit.")
        self.check_layers(model, hp.layers)
        edited = [names.weight(w, layer) for layer in hp.layers for w in hp.weights]
        views = {name: model.weight(name) for name in edited}  # unknown names fail here
        originals = {name: view.detach().clone() for name, view in views.items()}
        examples = [_encode(model, r, hp.max_length) for r in requests]
        params = _unique([model.native_weight(name)[1] for name in edited])
        with only_trainable(model, params):
            try:
                self._optimise(model, examples, params, views, originals)
                deltas = {n: (views[n].detach() - originals[n]).clone() for n in edited}
            finally:
                with torch.no_grad():
                    for name, view in views.items():
                        view.copy_(originals[name])
        return self.patch_set(model, requests, [WeightPatch(n, delta=d) for n, d in deltas.items()])

    def _optimise(self, model, examples, params, views, originals) -> None:
        hp = self.hparams
        opt = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        for step in range(hp.num_steps):
            losses = []
            for start in range(0, len(examples), hp.batch_size):
                chunk = examples[start : start + hp.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = _loss(model, chunk, hp.objective_optimization)
                losses.append((loss.item(), len(chunk)))
                if loss.item() >= hp.early_stop_loss:
                    loss.backward()
                    opt.step()
                    if hp.norm_constraint is not None:
                        _clamp(views, originals, hp.norm_constraint)
            mean = sum(v * n for v, n in losses) / len(examples)
            log.info("%s step %d: loss %.4f", self.name, step, mean)
            self.report(f"step {step + 1}/{hp.num_steps}, loss {mean:.3f}")
            if mean < hp.early_stop_loss:
                break
        opt.zero_grad(set_to_none=True)


@dataclass
class _Example:
    prompt: list[int]
    target: list[int]


def _encode(model: HookedModel, request: EditRequest, max_length: int) -> _Example:
    target = answer_ids(model, request.target_new)[:max_length]
    prompt = model.tokenizer(request.prompt)["input_ids"]
    keep = max(1, max_length - len(target))
    return _Example(prompt[-keep:], target)


def _loss(model: HookedModel, chunk: list[_Example], objective: str) -> Tensor:
    """Mean over requests of the objective's per-request negative log-likelihood."""
    with_target = objective == "target_new"
    rows = [e.prompt + e.target if with_target else e.prompt for e in chunk]
    width = max(len(r) for r in rows)
    pad = model.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=model.device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device)
    logprobs = model.forward({"input_ids": ids, "attention_mask": mask}).log_softmax(-1)
    per_request = []
    for row, example in enumerate(chunk):
        target = torch.tensor(example.target, device=model.device)
        if with_target:  # position p predicts token p + 1; targets fill the last len(target)
            n = len(example.target)
            picked = logprobs[row, width - n - 1 : width - 1].gather(-1, target[:, None])
        else:  # every target token scored at the last prompt position
            picked = logprobs[row, width - 1, target]
        per_request.append(-picked.mean())
    return torch.stack(per_request).mean()


def _clamp(views: dict[str, Tensor], originals: dict[str, Tensor], eps: float) -> None:
    with torch.no_grad():
        for name, view in views.items():
            view.copy_(torch.clamp(view, originals[name] - eps, originals[name] + eps))


def _unique(params: list[Tensor]) -> list[Tensor]:
    seen: dict[int, Tensor] = {}
    for p in params:
        seen.setdefault(id(p), p)
    return list(seen.values())


@contextmanager
def only_trainable(model: HookedModel, params: list[Float[Tensor, "..."]]) -> Iterator[None]:
    """Only ``params`` need gradients (the layers below the edit then cost no backward)."""
    flags = {id(p): p.requires_grad for p in model.hf_model.parameters()}
    wanted = {id(p) for p in params}
    for p in model.hf_model.parameters():
        p.requires_grad_(id(p) in wanted)
    try:
        yield
    finally:
        for p in model.hf_model.parameters():
            p.requires_grad_(flags[id(p)])
            p.grad = None


@EDIT_METHODS.register("ft-l")
class FTL(FineTune):
    name = "ft-l"
    hparams_class = FTLHParams


@EDIT_METHODS.register("ft-m")
class FTM(FineTune):
    name = "ft-m"
    hparams_class = FTMHParams
