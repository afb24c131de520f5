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


def tensors_of(folder):
    from safetensors.torch import load_file

    found = sorted(folder.glob("*.safetensors"))
    weights = [p for p in found if not p.name.startswith("interv-")]
    return {k: v for p in weights for k, v in load_file(str(p)).items()}


def patch_cli(action, patches, model, out, *extra):
    return main(
        ["patch", action, *map(str, patches), "--model", str(model), "--device", "cpu"]
        + ["--out", str(out), *extra]
    )


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_apply_then_revert_restores_the_checkpoint_bytes(tiny_dirs, tmp_path, family):
    base = tiny_dirs[family]
    model = interv.load(base, device="cpu")
    first = make_patch(model, tmp_path / "a.safetensors")
    second = make_patch(model, tmp_path / "b.safetensors", 1, weight="blocks.0.mlp.W_out")
    assert patch_cli("merge", [first, second], base, tmp_path / "both") == 0
    books = sorted(p.name for p in (tmp_path / "both").glob("interv-*"))
    assert books == sorted(
        ["interv-output.json", "interv-patches.json"]
        + [f"interv-originals-{_sha(p)}.safetensors" for p in (first, second)]
    )
    assert patch_cli("revert", [second], tmp_path / "both", tmp_path / "one") == 0
    assert patch_cli("revert", [first], tmp_path / "one", tmp_path / "none") == 0
    original, restored = tensors_of(base), tensors_of(tmp_path / "none")
    assert original.keys() == restored.keys()
    changed = [k for k in original if not torch.equal(original[k], restored[k])]
    assert changed == []  # bit for bit, not up to float rounding
    assert json.loads((tmp_path / "none" / "interv-patches.json").read_text()) == []
    assert not list((tmp_path / "none").glob("interv-originals-*"))
    # the checkpoint with one patch left is the one `apply` of that patch writes
    assert patch_cli("apply", [first], base, tmp_path / "first") == 0
    once, left = tensors_of(tmp_path / "first"), tensors_of(tmp_path / "one")
    assert all(torch.equal(once[k], left[k]) for k in once)


def _sha(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_revert_refuses_what_the_checkpoint_cannot_undo_exactly(tiny_dirs, tmp_path, capsys):
    base = tiny_dirs["gpt2"]
    model = interv.load(base, device="cpu")
    first = make_patch(model, tmp_path / "a.safetensors")
    second = make_patch(model, tmp_path / "b.safetensors", 1)
    out = tmp_path / "out"
    assert patch_cli("revert", [first], base, out) == 2  # the base never carried it
    err = capsys.readouterr().err
    assert str(first) in err and str(base) in err and "does not carry" in err
    assert patch_cli("merge", [first, second], base, tmp_path / "both") == 0
    assert patch_cli("revert", [first], tmp_path / "both", out) == 2
    err = capsys.readouterr().err
    assert "is not the last patch" in err and str(second) in err
    assert patch_cli("apply", [first], base, tmp_path / "edited") == 0
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "edited" / "model.safetensors"
    state = load_file(str(weights))
    key = next(k for k in state if "h.1.mlp.c_proj.weight" in k)
    state[key] = state[key] + 1e-3  # changed after the patch: restoring would undo it too
    save_file(state, str(weights), metadata={"format": "pt"})
    assert patch_cli("revert", [first], tmp_path / "edited", out) == 2
    assert "changed since the patch was applied" in capsys.readouterr().err
    assert not out.exists()  # every refusal wrote nothing


def test_an_existing_out_folder_is_replaced_only_with_overwrite(tiny_dirs, tmp_path, capsys):
    base = tiny_dirs["gpt2"]
    first = make_patch(interv.load(base, device="cpu"), tmp_path / "a.safetensors")
    out = tmp_path / "edited"
    assert patch_cli("apply", [first], base, out) == 0
    assert not (out / "INCOMPLETE").exists()
    before = (out / "model.safetensors").read_bytes()
    (out / "stale.txt").write_text("from another run")
    assert patch_cli("apply", [first], base, out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
    assert patch_cli("apply", [first], base, out, "--overwrite") == 0
    assert (out / "stale.txt").exists()  # not interv's: never deleted
    assert patch_cli("apply", [first], out, out, "--overwrite") == 2  # in place: refused
    assert "is the --model folder" in capsys.readouterr().err
