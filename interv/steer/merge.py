"""Merging steering vectors: linear, TIES and DARE (as in model merging, per hook).

* linear: ``sum_i w_i v_i`` (divided by ``sum_i w_i`` with ``normalize``);
* TIES (Yadav et al. 2023, arXiv 2306.01708): trim each vector to its largest-magnitude
  ``density`` fraction, elect a sign per coordinate by total mass, average the values that
  agree with it;
* DARE (Yu et al. 2023, arXiv 2311.03099): drop each coordinate with probability
  ``1 - density`` and rescale the rest by ``1 / density``, then merge linearly
  (``dare_linear``) or with TIES (``dare_ties``).

The vectors come as data (``fit(model, [v1, v2])``) or from ``vector_paths`` (interv vectors,
EasyEdit2 ``layer_<L>.pt`` files or GGUF control vectors). EasyEdit2's ``merge_vector`` files
name the mode ``method``; that key is read as ``mode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..errors import ConfigError, ModelMismatchError, SteeringError
from ..hparams import HParams
from .base import STEER_METHODS, SteerMethod
from .library import load
from .vector import SteeringVector

MODES = ("linear", "ties", "dare_linear", "dare_ties")


@dataclass(kw_only=True)
class MergeHParams(HParams):
    method = "merge"
    # EasyEdit2's own merge files spell densities "desities"; its users carry the typo
    ee2_renames: ClassVar[dict[str, str]] = {"method": "mode", "desities": "densities"}
    mode: str = "linear"
    weights: list[float] = field(default_factory=list)  # one per vector (default: all 1)
    density: float = 0.5  # fraction kept by TIES trimming / DARE dropping
    densities: list[float] = field(default_factory=list)  # one per vector (overrides density)
    normalize: bool = False  # divide by the sum of the weights
    seed: int = 0
    vector_paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"`mode` must be one of {', '.join(MODES)}, not {self.mode!r}.")
        if not 0 < self.density <= 1:
            raise ConfigError(f"`density` must be in (0, 1], got {self.density}.")
        if any(not 0 < d <= 1 for d in self.densities):
            raise ConfigError(f"`densities` must hold values in (0, 1], got {self.densities}.")
        if self.vector_paths and len(self.vector_paths) < 2:
            raise ConfigError("`vector_paths` must list at least two vectors to merge.")


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


def merge_tensors(vectors: Sequence[Float[Tensor, " d"]], hp: MergeHParams) -> Float[Tensor, " d"]:
    """Merge same-shaped directions by ``hp.mode``."""
    weights = hp.weights or [1.0] * len(vectors)
    if len(weights) != len(vectors):
        raise ConfigError(f"`weights` has {len(weights)} values for {len(vectors)} vectors.")
    densities = hp.densities or [hp.density]
    if len(densities) == 1:
        densities = densities * len(vectors)
    if len(densities) != len(vectors):
        raise ConfigError(f"`densities` has {len(hp.densities)} values for {len(vectors)} vectors.")
    scaled = [w * v.float() for w, v in zip(weights, vectors, strict=True)]
    if hp.mode.startswith("dare"):
        generator = torch.Generator().manual_seed(hp.seed)
        scaled = [
            v * (torch.rand(v.shape, generator=generator) < d) / d
            for v, d in zip(scaled, densities, strict=True)
        ]
    if hp.mode == "ties":
        scaled = [_trim(v, d) for v, d in zip(scaled, densities, strict=True)]
    merged = _ties(scaled) if hp.mode.endswith("ties") else torch.stack(scaled).sum(0)
    if hp.normalize:
        merged = merged / sum(weights)
    return merged


@STEER_METHODS.register("merge")
@STEER_METHODS.register("merge_vector")
class Merge(SteerMethod[Sequence[SteeringVector] | None, SteeringVector]):
    name = "merge"
    hparams_class = MergeHParams
    data_kind = "vectors"
    hparams: MergeHParams

    @property
    def needs_data(self) -> bool:
        return not self.hparams.vector_paths

    def fit(
        self, model: HookedModel | None, data: Sequence[SteeringVector] | None = None
    ) -> SteeringVector:
        """Merge ``data`` (the vectors) hook by hook; a hook missing from a vector counts as 0."""
        hp = self.hparams
        vectors = list(data) if data else _load_all(hp.vector_paths)
        if len(vectors) < 2:
            raise SteeringError("Merging needs at least two vectors.")
        records = [v.model for v in vectors if v.model is not None]
        if any(not records[0].compatible(r) for r in records[1:]):
            raise ModelMismatchError("Cannot merge vectors computed on different models.")
        if model is not None:
            for vector in vectors:
                vector.check(model)
        hooks = list(dict.fromkeys(h for v in vectors for h in v.hooks))
        merged = {}
        for hook in hooks:
            like = next(v.directions[hook] for v in vectors if hook in v.directions)
            parts = [
                v.directions.get(hook, torch.zeros_like(like)) * v.recommended_scale
                for v in vectors
            ]
            merged[hook] = merge_tensors(parts, hp)
        return SteeringVector(
            merged,
            method=f"merge:{hp.mode}",
            model=records[0] if records else None,
            dataset="+".join(v.dataset for v in vectors if v.dataset),
            meta={"sources": [v.method for v in vectors], "hparams": hp.to_dict()},
        )


def _load_all(paths: Sequence[str]) -> list[SteeringVector]:
    vectors = []
    for path in paths:
        vector = load(path)
        if not isinstance(vector, SteeringVector):
            raise SteeringError(f"{path} is not a steering vector; only vectors can be merged.")
        vectors.append(vector)
    return vectors
