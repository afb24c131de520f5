"""Gemma: Gemma 1 is Llama-shaped with GeGLU; Gemma 2/3 add norms after attention and MLP.

In Gemma 2/3 what the block adds to the residual stream is the *post-norm* output, so
``hook_attn_out`` and ``hook_mlp_out`` are the outputs of those norms, as in TransformerLens.
No bias adds unchanged to them (nor to the scaled embedding), so Gemma 2/3 list no
``additive_weights``.
"""

from __future__ import annotations

from .llama import LLAMA
from .spec import Architecture, inp, out, w

_L = "model.layers.{i}"

GEMMA = Architecture(
    name="gemma",
    model_types=("gemma",),
    hooks=LLAMA.hooks,
    weights=LLAMA.weights,
    # The embedding module multiplies by sqrt(d_model), so W_E rows do not add unchanged.
    additive_weights={k: v for k, v in LLAMA.additive_weights.items() if k != "hook_embed"},
)

GEMMA2 = Architecture(
    name="gemma2",
    model_types=("gemma2", "gemma3_text"),
    hooks={
        "hook_embed": out("model.embed_tokens"),
        "blocks.{i}.hook_resid_pre": inp(_L),
        "blocks.{i}.ln1.hook_normalized": out(f"{_L}.input_layernorm"),
        "blocks.{i}.attn.hook_z": inp(f"{_L}.self_attn.o_proj", heads=True),
        "blocks.{i}.hook_attn_out": out(f"{_L}.post_attention_layernorm"),
        "blocks.{i}.hook_resid_mid": inp(f"{_L}.pre_feedforward_layernorm", inplace=True),
        "blocks.{i}.ln2.hook_normalized": out(f"{_L}.pre_feedforward_layernorm"),
        "blocks.{i}.mlp.hook_pre": out(f"{_L}.mlp.gate_proj"),
        "blocks.{i}.mlp.hook_pre_linear": out(f"{_L}.mlp.up_proj"),
        "blocks.{i}.mlp.hook_post": inp(f"{_L}.mlp.down_proj"),
        "blocks.{i}.hook_mlp_out": out(f"{_L}.post_feedforward_layernorm"),
        "blocks.{i}.hook_resid_post": out(_L),
        "ln_final.hook_normalized": out("model.norm"),
    },
    weights={
        **{k: v for k, v in LLAMA.weights.items() if not k.startswith("blocks.{i}.ln2")},
        "blocks.{i}.ln1_post.w": w(f"{_L}.post_attention_layernorm.weight"),
        "blocks.{i}.ln2.w": w(f"{_L}.pre_feedforward_layernorm.weight"),
        "blocks.{i}.ln2_post.w": w(f"{_L}.post_feedforward_layernorm.weight"),
    },
)
