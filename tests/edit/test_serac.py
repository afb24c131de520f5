"""SERAC: training on edit records, the memory as an adaptor (apply, revert, save, load,
combine), the edit loop, the command line, and the shipped archive on the default model."""

from __future__ import annotations

import json

import pytest
import torch

from interv.cli.main import main
from interv.data.editing import zsre
from interv.edit.runner import load_edit, run_edits
from interv.edit.serac import SERAC, SERACArchive, SERACHParams, SERACMemory, shipped_archive
from interv.edit.serac_training import Embedded, scope_scores, texts_of, train
from interv.errors import ArtefactError, ConfigError, PatchError
from interv.eval.editing import evaluate, summarize
from interv.patch import PatchSet, WeightPatch
from interv.requests import EditRequest
from tests.edit.test_contract import REQUESTS, weights_hash

UNRELATED = "A bird flew over"


def memory(model, archive, requests=REQUESTS) -> SERACMemory:
    return SERAC(SERACHParams(archive=str(archive))).compute(model, requests)


def test_training_separates_in_scope_texts_and_writes_an_archive(edit_tiny, tmp_path):
    records = zsre(40)
    hp = SERACHParams(max_iters=200, batch_size=16, val_steps=3, seed=3)
    path, meta = train(edit_tiny, records[10:], records[:10], hp, tmp_path, progress=False)
    archive = SERACArchive.load(path)
    trained = meta["trained"]
    assert trained["records"] == 30 and trained["steps"] == 200
    assert len(trained["counterfactual"]) == 4  # two templates, with and without demos
    assert archive.template in [row["template"] for row in trained["counterfactual"]]
    assert 0 < archive.threshold < 1 and archive.model.fingerprint == edit_tiny.fingerprint()
    # on its own training records the classifier is right nearly everywhere
    inside, outside = scope_scores(archive.classifier, Embedded(texts_of(edit_tiny, records[10:])))
    assert float((inside > archive.threshold).float().mean()) >= 0.9
    assert float((outside <= archive.threshold).float().mean()) >= 0.9
    # the loss fell: a one-step run ends far higher
    _, first = train(
        edit_tiny,
        records[10:],
        records[:10],
        hp.replace(max_iters=1),
        tmp_path / "u",
        progress=False,
    )
    assert trained["final_loss"] < 0.5 * first["trained"]["final_loss"]


def test_training_data_without_probes_or_records_is_refused(edit_tiny):
    with pytest.raises(ConfigError, match="needs edit records"):
        texts_of(edit_tiny, [])
    bare = [EditRequest(prompt="Hello world, this is", target_new="Rome")]
    with pytest.raises(ConfigError, match="needs locality probes"):
        texts_of(edit_tiny, bare)


def test_memory_routes_applies_reverts_saves_and_loads(edit_tiny, serac_archive, tmp_path):
    model = edit_tiny
    original = weights_hash(model)
    mem = memory(model, serac_archive)
    probability, index = mem.scope([f"{REQUESTS[1].prompt} mat", "A cat sat on the", UNRELATED])
    assert probability[0] > mem.threshold and probability[1] > mem.threshold
    assert index[:2].tolist() == [1, 1] and probability[2] < mem.threshold
    prompts = [r.prompt for r in REQUESTS] + [UNRELATED]
    plain = model.forward(prompts)
    with mem.applied(model):
        edited = model.forward(prompts)
        with pytest.raises(PatchError, match="already applied"):
            mem.apply(model)
    assert torch.equal(model.forward(prompts), plain) and weights_hash(model) == original
    assert not torch.allclose(edited[0, -1], plain[0, -1])
    path = mem.save(tmp_path / "memory.safetensors")
    loaded = load_edit(path)
    assert isinstance(loaded, SERACMemory) and loaded.edits == mem.edits
    assert loaded.threshold == mem.threshold and loaded.requests == mem.requests
    with loaded.applied(model):
        assert torch.equal(model.forward(prompts), edited)
    with pytest.raises(PatchError, match="changes no weight"):
        mem.merge_into(model)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(ArtefactError, match="corrupt"):
        SERACMemory.load(truncated)


