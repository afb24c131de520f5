"""The edit loop: pre once, post after each edit, revert or keep, nothing left behind on errors."""

from __future__ import annotations

import hashlib

import pytest
import torch

from interv.edit import EditMethod, EditRequest
from interv.edit.runner import requested_rewrite, run_edits
from interv.eval.editing import evaluate
from interv.hparams import HParams
from interv.patch import WeightPatch

REQUESTS = [
    EditRequest(prompt="Hello world", target_new="abc", locality={"n": [("The cat", "sat")]}),
    EditRequest(prompt="Good day", target_new="xyz", rephrase_prompts=["Nice day"]),
    EditRequest(prompt="Third one", target_new="q"),
]


def weights_hash(model) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.hf_model.named_parameters()):
        digest.update(name.encode() + param.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


class Shift(EditMethod):
    """Adds a constant to blocks.1.mlp.W_out; fails on a prompt containing 'fail'."""

    name = "shift"
    hparams_class = HParams
    batchable = True

    def __init__(self):
        super().__init__(HParams())
        self.prepared = 0
        self.calls: list[int] = []

    def prepare(self, model):
        self.prepared += 1

    def compute(self, model, requests):
        if any("fail" in r.prompt for r in requests):
            raise RuntimeError("cannot edit this one")
        self.calls.append(len(requests))
        delta = torch.full_like(model.weight("blocks.1.mlp.W_out"), 0.01)
        return self.patch_set(model, requests, [WeightPatch("blocks.1.mlp.W_out", delta=delta)])


def test_non_sequential_restores_and_sequential_keeps(fresh_tiny):
    model = fresh_tiny("llama")
    original = weights_hash(model)
    method = Shift()
    result = run_edits(model, method, REQUESTS, evaluate)
    assert weights_hash(model) == original and len(result.patches) == 3 and method.prepared == 1
    assert [r["case_id"] for r in result.records] == [0, 1, 2]
    assert set(result.seconds) >= {"stats", "edit_total", "per_edit"}
    combined = result.combined()
    assert len(combined.patches) == 1 and len(combined.requests) == 3
    torch.testing.assert_close(combined.patches[0].dense(), torch.full((64, 32), 0.03))
    kept = run_edits(model, method, REQUESTS, evaluate, sequential=True, batch_size=2)
    assert method.calls[-2:] == [2, 1] and weights_hash(model) != original
    for patch in reversed(kept.patches):
        patch.revert(model)
    assert weights_hash(model) == original


class Grouped(Shift):
    """Independent edits computed three at a time, each shift as large as its prompt is long."""

    batchable = False
    independent_group = 3

    def compute(self, model, requests):
        (request,) = requests
        delta = torch.full_like(model.weight("blocks.1.mlp.W_out"), 0.01 * len(request.prompt))
        return self.patch_set(model, requests, [WeightPatch("blocks.1.mlp.W_out", delta=delta)])

    def compute_each(self, model, requests):
        self.calls.append(len(requests))
        return [self.compute(model, [r]) for r in requests]


def test_independent_edits_are_computed_in_groups_and_scored_one_by_one(fresh_tiny):
    """Non-sequential single edits go to compute_each a group at a time (3 + 1 here); each is
    scored with its own patch alone, and every record carries an equal share of its group's
    time. Sequential runs compute one edit per call, on top of the earlier ones."""
    model = fresh_tiny("llama")
    original = weights_hash(model)
    requests = [*REQUESTS, EditRequest(prompt="Four", target_new="w")]
    method = Grouped()
    result = run_edits(model, method, requests, evaluate)
    assert method.calls == [3, 1] and weights_hash(model) == original
    assert [r["case_id"] for r in result.records] == [0, 1, 2, 3]
    assert len({r["time"] for r in result.records[:3]}) == 1
    for record, request, patch in zip(result.records, requests, result.patches, strict=True):
        assert patch.requests == [request.to_dict()]
        with patch.applied(model):
            again = evaluate(model, [request], reference=[record["pre"]])
        assert again[0] == record["post"]
    run_edits(model, method, requests, evaluate, sequential=True)
    assert method.calls == [3, 1]  # compute(), not compute_each()


def test_each_edit_is_scored_on_its_own_model_state(fresh_tiny):
    model = fresh_tiny("llama")
    pre = evaluate(model, REQUESTS)
    result = run_edits(model, Shift(), REQUESTS, evaluate, sequential=True, pre=pre)
    assert [r["pre"] for r in result.records] == pre
    # request 0 was scored with one shift applied, request 2 with three
    for k, patch in enumerate(reversed(result.patches)):
        patch.revert(model)
        if k == 1:
            again = evaluate(model, REQUESTS[:1], reference=pre[:1])
            assert again[0] == result.records[0]["post"]


def test_a_failure_mid_run_leaves_the_model_unchanged(fresh_tiny):
    model = fresh_tiny("llama")
    original = weights_hash(model)
    bad = [*REQUESTS[:2], EditRequest(prompt="please fail", target_new="x")]
    with pytest.raises(RuntimeError, match="cannot edit"):
        run_edits(model, Shift(), bad, evaluate, sequential=True)
    assert weights_hash(model) == original
    with pytest.raises(ValueError, match="pre holds 1 results for 3 requests"):
        run_edits(model, Shift(), REQUESTS, evaluate, pre=[{}])


def test_requested_rewrite_layout():
    out = requested_rewrite(REQUESTS[0])
    assert out["locality"] == {"n": {"prompt": ["The cat"], "ground_truth": ["sat"]}}
    assert out["portability"] == {} and out["prompt"] == "Hello world"
    assert requested_rewrite(REQUESTS[1])["rephrase_prompt"] == ["Nice day"]


def test_preparation_of_locate_methods_loads_their_layers_and_is_timed(fresh_tiny, monkeypatch):
    """``run_edits`` calls ``prepare`` once before the first edit and reports its time; a
    locate-then-edit method prepares the statistics of its configured layers (ROME too)."""
    import time

    from interv.edit.rome import ROME, ROMEHParams

    method = ROME(ROMEHParams(layers=[1], fact_token="last"))
    seen = []

    def prepare_layers(model, layers):
        seen.append(layers)
        time.sleep(0.05)

    monkeypatch.setattr(method, "prepare_layers", prepare_layers)
    monkeypatch.setattr(
        method, "compute_each", lambda model, requests: [Shift().compute(model, requests)]
    )
    result = run_edits(fresh_tiny("llama"), method, REQUESTS[:1], evaluate)
    assert seen == [[1]] and result.seconds["stats"] >= 0.05


def test_progress_shows_each_optimisation_step(fresh_tiny, capsys):
    """With a progress bar, a method's steps show beside the edit count while it computes
    (a group of ROME edits is one call; without the steps the bar would sit at 0)."""

    class Stepping(Shift):
        def compute(self, model, requests):
            for step in range(3):
                self.report(f"value step {step + 1}/3")
            return super().compute(model, requests)

    method = Stepping()
    run_edits(fresh_tiny("llama"), method, REQUESTS[:1], evaluate, progress=True)
    assert "value step 3/3" in capsys.readouterr().err
    assert method.on_step is None  # the bar's callback does not outlive the run
