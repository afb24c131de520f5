"""``interv patch``: inspect patch files, write edited checkpoints that transformers loads."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

import interv
from interv.cli.main import main
from interv.patch import PatchSet, WeightPatch
from interv.record import ModelRecord

IDS = torch.tensor([[5, 6, 7, 8, 9]])


def make_patch(model, path, seed=0, weight="blocks.1.mlp.W_out"):
    g = torch.Generator().manual_seed(seed)
    shape = model.weight(weight).shape
    patch = PatchSet(
        [WeightPatch(weight, delta=torch.randn(*shape, generator=g))],
        method="test",
        requests=[{"prompt": "Hello", "target_new": "abc"}],
        hparams={"lr": 1},
        model=ModelRecord.of(model),
    )
    return patch.save(path)


def logits_of(folder):
    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(folder)(IDS).logits


def test_inspect_prints_summary_and_provenance(tiny_models, tmp_path, capsys):
    path = make_patch(tiny_models("llama"), tmp_path / "p.safetensors")
    assert main(["patch", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for text in (
        "method test",
        "blocks.1.mlp.W_out",
        "dense",
        "[64, 32]",
        "'Hello' -> 'abc'",
        '"lr": 1',
        tiny_models("llama").fingerprint(),
    ):
        assert text in out


@pytest.mark.parametrize("backend", ["hf", "transformer_lens"])
def test_apply_revert_merge_write_loadable_checkpoints(tiny_dirs, tmp_path, backend):
    base = tiny_dirs["gpt2"]  # tied embeddings
    model = interv.load(base, device="cpu")
    first, second = (
        make_patch(model, tmp_path / "a.safetensors"),
        make_patch(model, tmp_path / "b.safetensors", 1),
    )
    with torch.no_grad():
        original = model.forward(IDS)
        with PatchSet.load(first).applied(model):
            edited = model.forward(IDS)
    common = ["--model", str(base), "--device", "cpu", "--backend", backend]
    assert main(["patch", "apply", str(first), "--out", str(tmp_path / "edited"), *common]) == 0
    torch.testing.assert_close(logits_of(tmp_path / "edited"), edited, atol=1e-4, rtol=1e-4)
    carried = json.loads((tmp_path / "edited" / "interv-patches.json").read_text())
    assert [c["method"] for c in carried] == ["test"]
    assert (
        main(
            [
                "patch",
                "revert",
                str(first),
                "--model",
                str(tmp_path / "edited"),
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "restored"),
            ]
        )
        == 0
    )
    torch.testing.assert_close(logits_of(tmp_path / "restored"), original, atol=1e-4, rtol=1e-4)
    assert json.loads((tmp_path / "restored" / "interv-patches.json").read_text()) == []
    assert (
        main(["patch", "merge", str(first), str(second), "--out", str(tmp_path / "both"), *common])
        == 0
    )
    with (
        torch.no_grad(),
        PatchSet.combine([PatchSet.load(first), PatchSet.load(second)]).applied(model),
    ):
        both = model.forward(IDS)
    torch.testing.assert_close(logits_of(tmp_path / "both"), both, atol=1e-4, rtol=1e-4)


def test_wrong_model_corrupt_file_and_foreign_revert(tiny_dirs, tiny_models, tmp_path, capsys):
    foreign = make_patch(tiny_models("llama"), tmp_path / "llama.safetensors")
    out = tmp_path / "out"
    assert (
        main(
            [
                "patch",
                "apply",
                str(foreign),
                "--model",
                str(tiny_dirs["gpt2"]),
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "was made for" in capsys.readouterr().err and not out.exists()
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    assert main(["patch", "inspect", str(corrupt)]) == 2
    assert "corrupt or not a safetensors patch file" in capsys.readouterr().err
    model = tiny_models("gpt2")
    applied, other = (
        make_patch(model, tmp_path / "a.safetensors"),
        make_patch(model, tmp_path / "o.safetensors", 5),
    )
    assert (
        main(
            [
                "patch",
                "apply",
                str(applied),
                "--model",
                str(tiny_dirs["gpt2"]),
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "edited"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "patch",
                "revert",
                str(other),
                "--model",
                str(tmp_path / "edited"),
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "is not among the patches" in capsys.readouterr().err and not out.exists()


@pytest.mark.real_model
def test_merged_checkpoint_of_the_default_model_reloads_with_the_edit(real_models, tmp_path):
    model = real_models("hf")
    path = make_patch(model, tmp_path / "p.safetensors", weight="blocks.3.mlp.W_out")
    with torch.no_grad(), PatchSet.load(path).applied(model):
        edited = model.forward(IDS)
    assert (
        main(
            [
                "patch",
                "merge",
                str(path),
                "--model",
                str(model.cfg.name),
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "edited"),
            ]
        )
        == 0
    )
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "edited")
    assert reloaded.config.tie_word_embeddings
    with torch.no_grad():
        torch.testing.assert_close(reloaded(IDS).logits, edited, atol=1e-4, rtol=1e-4)
