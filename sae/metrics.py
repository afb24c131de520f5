"""How good an SAE is on held-out activations: explained variance, L0, dead features.

* explained variance: ``1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2`` over all tokens
  (sae-lens's current definition: one ratio over the whole set, not a mean of per-token ratios);
* L0: mean number of active features per token;
* dead share: the fraction of features that never fire on the held-out tokens.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..errors import SAEError


@torch.no_grad()
def evaluate(sae: Any, acts: Float[Tensor, "n d_in"], batch_size: int = 2048) -> dict[str, float]:
    """Explained variance, L0, dead share and MSE of ``sae`` (anything with encode/decode)."""
    if acts.shape[0] == 0:
        raise SAEError("No activations to evaluate the SAE on.")
    mean = acts.float().mean(0)
    residual = total = active = 0.0
    fired: Tensor | None = None
    for start in range(0, acts.shape[0], batch_size):
        x = acts[start : start + batch_size].float()
        z = sae.encode(x).float()
        x_hat = sae.decode(z).float().to(x.device)
        residual += float((x - x_hat).pow(2).sum())
        total += float((x - mean).pow(2).sum())
        on = z > 0
        active += float(on.sum())
        fired = on.any(0) if fired is None else fired | on.any(0)
    assert fired is not None
    n = acts.shape[0]
    return {
        "explained_variance": round(1.0 - residual / total, 4),
        "l0": round(active / n, 2),
        "dead_share": round(1.0 - float(fired.float().mean()), 4),
        "mse": round(residual / (n * acts.shape[1]), 6),
        "tokens": n,
    }


def without_outliers(
    acts: Float[Tensor, "n d_in"], quantile: float = 0.99
) -> Float[Tensor, "m d_in"]:
    """The activations whose norm is at most the ``quantile`` of norms.

    Residual streams hold a few "massive activation" tokens (norms ~100x the median, e.g.
    29,500 vs 140 at blocks.12 of SmolLM2-135M) that dominate the total variance; explained
    variance on the rest tells how well the SAE does on typical tokens.
    """
    norms = acts.float().norm(dim=-1)
    return acts[norms <= torch.quantile(norms, quantile)]
