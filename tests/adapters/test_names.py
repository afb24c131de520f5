"""Canonical names: the required set exists on every family; unknown names fail helpfully."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from interv.adapters import UnknownNameError, UnsupportedArchitectureError, architecture_for, names
from interv.errors import ConfigError
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


# ----------------------------------------------------------------- the one place names are built
ROOT = Path(__file__).resolve().parents[2]


def test_names_helper_builds_and_splits_names():
    assert names.hook("resid_post", 10) == "blocks.10.hook_resid_post"
    assert names.hook("mlp.hook_post", 3) == names.hook("post", 3) == "blocks.3.mlp.hook_post"
    assert names.hook("blocks.{i}.attn.hook_z", 2) == "blocks.2.attn.hook_z"
    assert names.hook("blocks.4.hook_mlp_out") == "blocks.4.hook_mlp_out"
    assert (
        names.hook("embed") == "hook_embed" and names.hook("ln_final") == "ln_final.hook_normalized"
    )
    assert names.weight("mlp.W_out", 4) == "blocks.4.mlp.W_out"
    assert names.weight("unembed.W_U") == "unembed.W_U"
    assert (
        names.layer_of("blocks.12.ln2.hook_normalized") == 12
        and names.layer_of("hook_embed") is None
    )
    assert names.in_block("blocks.3.mlp.W_out") == "mlp.W_out"
    assert names.deepest_layer(["blocks.2.hook_mlp_out", "blocks.5.hook_resid_pre"]) == 5
    assert names.deepest_layer(["blocks.2.hook_mlp_out", "ln_final.hook_normalized"]) is None


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: names.hook("resid_psot", 3),
            UnknownNameError,
            "Closest valid names: .*hook_resid_post",
        ),
        (lambda: names.hook("resid_post"), ConfigError, "inside a block: pass its layer"),
        (lambda: names.hook("embed", 2), ConfigError, "not inside a block"),
        (lambda: names.hook("blocks.3.hook_mlp_out", 4), ConfigError, "names layer 3, not layer 4"),
        (lambda: names.weight("mlp.W_ot", 1), UnknownNameError, "mlp.W_out"),
        (lambda: names.hook("z", -1), ConfigError, "int >= 0"),
    ],
)
def test_names_helper_refuses_bad_names(call, error, message):
    with pytest.raises(error, match=message):
        call()


def _built_names(path: Path) -> list[str]:
    """Hook and weight names assembled by hand in a source file: f-strings and templates that
    start a ``blocks.`` name (docstrings aside; a complete literal name is not assembled)."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    docs |= {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }  # an f-string's pieces are judged with it
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            built = isinstance(first, ast.Constant) and str(first.value).startswith("blocks.")
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
        ):
            built = node.value.startswith("blocks.") and (
                "{" in node.value or node.value == "blocks."
            )
        else:
            built = False
        if built:
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_names_are_built_only_by_the_names_module():
    """Outside interv.adapters (where the namespace is defined: the helper, the architecture
    tables, the bridge's names), hook and weight names come from ``names.hook`` /
    ``names.weight``, never from formatted strings."""
    files = [p for folder in ("interv", "sae") for p in (ROOT / folder).rglob("*.py")]
    found = [line for path in files for line in _built_names(path)]
    assert not found, "\n".join(found)


def test_the_scan_finds_hand_built_names(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text(
        'layer = 3\nhook = f"blocks.{layer}.hook_resid_post"\n'
        'template = "blocks.{i}.mlp.W_out"\nfull = "blocks.3.hook_mlp_out"\n'
    )
    found = [line.split(": ", 1)[1] for line in _built_names(source)]
    assert found == ["f'blocks.{layer}.hook_resid_post'", "'blocks.{i}.mlp.W_out'"]
