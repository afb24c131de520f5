"""Canonical weights are live views of the parameters and point at what the hooks see."""

from __future__ import annotations

import pytest
import torch
from einops import einsum

from tests.tiny import FAMILIES

PROMPT = "Hello world"
TOL = dict(atol=1e-4, rtol=1e-4)
# Gemma 2 adds post-norms after attention and MLP, so hook_*_out is not W_O / W_out's output.
NO_POST_NORM = [f for f in FAMILIES if f != "gemma2"]
SEQUENTIAL = [f for f in FAMILIES if f != "gpt_neox"]  # gpt_neox here uses a parallel residual


def _cache(model, prompt=PROMPT):
    with torch.no_grad():
        return model.run_with_cache(prompt)


def _bias(model, name, like):
    return model.weight(name) if name in model.weight_names() else torch.zeros_like(like)


@pytest.mark.parametrize("family", FAMILIES)
def test_embedding_and_unembedding(tiny_models, family):
    model = tiny_models(family)
    logits, cache = _cache(model)
    ids = model.to_batch(PROMPT).input_ids
    path, _ = model.native_weight("embed.W_E")
    # Gemma's embedding module multiplies by sqrt(d_model); hook_embed is the module's output.
    embedding = model.hf_model.get_submodule(path.removesuffix(".weight"))
    scale = getattr(embedding, "embed_scale", 1.0)
    torch.testing.assert_close(cache["hook_embed"], model.weight("embed.W_E")[ids] * scale)
    unembedded = cache["ln_final.hook_normalized"] @ model.weight("unembed.W_U")
    torch.testing.assert_close(unembedded, logits, **TOL)


@pytest.mark.parametrize("family", NO_POST_NORM)
@pytest.mark.parametrize("layer", [0, 1])
def test_mlp_weights(tiny_models, family, layer):
    model = tiny_models(family)
    _, cache = _cache(model)
    p = f"blocks.{layer}"
    post, out = cache[f"{p}.mlp.hook_post"], cache[f"{p}.hook_mlp_out"]
    W_out = model.weight(f"{p}.mlp.W_out")
    torch.testing.assert_close(post @ W_out + _bias(model, f"{p}.mlp.b_out", out[0, 0]), out, **TOL)
    normalized = cache[f"{p}.ln2.hook_normalized"]
    gated = f"{p}.mlp.W_gate" in model.weight_names()
    linear = cache[f"{p}.mlp.hook_pre_linear" if gated else f"{p}.mlp.hook_pre"]
    b_in = _bias(model, f"{p}.mlp.b_in", linear[0, 0])
    torch.testing.assert_close(normalized @ model.weight(f"{p}.mlp.W_in") + b_in, linear, **TOL)
    if gated:
        gate = normalized @ model.weight(f"{p}.mlp.W_gate")
        torch.testing.assert_close(gate, cache[f"{p}.mlp.hook_pre"], **TOL)


@pytest.mark.parametrize("family", FAMILIES)
def test_value_and_output_weights(tiny_models, family):
    """With one token, attention attends to itself: z = ln1 @ W_V + b_V per head."""
    model = tiny_models(family)
    _, cache = _cache(model, "A")
    cfg = model.cfg
    group = cfg.n_heads // cfg.n_kv_heads
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}"
        W_V = model.weight(f"{p}.attn.W_V").repeat_interleave(group, dim=0)
        values = einsum(cache[f"{p}.ln1.hook_normalized"], W_V, "b p d, h d e -> b p h e")
        if f"{p}.attn.b_V" in model.weight_names():
            values = values + model.weight(f"{p}.attn.b_V").repeat_interleave(group, dim=0)
        z = cache[f"{p}.attn.hook_z"]
        torch.testing.assert_close(values, z, **TOL)
        if family in NO_POST_NORM:
            out = einsum(z, model.weight(f"{p}.attn.W_O"), "b p h e, h e d -> b p d")
            out = out + _bias(model, f"{p}.attn.b_O", out[0, 0])
            torch.testing.assert_close(out, cache[f"{p}.hook_attn_out"], **TOL)


