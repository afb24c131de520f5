"""What an SAE feature means: top-activating contexts, logit lens, activation histogram;
and which features a text activates, token by token.

Example (with the default model)::

    import interv, interv.sae
    model = interv.load(); sae = interv.sae.load("smollm2-135m-res12", model=model)
    report = interv.sae.features.feature_report(
        model, sae, 7, interv.sae.corpus.load_documents()[:500])
    print(report.to_text())
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..errors import SAEError
from . import activations
from .hooked import HookedSAE
from .views import Context, FeatureReport, TextReport, histogram

__all__ = [
    "Context",
    "FeatureReport",
    "TextReport",
    "direction_logits",
    "feature_contexts",
    "feature_report",
    "histogram",
    "logit_lens",
    "text_report",
]


# ------------------------------------------------------------------------------ analysis
def logit_lens(
    model: HookedModel, sae: HookedSAE, feature: int, k: int = 10
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The tokens the feature's decoder direction promotes most and least, read through the
    final norm's weight and the unembedding (``(W_dec[f] * ln_final.w) @ W_U``)."""
    sae.check(model)
    (f,) = sae.check_features([feature])
    scores = direction_logits(model, sae.W_dec[f].detach().float())
    top, bottom = scores.topk(k), (-scores).topk(k)
    decode = model.tokenizer.convert_ids_to_tokens
    return (
        list(zip(decode(top.indices.tolist()), top.values.tolist(), strict=True)),
        list(zip(decode(bottom.indices.tolist()), (-bottom.values).tolist(), strict=True)),
    )


def direction_logits(
    model: HookedModel, direction: Float[Tensor, " d_model"]
) -> Float[Tensor, " d_vocab"]:
    """Logit-lens scores of a residual-stream direction."""
    if direction.shape[-1] != model.cfg.d_model:
        raise SAEError(
            f"The logit lens needs a residual-stream direction ({model.cfg.d_model} wide); this "
            f"SAE's decoder rows are {direction.shape[-1]} wide."
        )
    names = model.weight_names()
    d = direction.to(model.device)
    if "ln_final.w" in names:
        d = d * model.weight("ln_final.w").detach().float()
    return (d @ model.weight("unembed.W_U").detach().float()).cpu()


@torch.no_grad()
def feature_contexts(
    model: HookedModel,
    sae: HookedSAE,
    feature: int,
    docs: Sequence[str],
    *,
    k: int = 10,
    window: int = 8,
    max_len: int = 128,
    batch_size: int = 32,
) -> tuple[list[Context], Float[Tensor, " n"], int]:
    """The ``k`` contexts where ``feature`` fires most, every non-zero activation, tokens seen."""
    sae.check(model)  # before any forward: an SAE of another model or width reads nonsense
    (f,) = sae.check_features([feature])
    token_windows = activations.windows(model, docs, max_len)
    heap: list[tuple[float, int, int]] = []  # (activation, window, position)
    values: dict[int, Tensor] = {}
    seen, fired = 0, []
    for i, acts in activations.iter_activations(model, sae.hook_name, token_windows, batch_size):
        z = sae.encode(acts)[:, f].float().cpu()
        seen += z.numel()
        fired.append(z[z > 0])
        peak = int(z.argmax())
        if z[peak] > 0:
            item = (float(z[peak]), i, peak)
            if len(heap) < k:
                heapq.heappush(heap, item)
                values[i] = z
            elif item > heap[0]:
                values.pop(heapq.heappushpop(heap, item)[1], None)
                values[i] = z
    contexts = [
        _context(model, token_windows[i], values[i], p, window)
        for _, i, p in sorted(heap, reverse=True)
    ]
    return contexts, torch.cat(fired) if fired else torch.empty(0), seen


def _context(model: HookedModel, ids: Sequence[int], z: Tensor, peak: int, window: int) -> Context:
    skip = activations.SKIP_FIRST  # z starts after the skipped tokens
    lo, hi = max(0, peak - window), min(len(z), peak + window // 2 + 1)
    tokens = [model.tokenizer.decode([t]) for t in ids[lo + skip : hi + skip]]
    return Context(float(z[peak]), tokens, [float(v) for v in z[lo:hi]], peak - lo)


def feature_report(
    model: HookedModel,
    sae: HookedSAE,
    feature: int,
    docs: Sequence[str],
    *,
    k: int = 10,
    window: int = 8,
    logits: int = 10,
) -> FeatureReport:
    """Contexts, logit lens and activations of one feature over ``docs``."""
    sae.check(model)
    contexts, acts, seen = feature_contexts(model, sae, feature, docs, k=k, window=window)
    top, bottom = (
        logit_lens(model, sae, feature, logits) if sae.d_in == model.cfg.d_model else ([], [])
    )
    return FeatureReport(feature, sae.id, sae.hook_name, contexts, top, bottom, acts, seen)


@torch.no_grad()
def text_report(model: HookedModel, sae: HookedSAE, text: str, k: int = 5) -> TextReport:
    """The ``k`` most active features at every token of ``text`` (the first token too)."""
    sae.check(model)
    ids = model.tokenizer(text, add_special_tokens=True)["input_ids"]
    if not ids:
        raise SAEError("The text is empty; nothing to inspect.")
    [(_, acts)] = list(activations.iter_activations(model, sae.hook_name, [ids], skip_first=0))
    z = sae.encode(acts).float().cpu()
    top = z.topk(min(k, sae.d_sae), dim=-1)
    rows = [
        [(int(i), float(v)) for i, v in zip(idx.tolist(), val.tolist(), strict=True) if v > 0]
        for idx, val in zip(top.indices, top.values, strict=True)
    ]
    return TextReport(sae.id, sae.hook_name, [model.tokenizer.decode([t]) for t in ids], rows)
