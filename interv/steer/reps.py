"""RePS steering vector: reference-free bidirectional preference steering (Wu et al. 2025,
"Improved Representation Steering for Language Models", https://arxiv.org/abs/2505.20809).

For records ``{input, output, rejected}`` (``output`` the steered completion y_c, ``rejected``
the original one y; EasyEdit2's ``question`` / ``matching`` / ``not_matching`` are aliases) a
vector ``v`` is trained at each chosen hook (added at every position, as in ``sft``; the model
stays frozen) so that the model prefers y_c over y with ``+f·v`` added and y over y_c with the
vector taken away. A record without ``rejected`` gets the un-steered model's own greedy
continuation of its input (``output_length`` tokens at most): the "original response" RePS
contrasts the concept with. Applied at strength 1 the vector is ``+v``; negative strengths
suppress the concept, because the objective trains both directions.

Objective implemented, per batch. ``lp(y | Φ)`` is a completion's mean per-token
log-probability after the input with intervention Φ at the hooks; ``S₀(y)`` its summed
log-probability without intervention (no gradient, computed once per record before training);
f⁺ and f⁻ are drawn from ``steering_factors`` for every record and step::

    Δ⁺ = β⁺ · lp(y_c | h + f⁺v) − lp(y | h + f⁺v),   β⁺ = max(s · (S₀(y) − S₀(y_c)), β_floor)
    Δ⁻ = β⁻ · lp(y | Φ⁻) − lp(y_c | Φ⁻),             β⁻ = max(s · (S₀(y_c) − S₀(y)), β_floor)
    loss = mean over records of −log σ(Δ⁺) − log σ(Δ⁻)

with ``s = beta_scale`` (EasyEdit2's ``simpo_scaler``), ``β_floor = beta_floor`` and
``Φ⁻ = h − f⁻·v`` (``suppression: subtract``). No reference model enters the loss (β is a
constant per record); the length normalisation of the policy terms is SimPO's. As in the paper
and its reference code (AxBench's ``scaled_simpo`` loss), β compares *sequence* log-probabilities
while the Δ terms are per-token means, and factors are drawn per record rather than per batch.
One departure: for steering vectors the paper trains suppression with a nulling intervention,
``Φ⁻ = h − ReLU(h·v)/‖v‖² · v`` (EasyEdit2's ``substraction_type: null_it_out``), offered as
``suppression: null``; interv defaults to ``subtract`` because its vectors are applied by
addition (``h + strength·v``), so a negative strength then is exactly what was trained (a
``null`` vector suppresses through ``ProjectOut`` instead, untrained for negative strengths).

Intuition: SFT only pulls y_c up; RePS pulls y_c up *relative to* the model's own answer with
``+v`` and pushes it down relative to it with ``−v``, so the one direction both adds and removes
the concept, and β up-weights the records whose y_c the model finds unlikely.

Example:
    >>> from interv.steer.reps import RePSHParams
    >>> RePSHParams().steering_factors
    [1.0, 2.0]
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..adapters import HookedModel, HookFn, names
from ..adapters.frozen import frozen
from ..errors import ConfigError, SteeringError
from ..record import ModelRecord
from ..tokens import answer_ids
from .base import STEER_METHODS, SteerMethod
from .sft import HARNESS_IGNORED, TrainedVectorHParams, output_logprobs, prompt_ids
from .vector import SteeringVector

log = logging.getLogger(__name__)
SUPPRESSIONS = ("subtract", "null")
ALIASES = {"input": "question", "output": "matching", "rejected": "not_matching"}


@dataclass(kw_only=True)
class RePSHParams(TrainedVectorHParams):
    method = "reps"
    ee2_renames: ClassVar[dict[str, str]] = {
        **TrainedVectorHParams.ee2_renames,
        "substraction_type": "suppression",
        "simpo_scaler": "beta_scale",
    }
    # (loss_type, steering_factors and substraction_type are read by ``from_easyedit2``)
    ee2_ignored: ClassVar[frozenset[str]] = HARNESS_IGNORED | {
        "train_on_negative",  # both directions are always trained
        "beta",  # the other loss types' temperature and margin
        "gemma",
        "label_smoothing",
        "reference_free",  # RePS always is
        "intervention_positions",
    }
    n_epochs: int = 18  # EasyEdit2's default
    batch_size: int = 4  # records per step (each is read four times: y_c and y, +v and -v)
    output_length: int = 64  # completion tokens trained on (and greedily generated), at most
    # 1 keeps strength 1 a trained condition; 2 makes a stronger push help rather than overshoot
    steering_factors: list[float] = field(default_factory=lambda: [1.0, 2.0])
    beta_floor: float = 1.0
    beta_scale: float = 1.0
    suppression: str = "subtract"  # or "null": the paper's nulling intervention (see above)

    @classmethod
    def from_easyedit2(cls, values: dict[str, Any], source: str) -> dict[str, Any]:
        """EasyEdit2's reps keys: ``loss_type`` must be ``scaled_simpo`` (RePS's loss);
        ``substraction_type`` ``normal`` / ``null_it_out`` are ``subtract`` / ``null``; a zero
        in ``steering_factors`` (EasyEdit2's null-out marker) is dropped."""
        out = dict(values)
        loss = out.pop("loss_type", "scaled_simpo")
        if loss != "scaled_simpo":
            raise ConfigError(
                f"{source}: reps trains RePS's own objective (loss_type scaled_simpo), not "
                f"{loss!r}; drop loss_type or set it to scaled_simpo."
            )
        kind = out.pop("substraction_type", None)
        if kind is not None:
            out["substraction_type"] = {"normal": "subtract", "null_it_out": "null"}.get(
                str(kind), kind
            )
        factors = out.get("steering_factors")
        if isinstance(factors, list) and 0 in factors:
            out["steering_factors"] = [f for f in factors if f != 0]
            log.info("%s: steering factor 0 dropped (interv nulls through `suppression`).", source)
        return out

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.steering_factors or min(self.steering_factors) <= 0:
            raise ConfigError(
                f"steering_factors must be positive factors (the suppression side uses -f), got "
                f"{self.steering_factors}."
            )
        if self.beta_floor <= 0 or self.beta_scale < 0:
            raise ConfigError("beta_floor must be positive and beta_scale >= 0.")
        if self.suppression not in SUPPRESSIONS:
            raise ConfigError(
                f"suppression must be one of {', '.join(SUPPRESSIONS)}, got {self.suppression!r}."
            )


@dataclass(frozen=True)
class Pair:
    """One record's token ids (prompt, steered y_c, original y) and its two β weights."""

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    beta_pos: float = 1.0
    beta_neg: float = 1.0


@STEER_METHODS.register("reps")
class RePS(SteerMethod[Sequence[Mapping[str, Any]], SteeringVector]):
    """Returns a ``SteeringVector`` trained by RePS's bidirectional preference objective."""

    name = "reps"
    hparams_class = RePSHParams
    data_kind = "records"
    hparams: RePSHParams

    def __init__(self, hparams: RePSHParams | None = None, *, progress: bool | None = None):
        """``progress``: show a progress bar (default: when stderr is a terminal)."""
        super().__init__(hparams)
        self.progress = progress

    def fit(self, model: HookedModel, data: Sequence[Mapping[str, Any]]) -> SteeringVector:
        """``data``: records ``{input, output, rejected}`` (``rejected`` optional)."""
        hp = self.hparams
        self.check_layers(model, hp.layers)
        pairs, generated = self.pairs(model, data)
        torch.manual_seed(hp.seed)
        hooks = [names.hook(hp.hook, layer) for layer in hp.layers]
        width = model.hook_shape(hooks[0])[0]
        vectors = {h: torch.zeros(width, device=model.device, requires_grad=True) for h in hooks}
        losses = self._train(model, pairs, vectors)
        log.info("reps: %d steps, loss %.4f -> %.4f", len(losses), losses[0], losses[-1])
        return SteeringVector(
            {h: v.detach().clone() for h, v in vectors.items()},
            method=self.name,
            model=ModelRecord.of(model),
            dataset=hp.dataset or "records",
            meta={
                "losses": losses,
                "n_records": len(pairs),
                "n_generated": generated,
                "hparams": hp.to_dict(),
            },
        )

    def _train(
        self, model: HookedModel, pairs: list[Pair], vectors: dict[str, Tensor]
    ) -> list[float]:
        """AdamW on the vectors, the model frozen; the loss of every step."""
        hp = self.hparams
        optimiser = torch.optim.AdamW(vectors.values(), lr=hp.lr, weight_decay=hp.weight_decay)
        order, losses = list(range(len(pairs))), []
        rng = random.Random(hp.seed)
        steps = hp.n_epochs * -(-len(pairs) // hp.batch_size)
        hidden = None if self.progress is None else not self.progress  # None: off unless a tty
        with frozen(model), tqdm(total=steps, desc="reps", disable=hidden) as bar:
            for _ in range(hp.n_epochs):
                rng.shuffle(order)
                for begin in range(0, len(order), hp.batch_size):
                    batch = [pairs[i] for i in order[begin : begin + hp.batch_size]]
                    pos = [rng.choice(hp.steering_factors) for _ in batch]
                    neg = [rng.choice(hp.steering_factors) for _ in batch]
                    loss = reps_loss(model, batch, vectors, pos, neg, hp)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    losses.append(round(loss.item(), 5))
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
        return losses

    def pairs(
        self, model: HookedModel, data: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Pair], int]:
        """The records as token ids with their β weights, and how many ``rejected``
        completions were generated (the model's greedy continuations)."""
        hp = self.hparams
        texts = [_texts(i, r) for i, r in enumerate(data)]
        if not texts:
            raise SteeringError(
                "The dataset is empty; reps needs {input, output, rejected} records."
            )
        missing = [i for i, (_, _, rejected) in enumerate(texts) if rejected is None]
        if missing:
            log.info("reps: generating the model's own completion of %d inputs", len(missing))
        continuations = greedy_continuations(model, [texts[i][0] for i in missing], hp)
        own = dict(zip(missing, continuations, strict=True))
        pairs = []
        for i, (text, output, rejected) in enumerate(texts):
            rejected = own.get(i, rejected) or ""
            if not rejected:
                raise SteeringError(
                    f"reps record {i}: the model's greedy continuation of its input is empty "
                    f"(it ends at once): {_show(data[i])}. Give the record a `rejected` completion."
                )
            # both completions tokenised alike (as sft's outputs), so that no token tells them
            # apart but their content
            chosen, ids = (answer_ids(model, t)[: hp.output_length] for t in (output, rejected))
            prompt = prompt_ids(model, text, hp.chat_template, hp.system_prompt)
            pairs.append(Pair(prompt, chosen, ids))
        return with_betas(model, pairs, hp), len(missing)


def _texts(index: int, record: Any) -> tuple[str, str, str | None]:
    """(input, output, rejected or None) of one record, EasyEdit2's names accepted."""
    if not isinstance(record, Mapping):
        raise SteeringError(
            f"reps data must be {{input, output, rejected}} records; record {index} is a "
            f"{type(record).__name__}: {record!r:.200}."
        )
    values: dict[str, str | None] = {}
    for key, alias in ALIASES.items():
        value = record.get(key) if record.get(key) is not None else record.get(alias)
        if value is not None and not isinstance(value, str):
            raise SteeringError(
                f"reps record {index}: `{key}` must be text, got {type(value).__name__}: "
                f"{_show(record)}."
            )
        values[key] = value.strip() if value is not None else None
    text, output, rejected = values["input"], values["output"], values["rejected"]
    if not text or not output or rejected == "":
        raise SteeringError(
            f"reps record {index} needs an `input` (or `question`), the steered `output` (or "
            f"`matching`) and, optionally, the original `rejected` completion (or "
            f"`not_matching`; leave it out to use the model's own greedy continuation), none "
            f"of them empty: {_show(record)}."
        )
    if rejected == output:
        raise SteeringError(
            f"reps record {index} has the same completion as `output` and `rejected`: "
            f"{_show(record)}. Give the original (un-steered) completion as `rejected`."
        )
    return text, output, rejected


def _show(record: Any) -> str:
    text = repr(dict(record) if isinstance(record, Mapping) else record)
    return text if len(text) <= 200 else text[:200] + "...}"


def greedy_continuations(model: HookedModel, inputs: list[str], hp: RePSHParams) -> list[str]:
    """The un-steered model's greedy continuation of each input (``output_length`` tokens at
    most), from batched ``model.generate`` calls of ``4 * batch_size`` inputs."""
    out: list[str] = []
    size = 4 * hp.batch_size
    for begin in range(0, len(inputs), size):
        out += model.generate(
            inputs[begin : begin + size],
            max_new_tokens=hp.output_length,
            do_sample=False,
            chat_template=hp.chat_template,
            system_prompt=hp.system_prompt or None,
        )
    return [text.strip() for text in out]


def with_betas(model: HookedModel, pairs: list[Pair], hp: RePSHParams) -> list[Pair]:
    """The pairs with β⁺ and β⁻ from the un-steered model's sequence log-probabilities."""
    out = []
    with torch.no_grad():
        for begin in range(0, len(pairs), hp.batch_size):
            chunk = pairs[begin : begin + hp.batch_size]
            rows = [(p.prompt, p.chosen) for p in chunk] + [(p.prompt, p.rejected) for p in chunk]
            means = output_logprobs(model, rows).tolist()
            for p, c, r in zip(chunk, means[: len(chunk)], means[len(chunk) :], strict=True):
                gap = r * len(p.rejected) - c * len(p.chosen)  # S₀(y) − S₀(y_c)
                beta_pos = max(hp.beta_scale * gap, hp.beta_floor)
                beta_neg = max(-hp.beta_scale * gap, hp.beta_floor)
                out.append(Pair(p.prompt, p.chosen, p.rejected, beta_pos, beta_neg))
    return out


def reps_loss(
    model: HookedModel,
    pairs: Sequence[Pair],
    vectors: Mapping[str, Float[Tensor, " d_model"]],
    pos: Sequence[float],
    neg: Sequence[float],
    hp: RePSHParams,
) -> Float[Tensor, ""]:
    """RePS's loss on a batch (see the module docstring), with factors ``pos`` (f⁺) and ``neg``
    (f⁻) per pair, in one forward of the four readings of every pair."""
    n = len(pairs)
    rows = [(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs]
    null = hp.suppression == "null"
    signed = list(pos) * 2 + [0.0 if null else -f for f in neg] * 2
    coef = torch.tensor(signed, device=model.device)
    nulled = torch.tensor([0.0] * 2 * n + [1.0] * 2 * n, device=model.device) if null else None
    hooks = [(h, _steer(v, coef, nulled, hp.dropout)) for h, v in vectors.items()]
    lp = output_logprobs(model, rows + rows[n:] + rows[:n], hooks)
    chosen_pos, rejected_pos, rejected_neg, chosen_neg = lp.split(n)
    beta_pos = torch.tensor([p.beta_pos for p in pairs], device=lp.device)
    beta_neg = torch.tensor([p.beta_neg for p in pairs], device=lp.device)
    delta_pos = beta_pos * chosen_pos - rejected_pos
    delta_neg = beta_neg * rejected_neg - chosen_neg
    logsigmoid = torch.nn.functional.logsigmoid
    return (-logsigmoid(delta_pos) - logsigmoid(delta_neg)).mean()


def _steer(vector: Tensor, coef: Tensor, nulled: Tensor | None, dropout: float) -> HookFn:
    """``act + coef·v`` per row; rows in ``nulled`` lose their positive component along v."""

    def hook(act, ctx):
        v = torch.nn.functional.dropout(vector, dropout, training=dropout > 0)
        out = act + coef[:, None, None] * v
        if nulled is not None:
            along = torch.relu(act @ v) / v.square().sum().clamp(min=1e-12)
            out = out - (nulled[:, None] * along)[..., None] * v
        return out

    return hook