@pytest.mark.parametrize("family", ["gpt2", "gpt_neox"])
def test_query_key_weights_reproduce_attention(tiny_models, family):
    """Recompute attention from W_Q, W_K, W_V (rotary on the first dims for NeoX)."""
    model = tiny_models(family)
    _, cache = _cache(model)
    cfg = model.cfg
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}"
        x = cache[f"{p}.ln1.hook_normalized"]
        q, k, v = (
            einsum(x, model.weight(f"{p}.attn.W_{c}"), "b p d, h d e -> b h p e")
            + model.weight(f"{p}.attn.b_{c}")[None, :, None, :]
            for c in "QKV"
        )
        if family == "gpt_neox":
            q, k = _rotate(model, q, k)
        pattern = _causal_softmax(q @ k.transpose(-1, -2) / cfg.d_head**0.5)
        z = (pattern @ v).transpose(1, 2)
        torch.testing.assert_close(z, cache[f"{p}.attn.hook_z"], **TOL)


def _causal_softmax(scores):
    n = scores.shape[-1]
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)


def _rotate(model, q, k):
    from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb

    positions = torch.arange(q.shape[2])[None]
    cos, sin = model.hf_model.gpt_neox.rotary_emb(q, positions)
    return apply_rotary_pos_emb(q, k, cos, sin)


@pytest.mark.parametrize("family", FAMILIES)
def test_weights_are_live_views(fresh_tiny, family):
    model = fresh_tiny(family)
    for name in model.weight_names():
        _, param = model.native_weight(name)
        view = model.weight(name)
        assert view.untyped_storage().data_ptr() == param.untyped_storage().data_ptr(), name
    before = model.forward(PROMPT).detach()
    with torch.no_grad():
        model.weight("blocks.1.mlp.W_out").mul_(0.0)
    assert not torch.allclose(model.forward(PROMPT), before)


@pytest.mark.parametrize("family", FAMILIES)
def test_tied_unembedding_is_the_embedding(tiny_models, family):
    model = tiny_models(family)
    shared = model.weight("unembed.W_U").untyped_storage().data_ptr() == (
        model.weight("embed.W_E").untyped_storage().data_ptr()
    )
    assert shared == model.cfg.tied_embeddings


def test_canonical_shapes(tiny_models):
    model = tiny_models("llama")
    c = model.cfg
    expected = {
        "embed.W_E": (c.d_vocab, c.d_model),
        "blocks.0.attn.W_Q": (c.n_heads, c.d_model, c.d_head),
        "blocks.0.attn.W_K": (c.n_kv_heads, c.d_model, c.d_head),
        "blocks.0.attn.W_O": (c.n_heads, c.d_head, c.d_model),
        "blocks.0.mlp.W_in": (c.d_model, c.d_mlp),
        "blocks.0.mlp.W_gate": (c.d_model, c.d_mlp),
        "blocks.0.mlp.W_out": (c.d_mlp, c.d_model),
        "unembed.W_U": (c.d_model, c.d_vocab),
    }
    for name, shape in expected.items():
        assert tuple(model.weight(name).shape) == shape, name


@pytest.mark.parametrize("family", FAMILIES)
def test_hook_shapes_match_activations(tiny_models, family):
    model = tiny_models(family)
    _, cache = _cache(model)
    for name in model.hook_names():
        assert tuple(cache[name].shape[2:]) == model.hook_shape(name), name


def test_absent_bias_is_created_as_zeros_and_dropped(fresh_tiny):
    model = fresh_tiny("llama")
    logits = model.forward(PROMPT).detach()
    assert "blocks.0.mlp.b_out" not in model.weight_names()
    assert model.weight_shape("blocks.0.mlp.b_out") == (model.cfg.d_model,)
    assert model.ensure_weight("blocks.0.mlp.b_out") is True
    assert model.ensure_weight("blocks.0.mlp.b_out") is False  # already there
    assert torch.equal(model.weight("blocks.0.mlp.b_out"), torch.zeros(model.cfg.d_model))
    torch.testing.assert_close(model.forward(PROMPT), logits, atol=0, rtol=0)
    with torch.no_grad():
        model.weight("blocks.0.mlp.b_out").fill_(1.0)
    assert not torch.allclose(model.forward(PROMPT), logits)
    model.drop_weight("blocks.0.mlp.b_out")
    assert model.hf_model.model.layers[0].mlp.down_proj.bias is None
    torch.testing.assert_close(model.forward(PROMPT), logits, atol=0, rtol=0)
    with pytest.raises(ValueError, match="was not created by interv"):
        model.drop_weight("blocks.0.mlp.W_out")
    with pytest.raises(KeyError, match="Unknown weight name 'blocks.0.mlp.b_outt'"):
        model.ensure_weight("blocks.0.mlp.b_outt")
