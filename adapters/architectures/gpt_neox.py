"""GPT-NeoX / Pythia: rotary on part of each head, fused per-head QKV, usually parallel attn+MLP."""

from __future__ import annotations

from .spec import Architecture, inp, out, w

_L = "gpt_neox.layers.{i}"


def _parallel(config: object) -> bool:
    return bool(getattr(config, "use_parallel_residual", True))


GPT_NEOX = Architecture(
    name="gpt_neox",
    model_types=("gpt_neox",),
    hooks={
        "hook_embed": out("gpt_neox.embed_in"),
        "blocks.{i}.hook_resid_pre": inp(_L),
        "blocks.{i}.ln1.hook_normalized": out(f"{_L}.input_layernorm"),
        "blocks.{i}.attn.hook_z": inp(f"{_L}.attention.dense", heads=True),
        "blocks.{i}.hook_attn_out": out(f"{_L}.attention"),
        "blocks.{i}.hook_resid_mid": inp(f"{_L}.post_attention_layernorm", inplace=True),
        "blocks.{i}.ln2.hook_normalized": out(f"{_L}.post_attention_layernorm"),
        "blocks.{i}.mlp.hook_pre": out(f"{_L}.mlp.dense_h_to_4h"),
        "blocks.{i}.mlp.hook_post": inp(f"{_L}.mlp.dense_4h_to_h"),
        "blocks.{i}.hook_mlp_out": out(f"{_L}.mlp"),
        "blocks.{i}.hook_resid_post": out(_L),
        "ln_final.hook_normalized": out("gpt_neox.final_layer_norm"),
    },
    # With a parallel residual both branches read resid_pre; there is no resid_mid to hook.
    hook_conditions={"blocks.{i}.hook_resid_mid": lambda config: not _parallel(config)},
    parallel_attn_mlp=_parallel,
    weights={
        "embed.W_E": w("gpt_neox.embed_in.weight"),
        "blocks.{i}.ln1.w": w(f"{_L}.input_layernorm.weight"),
        "blocks.{i}.ln1.b": w(f"{_L}.input_layernorm.bias"),
        "blocks.{i}.attn.W_Q": w(f"{_L}.attention.query_key_value.weight", "T", "neox:0"),
        "blocks.{i}.attn.W_K": w(f"{_L}.attention.query_key_value.weight", "T", "neox:1"),
        "blocks.{i}.attn.W_V": w(f"{_L}.attention.query_key_value.weight", "T", "neox:2"),
        "blocks.{i}.attn.b_Q": w(f"{_L}.attention.query_key_value.bias", "neox:0"),
        "blocks.{i}.attn.b_K": w(f"{_L}.attention.query_key_value.bias", "neox:1"),
        "blocks.{i}.attn.b_V": w(f"{_L}.attention.query_key_value.bias", "neox:2"),
        "blocks.{i}.attn.W_O": w(f"{_L}.attention.dense.weight", "T", "rows_heads"),
        "blocks.{i}.attn.b_O": w(f"{_L}.attention.dense.bias"),
        "blocks.{i}.ln2.w": w(f"{_L}.post_attention_layernorm.weight"),
        "blocks.{i}.ln2.b": w(f"{_L}.post_attention_layernorm.bias"),
        "blocks.{i}.mlp.W_in": w(f"{_L}.mlp.dense_h_to_4h.weight", "T"),
        "blocks.{i}.mlp.b_in": w(f"{_L}.mlp.dense_h_to_4h.bias"),
        "blocks.{i}.mlp.W_out": w(f"{_L}.mlp.dense_4h_to_h.weight", "T"),
        "blocks.{i}.mlp.b_out": w(f"{_L}.mlp.dense_4h_to_h.bias"),
        "ln_final.w": w("gpt_neox.final_layer_norm.weight"),
        "ln_final.b": w("gpt_neox.final_layer_norm.bias"),
        "unembed.W_U": w("lm_head.weight", "T"),
    },
    additive_weights={
        "hook_embed": "embed.W_E",
        "blocks.{i}.hook_attn_out": "blocks.{i}.attn.b_O",
        "blocks.{i}.hook_mlp_out": "blocks.{i}.mlp.b_out",
    },
)
