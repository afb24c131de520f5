"""Edit requests and the teacher-forced metrics the editing methods are judged by."""

from __future__ import annotations

import pytest
import torch

from interv.edit import EditRequest, RequestError
from interv.eval.tokens import (
    answer_ids,
    predicted_answer_tokens,
    token_accuracy,
    unchanged_fraction,
)


def test_request_validation():
    with pytest.raises(RequestError, match="does not occur in prompt"):
        EditRequest(prompt="The capital of France is", subject="Germany", target_new="Rome")
    with pytest.raises(RequestError, match="empty `target_new`"):
        EditRequest(prompt="The capital of France is", target_new="  ")
    with pytest.raises(RequestError, match="needs `subject`"):
        EditRequest(prompt="x y", target_new="z").require_subject("ROME")


def test_token_accuracy_is_teacher_forced_argmax(tiny_models):
    model = tiny_models("llama")
    prompt, answer = "Hello world", "ab cd"
    ids = model.tokenizer(prompt)["input_ids"] + answer_ids(model, answer)
    n = len(answer_ids(model, answer))
    logits = model.forward(torch.tensor([ids]))
    predicted = logits[0, -n - 1 : -1].argmax(-1)
    expected = (predicted == torch.tensor(ids[-n:])).float().mean().item()
    assert token_accuracy(model, [prompt], [answer]) == [pytest.approx(expected)]
    assert torch.equal(predicted_answer_tokens(model, [prompt], [answer])[0], predicted)


@pytest.mark.real_model
def test_token_accuracy_on_the_default_model(real_models):
    model = real_models("hf")
    scores = token_accuracy(model, ["The capital of France is"] * 2, ["Paris", "London"])
    assert scores == [1.0, 0.0]


def test_predictions_are_batch_independent(tiny_models):
    model = tiny_models("gpt2")
    prompts, answers = ["Hello world", "abc", "x"], ["foo bar", "q", "longer answer here"]
    batched = predicted_answer_tokens(model, prompts, answers, batch_size=3)
    single = [
        predicted_answer_tokens(model, [p], [a])[0] for p, a in zip(prompts, answers, strict=True)
    ]
    for a, b in zip(batched, single, strict=True):
        assert torch.equal(a, b)
    assert [len(t) for t in batched] == [len(answer_ids(model, a)) for a in answers]


def test_unchanged_fraction():
    before = [torch.tensor([1, 2, 3]), torch.tensor([4])]
    after = [torch.tensor([1, 2, 9]), torch.tensor([4])]
    assert unchanged_fraction(before, after) == pytest.approx([2 / 3, 1.0])
