"""STA: Steering Target Atoms (Wang et al. 2025, arXiv 2505.20322; EasyEdit2's ``sta``).

A CAA pass over contrastive examples that also encodes every token with a sparse autoencoder.
Per feature it compares the two sides:

* amplitude: the mean over pairs of (positive - negative) span-mean activation;
* frequency: on how many more positive than negative examples the feature fires.

Features whose amplitude and frequency differences agree in sign and are both in the top
``1 - trim`` fraction (``mode="act_and_freq"``; or either alone) are the "target atoms"; the
steering direction is their amplitude differences times their decoder rows, rescaled to the
norm of the CAA vector read in the same pass. It steers like CAA, but only along interpretable
features that consistently separate the behaviours. ``STA.graph`` turns the vector into an
``SAEFeature`` graph node (``interv.steer.sae_feature.feature_graph``).

Example (with the default model)::

    import interv
    from interv.data.steering import convsent_pairs
    from interv.steer.sta import STA, STAHParams
    model = interv.load()
    vector = STA(STAHParams(multiplier=4.0)).fit(model, convsent_pairs(64))
    model.generate(["I think that"], graph=STA.graph(vector, model))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..adapters.text import left_pad_offsets
from ..contrast import Contrast, answer_groups, balance_answer_letters
from ..errors import ConfigError, SAEError
from ..graph import Graph
from ..hparams import HParams
from ..record import ModelRecord
from ..sae import HookedSAE
from ..sae import load as load_named_sae
from .base import STEER_METHODS, SteerMethod
from .caa import check_multiple_choice, contrast_texts
from .sae_feature import ee2_sae_keys, feature_graph, load_sae
from .vector import SteeringVector

MODES = ("act_and_freq", "only_act", "only_freq")


@dataclass(kw_only=True)
class STAHParams(HParams):
    method = "sta"
    sae: str = "smollm2-135m-res12"  # shipped SAE name, sae-lens folder, or release:sae_id
    layer: int | None = None  # must match the SAE's layer (None: the SAE's)
    mode: str = "act_and_freq"  # or only_act / only_freq
    trim: float = 0.65  # keep the top 1 - trim fraction by amplitude and by frequency
    act_threshold: float = 0.0  # alpha: minimum |mean activation difference|
    freq_threshold: float = 0.0  # beta: minimum |firing-frequency difference| (share of pairs)
    top_k: int | None = None  # at most this many features (by amplitude)
    match_norm: bool = True  # rescale to the CAA vector's norm
    multiplier: float = 1.0  # recommended strength when applied
    chat_template: bool = True  # A/B questions as a user turn
    balance_answers: bool = True  # A/B data: weigh A- and B-matching items equally (see caa.py)
    batch_size: int = 16
    dataset: str = ""
    multiple_choice: bool | None = None  # EasyEdit2's flag; the data decides (see caa.py)

    @classmethod
    def from_easyedit2(cls, values: dict[str, Any], source: str) -> dict[str, Any]:
        """EasyEdit2's keys: ``sae_paths`` (one SAE), ``trims`` (one trim)."""
        out = ee2_sae_keys(values, source, {})
        trims = out.pop("trims", None)
        if trims is not None:
            trims = [trims] if isinstance(trims, int | float) else list(trims)
            if len(trims) != 1:
                raise ConfigError(
                    f"{source}: trims lists {len(trims)} values; interv builds one STA vector per "
                    "method file (write one file per trim)."
                )
            out["trim"] = trims[0]
        return out

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"`mode` must be one of {', '.join(MODES)}, not {self.mode!r}.")
        if not 0 <= self.trim < 1:
            raise ConfigError(f"`trim` must be in [0, 1), got {self.trim}.")
        if self.act_threshold < 0 or not 0 <= self.freq_threshold <= 1:
            raise ConfigError("`act_threshold` must be >= 0 and `freq_threshold` in [0, 1].")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"`top_k` must be a positive number of features, got {self.top_k}.")
        if self.layer is not None and self.layer < 0:
            raise ConfigError(f"`layer` must be >= 0, got {self.layer}.")


