"""Canonical names: the required set exists on every family; unknown names fail helpfully."""

from __future__ import annotations

import pytest
import torch

from interv.adapters import UnknownNameError, UnsupportedArchitectureError, architecture_for
from tests.tiny import FAMILIES

REQUIRED_HOOKS = [
    "hook_embed",
    "blocks.{i}.hook_resid_pre",
    "blocks.{i}.hook_attn_out",
    "blocks.{i}.hook_mlp_out",
    "blocks.{i}.hook_resid_post",
    "blocks.{i}.mlp.hook_pre",
    "blocks.{i}.mlp.hook_post",
    "blocks.{i}.attn.hook_z",
    "ln_final.hook_normalized",
]
REQUIRED_WEIGHTS = [
    "embed.W_E",
    "unembed.W_U",
    "blocks.{i}.mlp.W_in",
    "blocks.{i}.mlp.W_out",
    "blocks.{i}.attn.W_Q",
    "blocks.{i}.attn.W_K",
    "blocks.{i}.attn.W_V",
    "blocks.{i}.attn.W_O",
]


@pytest.mark.parametrize("family", FAMILIES)
def test_required_names_exist_for_every_layer(tiny_models, family):
    model = tiny_models(family)
    hooks, weights = set(model.hook_names()), set(model.weight_names())
    for layer in range(model.cfg.n_layers):
        for template in REQUIRED_HOOKS:
            assert template.format(i=layer) in hooks
        for template in REQUIRED_WEIGHTS:
            assert template.format(i=layer) in weights
    sequential = not model.cfg.parallel_attn_mlp
    assert ("blocks.0.hook_resid_mid" in hooks) == sequential
    if "gemma" in family or "llama" in family or "qwen" in family:
        assert "blocks.0.mlp.W_gate" in weights


def test_hook_names_are_in_execution_order(tiny_models):
    model = tiny_models("llama")
    seen = []
    hooks = {name: (lambda act, ctx: seen.append(ctx.name)) for name in model.hook_names()}
    with torch.no_grad():
        model.forward("ab", hooks=hooks)
    assert seen == model.hook_names()


def test_unknown_hook_name_lists_closest(tiny_models):
    model = tiny_models("llama")
    with pytest.raises(UnknownNameError) as err:
        model.run_with_cache("ab", ["blocks.0.hook_resid_pots"])
    assert "blocks.0.hook_resid_post" in str(err.value)
    assert "blocks.0.hook_resid_post" in err.value.suggestions


def test_unknown_weight_name_lists_closest(tiny_models):
    model = tiny_models("gpt2")
    with pytest.raises(UnknownNameError) as err:
        model.weight("blocks.1.mlp.W_gate")  # GPT-2 has no gated MLP
    message = str(err.value)
    assert "blocks.1.mlp.W_in" in message or "blocks.1.mlp.W_out" in message


def test_bad_hook_name_fails_before_running(tiny_models):
    model = tiny_models("llama")
    calls = []
    record = lambda a, c: calls.append(1)  # noqa: E731
    hooks = {"blocks.0.hook_resid_pre": record, "blocks.9.hook_resid_pre": record}
    with pytest.raises(UnknownNameError):
        model.forward("ab", hooks=hooks)
    assert calls == []


def test_unsupported_family_is_an_error():
    with pytest.raises(UnsupportedArchitectureError, match="not in interv's architecture table"):
        architecture_for("mamba")


def test_unsupported_model_fails_at_load(tmp_path):
    from transformers import AutoModelForCausalLM, BloomConfig

    import interv
    from tests.tiny import VOCAB, byte_tokenizer

    config = BloomConfig(hidden_size=32, n_layer=1, n_head=4, vocab_size=VOCAB)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    byte_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(UnsupportedArchitectureError, match="bloom"):
        interv.load(tmp_path, device="cpu")
