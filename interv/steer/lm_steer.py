"""LM-Steer: a learned linear transform of the final hidden state (Han et al. 2024,
arXiv 2305.12798).

LM-Steer shows that shifting the output embeddings by a linear map, ``h -> h + eps * s * h W``,
steers a language model's style, and that ``W`` can be learned from labelled text with the
ordinary LM loss: texts with the wanted label are trained with ``s = +1``, the others with
``s = -1``. ``W = P1 @ P2.T`` is low rank. The model stays frozen, so the final hidden states are
read once and cached; training only touches the small matrices. The result is a graph with
one ``Transform(residual=True)`` node at ``ln_final.hook_normalized`` (a ``SteeringGraph``);
its strength is ``s`` (EasyEdit2's ``steer_values``), so a multiplier of -1 steers the other
way.

As in the paper's sentiment recipe (``--dummy_steer``), a second transform is trained beside
it at ``+1`` on every text and then dropped (``dummy_steer``). It soaks up what all the
training texts share, their domain and style (SST-2 is lower-cased film reviews with a space
before each punctuation mark). Without it the signed transform learns that style as well: the
final state already knows a sentence's sentiment, so a map of the form ``s * h W`` that reads
a sentiment feature of ``h`` gives the same style push to both labels, and steering then pushes
the style (the tokens " .", " ," and " film") instead of the sentiment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..adapters import HookedModel
from ..errors import ConfigError, SteeringError, UnknownNameError
from ..files import provenance
from ..graph import Graph, Transform
from ..hparams import HParams
from ..record import ModelRecord
from ..tokens import tokenize
from .activations import read_token_states
from .base import STEER_METHODS, SteerMethod
from .graphs import SteeringGraph

log = logging.getLogger(__name__)
Labelled = Sequence[tuple[str, int]]


@dataclass(kw_only=True)
class LMSteerHParams(HParams):
    method = "lm_steer"
    ee2_ignored: ClassVar[frozenset[str]] = frozenset(
        {
            "adapted_component",
            "num_steers",
            "training_steer",
            "low_resource_mode",
            "subset",
            "log_step",
            "gamma_mean",
            "optimizer",
            "steer_values",
        }
    )
    adaptor_class: str = "multiply"
    hook: str = "ln_final.hook_normalized"
    rank: int = 16
    epsilon: float = 1e-3
    init_var: float = 1e-2
    lr: float = 1e-2
    n_steps: int = 300
    batch_size: int = 32  # texts per step
    max_length: int = 64  # tokens per text
    regularization: float = 0.0
    dummy_steer: bool = True  # train a label-free transform beside it and drop it (see above)
    seed: int = 0
    dataset: str = ""

    @classmethod
    def from_easyedit2(cls, values: dict[str, Any], source: str) -> dict[str, Any]:
        """EasyEdit2's ``dummy_steer`` is the index of the always-on steer (or null for none):
        any index is ``dummy_steer: true``."""
        out = dict(values)
        if "dummy_steer" in out and not isinstance(out["dummy_steer"], bool):
            out["dummy_steer"] = out["dummy_steer"] is not None
        return out

    def __post_init__(self) -> None:
        if self.adaptor_class != "multiply":
            raise ConfigError(
                f"adaptor_class {self.adaptor_class!r} is not supported; interv's LM-Steer learns "
                "the 'multiply' transform (for an additive shift use caa or mean_diff)."
            )
        for name in ("rank", "n_steps", "batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        if self.epsilon <= 0 or self.lr <= 0:
            raise ConfigError("`epsilon` and `lr` must be > 0.")


def check_labelled(data: Labelled) -> list[tuple[str, int]]:
    """Texts with labels 1 (steer towards) and 0 or -1 (away); both labels must occur."""
    rows = [(text, int(label)) for text, label in data if text and text.strip()]
    if not rows:
        raise SteeringError("The dataset is empty; LM-Steer needs labelled texts.")
    labels = {label for _, label in rows}
    if not labels <= {-1, 0, 1}:
        raise SteeringError(f"LM-Steer labels must be 1 and 0 (or -1), got {sorted(labels)}.")
    if len({label > 0 for label in labels}) < 2:
        raise SteeringError(
            "The dataset is one-sided: every text has the same label. LM-Steer needs texts of "
            "both labels (positive +1, negative -1)."
        )
    return rows


def _cached_states(model: HookedModel, rows: list[tuple[str, int]], hp: LMSteerHParams):
    ids = [t[: hp.max_length] for t in tokenize(model, [text for text, _ in rows])]
    keep = [i for i, t in enumerate(ids) if len(t) >= 2]
    states = read_token_states(model, [ids[i] for i in keep], hp.hook)
    inputs = [s[:-1] for s in states]
    targets = [torch.tensor(ids[i][1:]) for i in keep]
    signs = [1.0 if rows[i][1] > 0 else -1.0 for i in keep]
    return inputs, targets, signs


def train_transform(
    unembed: Float[Tensor, "d_model d_vocab"],
    inputs: list[Float[Tensor, "_pos d_model"]],
    targets: list[Int[Tensor, " _pos"]],
    signs: list[float],
    hp: LMSteerHParams,
) -> tuple[Float[Tensor, "d_model d_model"], list[float]]:
    """Learn ``eps * P1 @ P2.T`` with the LM loss on cached states; returns it and the losses.

    The logits ``(h + eps s h P1 P2ᵀ + eps h Q1 Q2ᵀ) W_U`` (``Q`` the dummy steer, at +1 on
    every text, left out without ``dummy_steer`` and never returned) are computed as
    ``h W_U + [eps s h P1, eps h Q1] [P2ᵀ W_U; Q2ᵀ W_U]`` in one ``addmm``: the full-vocabulary
    product ``h W_U`` needs no gradient, so the backward runs rank-``r`` products instead of
    ``d_vocab x d_model``.
    """
    d = unembed.shape[0]
    gen = torch.Generator().manual_seed(hp.seed)
    pairs = 2 if hp.dummy_steer else 1
    params = [
        (torch.randn(d, hp.rank, generator=gen) * hp.init_var).requires_grad_()
        for _ in range(2 * pairs)
    ]
    optimiser = torch.optim.Adam(params, lr=hp.lr)
    weight = unembed.detach().float()
    losses = []
    for step in range(hp.n_steps):
        pick = torch.randint(
            len(inputs), (min(hp.batch_size, len(inputs)),), generator=gen
        ).tolist()
        h = torch.cat([inputs[i] for i in pick])
        t = torch.cat([targets[i] for i in pick])
        s = torch.cat([torch.full((len(inputs[i]),), signs[i]) for i in pick])
        with torch.no_grad():
            base = h @ weight
        signed = [s[:, None], torch.ones_like(s)[:, None]][:pairs]
        left = torch.cat([sign * (h @ p) for sign, p in zip(signed, params[::2], strict=True)], 1)
        right = torch.cat([p.T @ weight for p in params[1::2]])
        loss = torch.nn.functional.cross_entropy(torch.addmm(base, hp.epsilon * left, right), t)
        if hp.regularization:
            loss = loss + hp.regularization * sum(p.square().sum() for p in params)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if step % 50 == 0:
            log.info("lm_steer step %d loss %.4f", step, losses[-1])
    return (hp.epsilon * params[0] @ params[1].T).detach(), losses


@STEER_METHODS.register("lm_steer")
class LMSteer(SteerMethod[Labelled, SteeringGraph]):
    name = "lm_steer"
    hparams_class = LMSteerHParams
    data_kind = "labelled"
    hparams: LMSteerHParams

    def fit(self, model: HookedModel, data: Labelled) -> SteeringGraph:
        hp = self.hparams
        rows = check_labelled(data)
        if hp.hook not in model.hook_names():
            raise UnknownNameError("hook", hp.hook, model.hook_names())
        inputs, targets, signs = _cached_states(model, rows, hp)
        matrix, losses = train_transform(model.weight("unembed.W_U"), inputs, targets, signs, hp)
        node = Transform(hp.hook, matrix, residual=True, name="lm_steer")
        meta = {
            **provenance(),
            "kind": "graph",
            "method": self.name,
            "dataset": hp.dataset,
            "recommended_scale": 1.0,
            "n_texts": len(rows),
            "loss_first": losses[0],
            "loss_last": losses[-1],
            "hparams": hp.to_dict(),
        }
        return SteeringGraph(Graph([node], model=ModelRecord.of(model), meta=meta))