def test_memories_combine_and_stack_with_weight_patches(edit_tiny, serac_archive, tmp_path):
    model = edit_tiny
    clean = weights_hash(model)
    one = memory(model, serac_archive, REQUESTS[:1])
    two = memory(model, serac_archive, REQUESTS[1:])
    both = one + two
    assert both.edits == one.edits + two.edits and len(both.requests) == 2
    with both.applied(model):
        together = model.forward([r.prompt for r in REQUESTS])
    with one.applied(model), two.applied(model):
        stacked = model.forward([r.prompt for r in REQUESTS])
    texts = [r.prompt for r in REQUESTS]
    weight = "blocks.0.mlp.W_out"
    patch = PatchSet([WeightPatch(weight, delta=torch.full(model.weight_shape(weight), 1e-3))])
    with patch.applied(model), two.applied(model):
        patch_and_two = model.forward(texts)
    one.apply(model), patch.apply(model), two.apply(model)
    one.revert(model)  # from under a weight patch and a memory: both stay, rebased
    assert list(model.patches) == [patch, two]
    torch.testing.assert_close(model.forward(texts), patch_and_two, atol=0, rtol=0)
    patch.revert(model), two.revert(model)
    assert weights_hash(model) == clean and not model.patches
    with pytest.raises(PatchError, match="not applied"):
        one.revert(model)
    # each prompt is routed to its own edit either way; stacked memories put both contexts
    # before a row only when both claim it
    torch.testing.assert_close(together[1, -1], stacked[1, -1], atol=1e-5, rtol=1e-5)
    other = SERACArchive.load(str(serac_archive))
    other.meta = {"trained": {"steps": -1}}
    with pytest.raises(ArtefactError, match="different archives"):
        SERACMemory.combine([one, SERACMemory(other, [("a", "b")], 0.5)])


def test_edit_loop_leaves_the_model_as_it_was(edit_tiny, serac_archive):
    model = edit_tiny
    original = weights_hash(model)
    method = SERAC(SERACHParams(archive=str(serac_archive)))
    requests = [
        EditRequest(prompt=r.prompt, target_new=r.target_new, locality={"nq": [(UNRELATED, "x")]})
        for r in REQUESTS
    ]
    result = run_edits(model, method, requests, evaluate, batch_size=2)
    assert not model.patches and weights_hash(model) == original
    assert summarize([r["post"] for r in result.records])["locality"] == 1.0
    assert isinstance(result.combined(), SERACMemory) and len(result.combined().edits) == 2
    result = run_edits(model, method, requests, evaluate, sequential=True)
    assert len(model.patches) == 2
    for mem in reversed(result.patches):
        mem.revert(model)
    assert not model.patches


def test_cli_edit_writes_a_memory_that_patch_inspect_reads(
    edit_tiny_dir, serac_archive, tmp_path, capsys
):
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps([r.to_dict() for r in REQUESTS]))
    hparams = tmp_path / "serac.yaml"
    hparams.write_text(f"method: serac\narchive: {serac_archive}\n")
    out = tmp_path / "run"
    args = ["--requests", str(requests), "--hparams", str(hparams), "--out", str(out)]
    assert main(["edit", *args, "--model", str(edit_tiny_dir), "--device", "cpu"]) == 0
    saved = out / "serac-memory.safetensors"
    assert saved.is_file() and not (out / "patch.safetensors").exists()
    capsys.readouterr()
    assert main(["patch", "inspect", str(saved)]) == 0
    shown = capsys.readouterr().out
    assert "SERAC memory of 2 edit(s)" in shown and "Hello world, this is -> Rome" in shown
    code = main(["patch", "apply", str(saved), "--model", str(edit_tiny_dir), "--out", str(out)])
    assert code != 0 and "no checkpoint can carry it" in capsys.readouterr().err


@pytest.mark.real_model
def test_shipped_archive_edits_the_default_model(real_models):
    model = real_models()
    assert shipped_archive(model).name == "SmolLM2-135M-Instruct.serac.safetensors"
    requests = zsre(3)  # held out: `interv train serac` never trains on ZsRE records 0..99
    method = SERAC()
    archive = method.archive(model)
    assert archive.meta["trained"]["data"]["dataset"] == "zsre"
    pre = evaluate(model, requests)
    result = run_edits(model, method, requests, evaluate, pre=pre)
    post = summarize([r["post"] for r in result.records])
    assert post["rewrite_acc"] >= 0.9 and post["rephrase_acc"] >= 0.9
    assert post["locality"] == 1.0 and not model.patches
    mem = method.compute(model, requests[:1])
    with mem.applied(model):  # the edit is said in open generation too, chat included
        answer = model.generate(requests[0].prompt, max_new_tokens=8)[0]
        chat = model.generate(requests[0].prompt, max_new_tokens=16, chat_template=True)[0]
    assert requests[0].target_new in answer and requests[0].target_new in chat
    assert requests[0].target_new not in model.generate(requests[0].prompt, max_new_tokens=8)[0]
