"""Llama-style decoders: Llama, SmolLM, Mistral, Qwen2, Qwen3 (pre-norm, RMSNorm, gated MLP)."""

from __future__ import annotations

from .spec import Architecture, inp, out, w

_L = "model.layers.{i}"

LLAMA = Architecture(
    name="llama",
    model_types=("llama", "mistral", "qwen2", "qwen3"),
    hooks={
        "hook_embed": out("model.embed_tokens"),
        "blocks.{i}.hook_resid_pre": inp(_L),
        "blocks.{i}.ln1.hook_normalized": out(f"{_L}.input_layernorm"),
        "blocks.{i}.attn.hook_z": inp(f"{_L}.self_attn.o_proj", heads=True),
        "blocks.{i}.hook_attn_out": out(f"{_L}.self_attn"),
        "blocks.{i}.hook_resid_mid": inp(f"{_L}.post_attention_layernorm", inplace=True),
        "blocks.{i}.ln2.hook_normalized": out(f"{_L}.post_attention_layernorm"),
        "blocks.{i}.mlp.hook_pre": out(f"{_L}.mlp.gate_proj"),
        "blocks.{i}.mlp.hook_pre_linear": out(f"{_L}.mlp.up_proj"),
        "blocks.{i}.mlp.hook_post": inp(f"{_L}.mlp.down_proj"),
        "blocks.{i}.hook_mlp_out": out(f"{_L}.mlp"),
        "blocks.{i}.hook_resid_post": out(_L),
        "ln_final.hook_normalized": out("model.norm"),
    },
    weights={
        "embed.W_E": w("model.embed_tokens.weight"),
        "blocks.{i}.ln1.w": w(f"{_L}.input_layernorm.weight"),
        "blocks.{i}.attn.W_Q": w(f"{_L}.self_attn.q_proj.weight", "T", "heads"),
        "blocks.{i}.attn.W_K": w(f"{_L}.self_attn.k_proj.weight", "T", "kv_heads"),
        "blocks.{i}.attn.W_V": w(f"{_L}.self_attn.v_proj.weight", "T", "kv_heads"),
        "blocks.{i}.attn.b_Q": w(f"{_L}.self_attn.q_proj.bias", "heads", optional=True),
        "blocks.{i}.attn.b_K": w(f"{_L}.self_attn.k_proj.bias", "kv_heads", optional=True),
        "blocks.{i}.attn.b_V": w(f"{_L}.self_attn.v_proj.bias", "kv_heads", optional=True),
        "blocks.{i}.attn.W_O": w(f"{_L}.self_attn.o_proj.weight", "T", "rows_heads"),
        # Llama-style projections usually have no output bias; one is created as zeros on demand.
        "blocks.{i}.attn.b_O": w(f"{_L}.self_attn.o_proj.bias", zeros=("d_model",)),
        "blocks.{i}.ln2.w": w(f"{_L}.post_attention_layernorm.weight"),
        "blocks.{i}.mlp.W_gate": w(f"{_L}.mlp.gate_proj.weight", "T"),
        "blocks.{i}.mlp.W_in": w(f"{_L}.mlp.up_proj.weight", "T"),
        "blocks.{i}.mlp.W_out": w(f"{_L}.mlp.down_proj.weight", "T"),
        "blocks.{i}.mlp.b_out": w(f"{_L}.mlp.down_proj.bias", zeros=("d_model",)),
        "ln_final.w": w("model.norm.weight"),
        "unembed.W_U": w("lm_head.weight", "T"),
    },
    additive_weights={
        "hook_embed": "embed.W_E",
        "blocks.{i}.hook_attn_out": "blocks.{i}.attn.b_O",
        "blocks.{i}.hook_mlp_out": "blocks.{i}.mlp.b_out",
    },
)
