"""Benchmark loaders and the EasyEdit-layout metric dicts."""

from __future__ import annotations

import pytest
import torch

from interv.data.editing import counterfact, request_from_record, zsre
from interv.edit import EditRequest
from interv.eval.editing import evaluate, summarize
from interv.patch import PatchSet, WeightPatch


def test_counterfact_and_zsre_records():
    cf = counterfact(3)
    assert len(cf) == 3 and cf[0].subject in cf[0].prompt
    assert cf[0].rephrase_prompts and "neighborhood" in cf[0].locality
    zs = zsre(2)
    assert zs[0].portability["one_hop"][0][1] == "Athletics"


def test_record_with_portability_lists():
    record = {"prompt": "The capital of X is", "subject": "X", "target_new": ["Rome"],
              "ground_truth": "Paris", "portability": {"alias": [{"prompt": "Y's capital is",
                                                                  "ground_truth": [["Rome"]]}]}}
    request = request_from_record(record)
    assert request.target_new == "Rome" and request.portability == {"alias": [("Y's capital is", "Rome")]}


def test_locality_is_one_before_and_drops_after_damage(fresh_tiny):
    model = fresh_tiny("llama")
    requests = [
        EditRequest(prompt="Hello world", target_new="abc", subject="Hello",
                    rephrase_prompts=["Hi world"], locality={"n": [("The cat", "sat down")]},
                    portability={"p": [("Hello there", "abc")]}),
    ]
    pre = evaluate(model, requests)
    assert pre[0]["locality"] == {"n_acc": [1.0]}
    assert set(pre[0]) >= {"rewrite_acc", "rephrase_acc", "locality", "portability"}
    damage = PatchSet([WeightPatch("blocks.1.mlp.W_out", delta=torch.randn(64, 32) * 10)])
    with damage.applied(model):
        post = evaluate(model, requests, reference=pre)
    assert post[0]["locality"]["n_acc"][0] < 1.0
    summary = summarize(post)
    assert set(summary) == {"rewrite_acc", "rephrase_acc", "locality", "portability"}


@pytest.mark.real_model
def test_known_fact_scores_on_the_default_model(real_models):
    model = real_models("hf")
    request = EditRequest(prompt="The capital of France is", target_new="Paris", subject="France",
                          rephrase_prompts=["France's capital city is"])
    result = evaluate(model, [request])[0]
    assert result["rewrite_acc"] == [1.0]
