"""RepE / PCA control vectors (Zou et al. 2023, arXiv 2310.01405; repeng's ``pca_diff``).

Take the activation difference of each contrastive pair and keep the first principal component
of those differences: the direction along which the pairs differ most consistently. PCA fixes
a direction only up to sign, so the sign is chosen so that most pairs project positively.
The vector is the unit direction times the mean projection, so strength 1 is comparable to
CAA's mean difference. On A/B data the differences also carry the answer letter (``+-(h(A) -
h(B))`` by which letter matches), the axis of largest variance; ``balance_answers`` (default)
takes it out before the PCA, as for CAA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..contrast import Contrast, answer_groups, balance_answer_letters
from ..errors import SteeringError
from ..hparams import HParams
from ..record import ModelRecord
from .base import STEER_METHODS, SteerMethod
from .caa import check_contrast_data, mean_difference
from .vector import SteeringVector


@dataclass(kw_only=True)
class RepEHParams(HParams):
    method = "repe"
    ee2_renames: ClassVar[dict[str, str]] = {"use_chat_template": "chat_template"}
    layers: list[int] = field(default_factory=lambda: [12])
    hook: str = "hook_resid_post"
    chat_template: bool = True
    system_prompt: str = ""
    center: bool = False  # PCA on centred differences (False: repeng's pca_diff, uncentred)
    balance_answers: bool = True  # A/B data: take the answer letter out first (see caa.py)
    batch_size: int = 16
    dataset: str = ""


def first_component(diffs: Float[Tensor, "n d"], center: bool) -> tuple[Float[Tensor, " d"], float]:
    """Unit first principal direction of ``diffs`` [n, d], sign-fixed, and the mean projection."""
    x = diffs - diffs.mean(0) if center else diffs
    _, _, vh = torch.linalg.svd(x.double(), full_matrices=False)
    direction = vh[0].float()
    projections = diffs @ direction
    if (projections > 0).float().mean() < 0.5:
        direction, projections = -direction, -projections
    return direction, float(projections.mean())


@STEER_METHODS.register("repe")
class RepE(SteerMethod[Sequence[Contrast], SteeringVector]):
    name = "repe"
    hparams_class = RepEHParams
    hparams: RepEHParams

    def fit(self, model: HookedModel, data: Sequence[Contrast]) -> SteeringVector:
        hp = self.hparams
        self.check_layers(model, hp.layers)
        check_contrast_data(data, "RepE")
        if len(data) < 2:
            raise SteeringError(
                "RepE needs at least two contrastive pairs for a principal component."
            )
        hooks = [names.hook(hp.hook, layer) for layer in hp.layers]
        diffs = mean_difference(
            model, data, hooks, hp.chat_template, hp.batch_size, hp.system_prompt
        )
        groups = answer_groups(data) if hp.balance_answers else None
        directions, agreement = {}, {}
        for hook, raw in diffs.items():
            d = balance_answer_letters(raw, groups)
            direction, mean_projection = first_component(d, hp.center)
            directions[hook] = direction * mean_projection
            agreement[hook] = float(((d @ direction) > 0).float().mean())
        return SteeringVector(
            directions,
            method=self.name,
            model=ModelRecord.of(model),
            dataset=hp.dataset,
            meta={"n_examples": len(data), "sign_agreement": agreement, "hparams": hp.to_dict()},
        )
