"""Layout ops that turn a native parameter into its canonical (TransformerLens) orientation.

Canonical orientations, the ones ``model.weight(name)`` returns:

===============================  ==================================
``embed.W_E``                    ``[d_vocab, d_model]``
``pos_embed.W_pos``              ``[n_ctx, d_model]``
``attn.W_Q``                     ``[n_heads, d_model, d_head]``
``attn.W_K``, ``attn.W_V``       ``[n_kv_heads, d_model, d_head]``
``attn.b_Q|b_K|b_V``             ``[n_heads | n_kv_heads, d_head]``
``attn.W_O``                     ``[n_heads, d_head, d_model]``
``mlp.W_in``, ``mlp.W_gate``     ``[d_model, d_mlp]``
``mlp.W_out``                    ``[d_mlp, d_model]``
``unembed.W_U``                  ``[d_model, d_vocab]``
===============================  ==================================

so activations multiply on the left: ``hook_post @ W_out``. Every op returns a *view*: writing
into the canonical tensor writes into the model's parameter.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxtyping import Float
from torch import Tensor

from .config import ModelConfig

LayoutOp = Callable[[Tensor, ModelConfig, str], Tensor]


def _transpose(t: Tensor, cfg: ModelConfig, arg: str) -> Tensor:
    return t.T


def _split_heads(n_heads: int, t: Tensor) -> Tensor:
    # [..., n_heads * d_head] -> [n_heads, ..., d_head]
    split = t.unflatten(-1, (n_heads, t.shape[-1] // n_heads))
    return split if split.dim() == 2 else split.movedim(-2, 0)


def _heads(t: Tensor, cfg: ModelConfig, arg: str) -> Tensor:
    return _split_heads(cfg.n_heads, t)


def _kv_heads(t: Tensor, cfg: ModelConfig, arg: str) -> Tensor:
    return _split_heads(cfg.n_kv_heads, t)


def _rows_heads(t: Tensor, cfg: ModelConfig, arg: str) -> Tensor:
    # [n_heads * d_head, d_model] -> [n_heads, d_head, d_model]
    return t.unflatten(0, (cfg.n_heads, cfg.d_head))


def _third(t: Tensor, cfg: ModelConfig, arg: str) -> Tensor:
    # GPT-2 c_attn: last dim is [q | k | v], each n_heads * d_head wide.
    width = t.shape[-1] // 3
    k = int(arg)
    return t[..., k * width : (k + 1) * width]


def _neox(t: Tensor, cfg: ModelConfig, arg: str) -> Tensor:
    # GPT-NeoX query_key_value: last dim is laid out [n_heads, (q, k, v), d_head]. Selecting
    # q, k or v leaves heads and d_head non-mergeable, so this op also splits heads (as "heads").
    picked = t.unflatten(-1, (cfg.n_heads, 3, cfg.d_head)).select(-2, int(arg))
    return picked if picked.dim() == 2 else picked.movedim(-2, 0)


_OPS: dict[str, LayoutOp] = {
    "T": _transpose,
    "heads": _heads,
    "kv_heads": _kv_heads,
    "rows_heads": _rows_heads,
    "third": _third,
    "neox": _neox,
}


def canonical_view(
    param: Float[Tensor, "..."], layout: tuple[str, ...], cfg: ModelConfig
) -> Float[Tensor, "..."]:
    """Apply layout ops (``"T"``, ``"heads"``, ``"third:1"``...) to a native parameter."""
    view = param
    for op in layout:
        name, _, arg = op.partition(":")
        view = _OPS[name](view, cfg, arg)
    return view


def known_ops() -> list[str]:
    return sorted(_OPS)
