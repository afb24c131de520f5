"""Merging steering vectors: linear, TIES and DARE (as in model merging, per hook).

* linear: ``sum_i w_i v_i``;
* TIES (Yadav et al. 2023): trim each vector to its largest-magnitude ``density`` fraction,
  elect a sign per coordinate by total mass, average the values that agree with it;
* DARE (Yu et al. 2023): drop each coordinate with probability ``1 - density`` and rescale
  the rest by ``1 / density``, then merge linearly (``dare_linear``) or with TIES
  (``dare_ties``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..adapters import HookedModel
from ..hparams import HParams
from .base import STEER_METHODS, SteerMethod
from .vector import SteeringVector

MODES = ("linear", "ties", "dare_linear", "dare_ties")


@dataclass(kw_only=True)
class MergeHParams(HParams):
    method = "merge"
    mode: str = "linear"
    weights: list[float] = field(default_factory=list)  # one per vector (default: all 1)
    density: float = 0.5  # fraction kept by TIES trimming / DARE dropping
    seed: int = 0
    vector_paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"`mode` must be one of {', '.join(MODES)}, not {self.mode!r}.")
        if not 0 < self.density <= 1:
            raise ValueError(f"`density` must be in (0, 1], got {self.density}.")


def _trim(v: Tensor, density: float) -> Tensor:
    k = max(1, int(round(density * v.numel())))
    threshold = v.abs().topk(k).values[-1]
    return torch.where(v.abs() >= threshold, v, torch.zeros_like(v))


def _ties(vectors: list[Tensor]) -> Tensor:
    stacked = torch.stack(vectors)
    sign = torch.sign(stacked.sum(0))
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    total = (stacked * agree).sum(0)
    count = agree.sum(0).clamp(min=1)
    return total / count


def merge_tensors(vectors: Sequence[Tensor], hp: MergeHParams) -> Tensor:
    weights = hp.weights or [1.0] * len(vectors)
    if len(weights) != len(vectors):
        raise ValueError(f"`weights` has {len(weights)} values for {len(vectors)} vectors.")
    scaled = [w * v.float() for w, v in zip(weights, vectors)]
    if hp.mode.startswith("dare"):
        generator = torch.Generator().manual_seed(hp.seed)
        scaled = [v * (torch.rand(v.shape, generator=generator) < hp.density) / hp.density for v in scaled]
    if hp.mode == "ties":
        scaled = [_trim(v, hp.density) for v in scaled]
    if hp.mode.endswith("ties"):
        return _ties(scaled)
    return torch.stack(scaled).sum(0)


@STEER_METHODS.register("merge")
class Merge(SteerMethod):
    name = "merge"
    hparams_class = MergeHParams

    def fit(self, model: HookedModel | None, data: Sequence[SteeringVector]) -> SteeringVector:
        """Merge ``data`` (the vectors) hook by hook; a hook missing from a vector counts as 0."""
        hp: MergeHParams = self.hparams  # type: ignore[assignment]
        vectors = list(data)
        if len(vectors) < 2:
            raise ValueError("Merging needs at least two vectors.")
        prints = {v.model.get("fingerprint") for v in vectors} - {None}
        if len(prints) > 1:
            raise ValueError("Cannot merge vectors computed on different models.")
        hooks = list(dict.fromkeys(h for v in vectors for h in v.hooks))
        merged = {}
        for hook in hooks:
            like = next(v.directions[hook] for v in vectors if hook in v.directions)
            parts = [v.directions.get(hook, torch.zeros_like(like)) for v in vectors]
            merged[hook] = merge_tensors(parts, hp)
        return SteeringVector(
            merged, method=f"merge:{hp.mode}", model=vectors[0].model,
            dataset="+".join(v.dataset for v in vectors if v.dataset),
            meta={"sources": [v.method for v in vectors], "hparams": hp.to_dict()},
        )
