"""GPT-2: learned positions, LayerNorm with bias, fused QKV in a Conv1D (weights stored
[in, out])."""

from __future__ import annotations

from .spec import Architecture, inp, out, w

_L = "transformer.h.{i}"

GPT2 = Architecture(
    name="gpt2",
    model_types=("gpt2",),
    hooks={
        "hook_embed": out("transformer.wte"),
        "hook_pos_embed": out("transformer.wpe"),
        "blocks.{i}.hook_resid_pre": inp(_L),
        "blocks.{i}.ln1.hook_normalized": out(f"{_L}.ln_1"),
        "blocks.{i}.attn.hook_z": inp(f"{_L}.attn.c_proj", heads=True),
        "blocks.{i}.hook_attn_out": out(f"{_L}.attn"),
        "blocks.{i}.hook_resid_mid": inp(f"{_L}.ln_2", inplace=True),
        "blocks.{i}.ln2.hook_normalized": out(f"{_L}.ln_2"),
        "blocks.{i}.mlp.hook_pre": out(f"{_L}.mlp.c_fc"),
        "blocks.{i}.mlp.hook_post": inp(f"{_L}.mlp.c_proj"),
        "blocks.{i}.hook_mlp_out": out(f"{_L}.mlp"),
        "blocks.{i}.hook_resid_post": out(_L),
        "ln_final.hook_normalized": out("transformer.ln_f"),
    },
    weights={
        "embed.W_E": w("transformer.wte.weight"),
        "pos_embed.W_pos": w("transformer.wpe.weight"),
        "blocks.{i}.ln1.w": w(f"{_L}.ln_1.weight"),
        "blocks.{i}.ln1.b": w(f"{_L}.ln_1.bias"),
        "blocks.{i}.attn.W_Q": w(f"{_L}.attn.c_attn.weight", "third:0", "heads"),
        "blocks.{i}.attn.W_K": w(f"{_L}.attn.c_attn.weight", "third:1", "heads"),
        "blocks.{i}.attn.W_V": w(f"{_L}.attn.c_attn.weight", "third:2", "heads"),
        "blocks.{i}.attn.b_Q": w(f"{_L}.attn.c_attn.bias", "third:0", "heads"),
        "blocks.{i}.attn.b_K": w(f"{_L}.attn.c_attn.bias", "third:1", "heads"),
        "blocks.{i}.attn.b_V": w(f"{_L}.attn.c_attn.bias", "third:2", "heads"),
        "blocks.{i}.attn.W_O": w(f"{_L}.attn.c_proj.weight", "rows_heads"),
        "blocks.{i}.attn.b_O": w(f"{_L}.attn.c_proj.bias"),
        "blocks.{i}.ln2.w": w(f"{_L}.ln_2.weight"),
        "blocks.{i}.ln2.b": w(f"{_L}.ln_2.bias"),
        "blocks.{i}.mlp.W_in": w(f"{_L}.mlp.c_fc.weight"),
        "blocks.{i}.mlp.b_in": w(f"{_L}.mlp.c_fc.bias"),
        "blocks.{i}.mlp.W_out": w(f"{_L}.mlp.c_proj.weight"),
        "blocks.{i}.mlp.b_out": w(f"{_L}.mlp.c_proj.bias"),
        "ln_final.w": w("transformer.ln_f.weight"),
        "ln_final.b": w("transformer.ln_f.bias"),
        "unembed.W_U": w("lm_head.weight", "T"),
    },
    additive_weights={
        "hook_embed": "embed.W_E",
        "hook_pos_embed": "pos_embed.W_pos",
        "blocks.{i}.hook_attn_out": "blocks.{i}.attn.b_O",
        "blocks.{i}.hook_mlp_out": "blocks.{i}.mlp.b_out",
    },
)
