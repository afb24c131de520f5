"""Steering with SAE features: the math behind the ``sta`` and ``sae_feature`` methods.

STA (Steering Target Atoms, Wang et al. 2025, arXiv 2505.20322) reads contrastive examples
like CAA, but also encodes each token with an SAE. Per feature it compares the two sides:

* amplitude: the mean over pairs of (positive - negative) span-mean activation;
* frequency: on how many more positive than negative examples the feature fires.

Features whose amplitude and frequency differences agree in sign and are both in the top
``1 - trim`` fraction (``mode="act_and_freq"``; or either alone) are the "target atoms"; the
steering direction is their amplitude differences times their decoder rows, rescaled to the
norm of the CAA vector read in the same pass. Restricting the CAA difference to a few
interpretable, consistently-firing features removes the parts of it that do not separate the
behaviours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ..adapters import HookedModel
from ..adapters.text import left_pad_ids
from .errors import SAEError
from .hooked import HookedSAE

MODES = ("act_and_freq", "only_act", "only_freq")


@dataclass
class ContrastStats:
    """Per-example span means at one hook: raw activations and SAE codes, both sides."""

    pos_acts: Float[Tensor, "n d_in"]
    neg_acts: Float[Tensor, "n d_in"]
    pos_codes: Float[Tensor, "n d_sae"]
    neg_codes: Float[Tensor, "n d_sae"]
    # A/B data: which items match with the first letter; the means then weigh both letters
    # equally so the answer letter cancels (``interv.steer.caa.answer_groups``)
    groups: Bool[Tensor, " n"] | None = None

    def _mean(self, diffs: Tensor) -> Tensor:
        from ..steer.caa import balance_answer_letters

        return balance_answer_letters(diffs, self.groups).mean(0)

    @property
    def caa(self) -> Float[Tensor, " d_in"]:
        return self._mean(self.pos_acts - self.neg_acts)

    @property
    def act_diff(self) -> Float[Tensor, " d_sae"]:
        return self._mean(self.pos_codes - self.neg_codes)

    @property
    def freq_diff(self) -> Float[Tensor, " d_sae"]:
        """(examples where the feature fires: positive - negative) / number of pairs."""
        return self._mean((self.pos_codes > 0).float() - (self.neg_codes > 0).float())


@torch.no_grad()
def span_means(
    model: HookedModel,
    sae: HookedSAE,
    token_lists: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int]],
    batch_size: int = 16,
) -> tuple[Float[Tensor, "n d_in"], Float[Tensor, "n d_sae"]]:
    """Each text's mean activation and mean SAE code over its span (codes are taken per
    token, then averaged, as STA does)."""
    from .activations import stop_layer

    order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    acts_out = torch.zeros(len(token_lists), sae.d_in)
    codes_out = torch.zeros(len(token_lists), sae.d_sae)
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        width = max(len(token_lists[i]) for i in chunk)
        _, cache = model.run_with_cache(
            left_pad_ids([token_lists[i] for i in chunk], model.tokenizer.pad_token_id, model.device),
            [sae.hook_name],
            stop_at_layer=stop_layer(sae.hook_name),
        )
        acts = cache[sae.hook_name].flatten(2)
        for row, i in enumerate(chunk):
            offset = width - len(token_lists[i])
            start, end = spans[i]
            x = acts[row, offset + start : offset + end].float()
            acts_out[i] = x.mean(0).cpu()
            codes_out[i] = sae.encode(x).float().mean(0).cpu()
    return acts_out, codes_out


def _signed_minmax(x: Tensor) -> Tensor:
    """Magnitudes rescaled to [0, 1] (min to max), sign kept (STA's normalisation)."""
    size = x.abs()
    span = size.max() - size.min()
    return x.sign() * ((size - size.min()) / span if span > 0 else torch.zeros_like(size))


def _top_fraction(score: Tensor, keep: float) -> Tensor:
    """Features in the top ``keep`` fraction of ``score`` (>= 0); a zero score is never kept."""
    n = max(1, math.ceil(keep * score.numel()))
    threshold = score.sort(descending=True).values[min(n, score.numel()) - 1]
    return (score >= threshold) & (score > 0)


def select_features(
    act_diff: Float[Tensor, " d_sae"],
    freq_diff: Float[Tensor, " d_sae"],
    *,
    mode: str = "act_and_freq",
    trim: float = 0.65,
    act_threshold: float = 0.0,
    freq_threshold: float = 0.0,
    top_k: int | None = None,
) -> Bool[Tensor, " d_sae"]:
    """STA's target atoms: a mask over features.

    ``trim``: keep the top ``1 - trim`` fraction by amplitude (|act_diff|) and by frequency
    score (|freq_diff|, counted only where its sign agrees with act_diff); ``act_threshold``
    and ``freq_threshold`` are absolute floors on the two; ``top_k`` keeps at most that many
    of the selected features, by amplitude.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
    if not 0 <= trim < 1:
        raise ValueError(f"trim must be in [0, 1), got {trim}.")
    norm_act, norm_freq = _signed_minmax(act_diff), _signed_minmax(freq_diff)
    agree = torch.sign(norm_act) == torch.sign(norm_freq)
    freq_score = torch.where(agree, norm_freq.abs(), torch.zeros_like(norm_freq))
    act_mask = _top_fraction(act_diff.abs(), 1 - trim) & (act_diff.abs() >= act_threshold)
    freq_mask = _top_fraction(freq_score, 1 - trim) & (freq_diff.abs() >= freq_threshold)
    mask = {"act_and_freq": act_mask & freq_mask, "only_act": act_mask, "only_freq": freq_mask}[
        mode
    ]
    if top_k is not None and int(mask.sum()) > top_k:
        ranked = torch.where(mask, act_diff.abs(), torch.full_like(act_diff, -1.0))
        keep = ranked.topk(top_k).indices
        mask = torch.zeros_like(mask)
        mask[keep] = True
    return mask


def sta_direction(
    sae: HookedSAE,
    stats: ContrastStats,
    mask: Bool[Tensor, " d_sae"],
    match_norm: bool = True,
) -> tuple[Float[Tensor, " d_in"], list[int], list[float]]:
    """The STA vector and its (features, values): ``sum values[k] * W_dec[features[k]]``."""
    features = mask.nonzero().flatten().tolist()
    if not features:
        raise SAEError(
            "STA selected no feature: no SAE feature separates the two sides. Lower `trim` or "
            "the thresholds, use mode='only_act', or give more contrastive pairs."
        )
    values = stats.act_diff[features]
    direction = values @ sae.W_dec.detach().float().cpu()[features]
    if match_norm:
        norm = float(direction.norm())
        if norm == 0:
            raise SAEError("The selected features' decoder rows cancel out; nothing to steer with.")
        scale = float(stats.caa.norm()) / norm
        direction, values = direction * scale, values * scale
    return direction, features, [float(v) for v in values]


def feature_direction(
    sae: HookedSAE, features: Sequence[int], strengths: Sequence[float]
) -> Float[Tensor, " d_in"]:
    """``sum strengths[k] * W_dec[features[k]]`` (the data-free ``sae_feature`` vector)."""
    index = sae.check_features(features)
    if len(strengths) != len(index):
        raise SAEError(
            f"{len(strengths)} strengths for {len(index)} features; give one per feature."
        )
    rows = sae.W_dec.detach().float().cpu()[index]
    return torch.tensor([float(s) for s in strengths]) @ rows


def feature_graph(
    vector: Any, sae: HookedSAE, scale: float | None = None, **node_fields: Any
) -> Any:
    """The intervention graph of an SAE-feature steering vector: one ``SAEFeature`` node that
    adds the features' decoder rows (``vector.meta`` features/values), at strength ``scale``
    (default: the vector's recommended scale). Saved graphs name the SAE by its id."""
    from ..graph import Graph, SAEFeature

    meta = vector.meta
    if "features" not in meta or "values" not in meta:
        raise SAEError(
            "This vector does not record SAE features; it was not made by sta or sae_feature."
        )
    if meta.get("sae") not in (None, sae.id):
        raise SAEError(f"The vector was made with SAE {meta['sae']!r}, not {sae.id!r}.")
    strength = vector.recommended_scale if scale is None else scale
    node = SAEFeature(
        sae,
        list(meta["features"]),
        mode="add",
        values=list(meta["values"]),
        strength=strength,
        sae_id=sae.id,
        name=vector.method or "sae",
        **node_fields,
    )
    return Graph([node], meta={"method": vector.method, "hparams": meta.get("hparams", {})})
