"""EasyEdit-layout metric dicts: teacher-forced and open-generation protocols."""

from __future__ import annotations

import pytest
import torch

from interv.edit import EditRequest
from interv.eval.editing import evaluate, evaluate_generation, summarize
from interv.patch import PatchSet, WeightPatch

REQUESTS = [
    EditRequest(
        prompt="Hello world",
        target_new="abc",
        subject="Hello",
        rephrase_prompts=["Hi world"],
        locality={"n": [("The cat", "sat down"), ("A dog", "ran")]},
        portability={"p": [("Hello there", "abc"), ("Hey", "abd")]},
    ),
    EditRequest(prompt="Another one", target_new="xy"),
]


def damage(model) -> PatchSet:
    c = model.cfg
    return PatchSet(
        [
            WeightPatch(
                "blocks.1.mlp.W_out",
                delta=torch.randn(c.d_mlp, c.d_model, generator=torch.Generator().manual_seed(0))
                * 10,
            )
        ]
    )


def test_teacher_forced_layout_matches_easyedit(fresh_tiny):
    model = fresh_tiny("llama")
    pre = evaluate(model, REQUESTS)
    assert set(pre[0]) == {"rewrite_acc", "rephrase_acc", "locality", "portability"}
    assert set(pre[1]) == {"rewrite_acc", "locality", "portability"}  # no rephrase given: no key
    assert pre[1]["locality"] == {} and pre[1]["portability"] == {}
    # pre holds the predicted locality tokens only, one list of token ids per probe
    assert set(pre[0]["locality"]) == {"n_output"}
    assert [len(t) for t in pre[0]["locality"]["n_output"]] == [
        len(model.tokenizer(" sat down")["input_ids"]),
        len(model.tokenizer(" ran")["input_ids"]),
    ]
    assert all(isinstance(x, int) for x in pre[0]["locality"]["n_output"][0])
    assert len(pre[0]["portability"]["p_acc"]) == 2 and len(pre[0]["rewrite_acc"]) == 1
    same = evaluate(model, REQUESTS, reference=pre)
    assert same[0]["locality"]["n_acc"] == [1.0, 1.0]
    assert same[0]["locality"]["n_output"] == pre[0]["locality"]["n_output"]
    with damage(model).applied(model):
        post = evaluate(model, REQUESTS, reference=pre)
    acc = post[0]["locality"]["n_acc"]
    outputs = zip(pre[0]["locality"]["n_output"], post[0]["locality"]["n_output"], strict=True)
    assert acc == [
        pytest.approx(sum(a == b for a, b in zip(x, y, strict=True)) / len(x)) for x, y in outputs
    ]
    assert min(acc) < 1.0


def test_summary_means_and_keys(tiny_models):
    model = tiny_models("llama")
    pre = evaluate(model, REQUESTS)
    post = evaluate(model, REQUESTS, reference=pre)
    summary = summarize(post)
    assert set(summary) == {
        "rewrite_acc",
        "rephrase_acc",
        "locality",
        "portability",
        "locality_by_key",
        "portability_by_key",
    }
    assert summary["locality"] == 1.0 and summary["locality_by_key"] == {"n_acc": 1.0}
    expected = (post[0]["rewrite_acc"][0] + post[1]["rewrite_acc"][0]) / 2
    assert summary["rewrite_acc"] == pytest.approx(expected, abs=1e-4)
    assert "locality" not in summarize(pre)  # before an edit there is nothing to compare with


def test_reference_must_match(tiny_models):
    with pytest.raises(ValueError, match="reference has 1 results for 2 requests"):
        evaluate(tiny_models("llama"), REQUESTS, reference=[{}])


def test_fluency_is_added_on_request(tiny_models):
    model = tiny_models("llama")
    first = evaluate(model, REQUESTS, test_generation=True, seed=3)
    again = evaluate(model, REQUESTS, test_generation=True, seed=3)
    assert [r["fluency"] for r in first] == [r["fluency"] for r in again]  # seeded sampling
    assert all(r["fluency"]["ngram_entropy"] > 0 for r in first)
    assert "fluency" in summarize(first)


def test_generation_protocol_layout(fresh_tiny):
    model = fresh_tiny("llama")
    pre = evaluate_generation(model, REQUESTS, max_new_tokens=6)
    assert set(pre[0]) == {
        "rewrite_acc",
        "rewrite_gen_content",
        "rephrase_acc",
        "rephrase_gen_content",
        "locality",
        "portability",
    }
    assert set(pre[0]["locality"]) == {"n_gen_content"}
    assert set(pre[0]["portability"]) == {"p_acc", "p_gen_content"}
    assert all(
        isinstance(t, str) and "." not in t and "\n" not in t
        for t in pre[0]["locality"]["n_gen_content"]
    )
    post = evaluate_generation(model, REQUESTS, reference=pre, max_new_tokens=6)
    assert post[0]["locality"]["n_acc"] == [1.0, 1.0]
    with damage(model).applied(model):
        changed = evaluate_generation(model, REQUESTS, reference=pre, max_new_tokens=6)
    texts = zip(
        pre[0]["locality"]["n_gen_content"], changed[0]["locality"]["n_gen_content"], strict=True
    )
    assert changed[0]["locality"]["n_acc"] == [float(a == b) for a, b in texts]
    with pytest.raises(ValueError, match="match must be one of"):
        evaluate_generation(model, REQUESTS, match="fuzzy")


@pytest.mark.real_model
def test_known_facts_on_the_default_model(real_models):
    model = real_models("hf")
    request = EditRequest(
        prompt="The capital of France is",
        target_new="Paris",
        subject="France",
        rephrase_prompts=["What is the capital of France?"],
    )
    assert evaluate(model, [request])[0]["rewrite_acc"] == [1.0]
    result = evaluate_generation(model, [request], match="contains")[0]
    assert result["rephrase_acc"] == [1.0], result["rephrase_gen_content"]