@dataclass
class ContrastStats:
    """Per-example span means at one hook: raw activations and SAE codes, both sides."""

    pos_acts: Float[Tensor, "n d_in"]
    neg_acts: Float[Tensor, "n d_in"]
    pos_codes: Float[Tensor, "n d_sae"]
    neg_codes: Float[Tensor, "n d_sae"]
    # A/B data: which items match with the first letter; the means then weigh both letters
    # equally so the answer letter cancels (``interv.contrast.answer_groups``)
    groups: Bool[Tensor, " n"] | None = None

    def _mean(self, diffs: Float[Tensor, "n d"]) -> Float[Tensor, " d"]:
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
    order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    acts_out = torch.zeros(len(token_lists), sae.d_in)
    codes_out = torch.zeros(len(token_lists), sae.d_sae)
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        batch, offsets = left_pad_offsets(
            [token_lists[i] for i in chunk], model.tokenizer.pad_token_id, model.device
        )
        _, cache = model.run_with_cache(
            batch, [sae.hook_name], stop_at_layer=names.deepest_layer([sae.hook_name])
        )
        acts = cache[sae.hook_name].flatten(2)
        for row, i in enumerate(chunk):
            start, end = spans[i]
            x = acts[row, offsets[row] + start : offsets[row] + end].float()
            acts_out[i] = x.mean(0).cpu()
            codes_out[i] = sae.encode(x).float().mean(0).cpu()
    return acts_out, codes_out


def _signed_minmax(x: Float[Tensor, " n"]) -> Float[Tensor, " n"]:
    """Magnitudes rescaled to [0, 1] (min to max), sign kept (STA's normalisation)."""
    size = x.abs()
    span = size.max() - size.min()
    return x.sign() * ((size - size.min()) / span if span > 0 else torch.zeros_like(size))


def _top_fraction(score: Float[Tensor, " n"], keep: float) -> Bool[Tensor, " n"]:
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
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
    if not 0 <= trim < 1:
        raise ConfigError(f"trim must be in [0, 1), got {trim}.")
    norm_act, norm_freq = _signed_minmax(act_diff), _signed_minmax(freq_diff)
    agree = torch.sign(norm_act) == torch.sign(norm_freq)
    freq_score = torch.where(agree, norm_freq.abs(), torch.zeros_like(norm_freq))
    act_mask = _top_fraction(act_diff.abs(), 1 - trim) & (act_diff.abs() >= act_threshold)
    freq_mask = _top_fraction(freq_score, 1 - trim) & (freq_diff.abs() >= freq_threshold)
    masks = {"act_and_freq": act_mask & freq_mask, "only_act": act_mask, "only_freq": freq_mask}
    mask = masks[mode]
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


@STEER_METHODS.register("sta")
class STA(SteerMethod[Sequence[Contrast], SteeringVector]):
    name = "sta"
    hparams_class = STAHParams
    hparams: STAHParams

    def __init__(self, hparams: STAHParams | None = None, *, sae: HookedSAE | None = None):
        """``sae``: an already loaded ``HookedSAE`` (otherwise ``hparams.sae`` is loaded)."""
        super().__init__(hparams)
        self.sae = sae

    def fit(self, model: HookedModel, data: Sequence[Contrast]) -> SteeringVector:
        hp = self.hparams
        check_multiple_choice(hp.multiple_choice, data)
        sae = self.sae = load_sae(model, hp.sae, hp.layer, self.sae)
        pos_ids, pos_spans, neg_ids, neg_spans = contrast_texts(
            model, data, hp.chat_template, method="STA"
        )
        acts, codes = span_means(
            model, sae, pos_ids + neg_ids, pos_spans + neg_spans, hp.batch_size
        )
        n = len(pos_ids)
        groups = answer_groups(data) if hp.balance_answers else None
        stats = ContrastStats(acts[:n], acts[n:], codes[:n], codes[n:], groups)
        mask = select_features(
            stats.act_diff,
            stats.freq_diff,
            mode=hp.mode,
            trim=hp.trim,
            act_threshold=hp.act_threshold,
            freq_threshold=hp.freq_threshold,
            top_k=hp.top_k,
        )
        direction, features, values = sta_direction(sae, stats, mask, hp.match_norm)
        return SteeringVector(
            {sae.hook_name: direction},
            method=self.name,
            model=ModelRecord.of(model),
            dataset=hp.dataset,
            recommended_scale=hp.multiplier,
            meta={
                "sae": sae.id,
                "features": features,
                "values": values,
                "caa_norm": float(stats.caa.norm()),
                "n_examples": n,
                "hparams": hp.to_dict(),
            },
        )

    @staticmethod
    def graph(
        vector: SteeringVector,
        model: HookedModel,
        sae: HookedSAE | None = None,
        scale: float | None = None,
    ) -> Graph:
        """The vector as an intervention graph: one ``SAEFeature`` node adding the selected
        features' decoder rows at strength ``scale`` (default: the vector's multiplier)."""
        sae = sae if sae is not None else load_named_sae(vector.meta["sae"], model=model)
        return feature_graph(vector, sae, scale)
