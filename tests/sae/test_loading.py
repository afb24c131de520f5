"""Loading sae-lens SAE folders onto canonical hooks, and the errors for SAEs that do not fit."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from interv.adapters import UnknownNameError
from interv.sae import SAEError, canonical_hook, load, load_from_disk, shipped


def test_folder_round_trip(tiny_sae_run, tmp_path):
    model, sae, _, folder = tiny_sae_run
    again = load(folder, model=model)
    assert again.hook_name == sae.hook_name and again.d_sae == sae.d_sae
    torch.testing.assert_close(again.W_dec, sae.W_dec)
    x = torch.randn(5, sae.d_in)
    torch.testing.assert_close(again.encode(x), sae.encode(x))
    again.save(tmp_path / "copy")
    third = load_from_disk(tmp_path / "copy")
    torch.testing.assert_close(third.decode(third.encode(x)), again.decode(again.encode(x)))


def test_sae_lens_folder_with_hf_hook_name(tiny_sae_run, tmp_path):
    from sae_lens import SAE

    model, _, _, folder = tiny_sae_run
    raw = SAE.load_from_disk(str(folder))
    raw.cfg.metadata.hook_name = "model.layers.1"  # a sparsify / HF module path
    raw.save_model(str(tmp_path / "hf"))
    assert load(tmp_path / "hf", model=model).hook_name == "blocks.1.hook_resid_post"
    assert canonical_hook("blocks.3.hook_mlp_out") == "blocks.3.hook_mlp_out"
    assert canonical_hook("model.layers.4.mlp") == "blocks.4.hook_mlp_out"


def test_other_hook_or_width_is_refused(tiny_sae_run, tmp_path):
    model, _, _, folder = tiny_sae_run
    with pytest.raises(SAEError, match=r"reads 32-wide activations, but 'blocks.1.mlp.hook_post'"):
        load(folder, model=model, hook="blocks.1.mlp.hook_post")
    with pytest.raises(UnknownNameError, match="blocks.7.hook_resid_post"):
        load(folder, model=model, hook="blocks.7.hook_resid_post")
    from sae_lens import StandardSAE, StandardSAEConfig

    wide = StandardSAE(StandardSAEConfig(d_in=48, d_sae=16))  # an SAE for a 48-wide model
    wide.cfg.metadata.hook_name = "blocks.1.hook_resid_post"
    wide.save_model(str(tmp_path / "wide"))
    with pytest.raises(SAEError, match="48-wide activations.*trained for another model or hook"):
        load(tmp_path / "wide", model=model)


def test_feature_out_of_range(tiny_sae_run):
    _, sae, _, _ = tiny_sae_run
    assert sae.check_features([0, 63]) == [0, 63]
    with pytest.raises(
        SAEError, match=r"Feature index 64 is out of range.*64 features \(0\.\.63\)"
    ):
        sae.check_features([3, 64])


@pytest.mark.parametrize(
    "damage", ["no_weights", "bad_json", "truncated", "wrong_shape", "nan", "no_dir"]
)
def test_corrupted_folder_is_one_clear_error(tiny_sae_run, tmp_path, damage):
    from safetensors.torch import load_file, save_file

    _, _, _, folder = tiny_sae_run
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    weights, cfg = bad / "sae_weights.safetensors", bad / "cfg.json"
    expected = {
        "no_weights": "has no sae_weights.safetensors",
        "bad_json": "not valid JSON",
        "truncated": "corrupt or truncated",
        "wrong_shape": "do not belong together",
        "nan": "NaN or inf",
        "no_dir": "does not exist",
    }[damage]
    if damage == "no_weights":
        weights.unlink()
    elif damage == "bad_json":
        cfg.write_text("{not json")
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "wrong_shape":
        config = json.loads(cfg.read_text())
        config["d_sae"] = 65
        cfg.write_text(json.dumps(config))
    elif damage == "nan":
        tensors = load_file(str(weights))
        tensors["W_dec"][0, 0] = float("nan")
        save_file(tensors, str(weights))
    else:
        bad = tmp_path / "nowhere"
    with pytest.raises(SAEError, match=expected):
        load_from_disk(bad)


def test_unknown_name_lists_shipped_saes():
    with pytest.raises(SAEError, match="neither a shipped SAE"):
        load("no-such-sae")


def test_pretrained_registry_checks_names_before_downloading():
    from interv.sae import from_pretrained

    with pytest.raises(SAEError, match="no pretrained release 'gpt2-small-res-jbb'.*did you mean"):
        from_pretrained("gpt2-small-res-jbb", "blocks.8.hook_resid_pre")
    with pytest.raises(SAEError, match="has no SAE 'blocks.99.hook_resid_pre'"):
        from_pretrained("gpt2-small-res-jb", "blocks.99.hook_resid_pre")


def test_shipped_sae_is_listed():
    assert "smollm2-135m-res12" in shipped()
