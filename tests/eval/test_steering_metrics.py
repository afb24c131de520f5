"""Steering metrics: perplexity, sentiment, toxicity, A/B behaviour probability."""

from __future__ import annotations

import math

import pytest
import torch

from interv.data.steering import ABItem
from interv.eval.classifiers import sentiment_probe, toxicity_probe, vader_compound
from interv.eval.steering import (
    ab_answer_probability,
    ab_probability,
    evaluate_generations,
    perplexity,
    profane,
)


def test_perplexity_is_exp_mean_nll_of_the_continuation(tiny_models):
    model = tiny_models("llama")
    prompt, cont = "Hello", " world!"
    p_ids = model.tokenizer(prompt)["input_ids"]
    c_ids = model.tokenizer(cont, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + c_ids])
    logprobs = model.forward(ids)[0, :-1].log_softmax(-1)
    nll = -torch.stack([logprobs[len(p_ids) - 1 + k, t] for k, t in enumerate(c_ids)]).mean()
    batched = perplexity(model, [prompt, "a much longer prompt here"], [cont, " x"])
    assert batched[0] == pytest.approx(math.exp(nll.item()), rel=1e-4)


def test_ab_probability_matches_manual_softmax(tiny_models):
    model = tiny_models("llama")
    items = [ABItem("Pick one.\n(A) yes\n(B) no", "(B)", "(A)")]
    prob = ab_probability(model, items)[0]
    text = (
        model.tokenizer.apply_chat_template(
            [{"role": "user", "content": items[0].question}],
            tokenize=False,
            add_generation_prompt=True,
        )
        + "("
    )
    ids = torch.tensor([model.tokenizer(text, add_special_tokens=False)["input_ids"]])
    a, b = (model.tokenizer(x, add_special_tokens=False)["input_ids"][-1] for x in "AB")
    pair = model.forward(ids)[0, -1, [a, b]].softmax(-1)
    assert prob == pytest.approx(pair[1].item(), rel=1e-5)
    boost_b = {
        "ln_final.hook_normalized": lambda act, ctx: act + 50 * model.weight("unembed.W_U")[:, b]
    }
    assert ab_probability(model, items, hooks=boost_b)[0] > 0.99


def _mean_logp(model, prompt_ids, answer_ids, hooks=None):
    ids = torch.tensor([prompt_ids + answer_ids])
    logp = model.forward(ids, hooks=hooks)[0].log_softmax(-1)
    start = len(prompt_ids) - 1
    return torch.stack([logp[start + k, t] for k, t in enumerate(answer_ids)]).mean()


ITEMS = [
    ABItem("Agree?\n\nChoices:\n (A) Yes, I do\n (B) No", "(B)", "(A)"),
    ABItem("A much longer question about a plan.\n(A) Never\n(B) Sure, go ahead", "(A)", "(B)"),
]


def test_ab_answer_probability_is_the_softmax_of_mean_answer_logprobs(tiny_models):
    model = tiny_models("llama")
    tok = model.tokenizer
    probs = ab_answer_probability(model, ITEMS)
    for item, prob in zip(ITEMS, probs, strict=True):
        stem, texts = item.options()
        text_a, text_b = texts["A"], texts["B"]
        prompt = tok(
            tok.apply_chat_template(
                [{"role": "user", "content": stem}], tokenize=False, add_generation_prompt=True
            ),
            add_special_tokens=False,
        )["input_ids"]
        pair = torch.stack(
            [
                _mean_logp(model, prompt, tok(t, add_special_tokens=False)["input_ids"])
                for t in (text_a, text_b)
            ]
        ).softmax(-1)
        assert prob == pytest.approx(pair[0 if item.matching_letter == "A" else 1].item(), rel=1e-4)


def test_ab_answer_probability_steers_only_the_answer(tiny_models):
    """Hooks act from the prompt's last token on: prefilled or whole rows (no prefill, e.g.
    nnsight), the numbers agree, and a push that only touches the question changes nothing."""
    model = tiny_models("llama")
    d = model.cfg.d_model
    push = torch.randn(d, generator=torch.Generator().manual_seed(0)) * 5
    hooks = [("blocks.1.hook_resid_post", lambda act, ctx: act + push)]
    plain = ab_answer_probability(model, ITEMS)
    steered = ab_answer_probability(model, ITEMS, hooks=hooks)
    assert max(abs(a - b) for a, b in zip(plain, steered, strict=True)) > 1e-3
    whole = ab_answer_probability(tiny_models("llama", "nnsight"), ITEMS, hooks=hooks)
    assert whole == pytest.approx(steered, abs=1e-4)

    def question_only(act, ctx):  # the prefill's forward is the only one without a past
        return act + push if ctx.run.past_length == 0 and act.shape[1] > 1 else act

    assert ab_answer_probability(
        model, ITEMS, hooks=[("blocks.1.hook_resid_post", question_only)]
    ) == pytest.approx(plain, abs=1e-6)


def test_items_with_more_than_two_choices_score_all_of_them(tiny_models):
    """A matching answer (C) past A and B: both forms normalise over all the item's choices."""
    model = tiny_models("llama")
    tok = model.tokenizer
    question = "How do you feel?\n\nChoices:\n (A) Fine\n (B) Sad\n (C) Angry at them"
    item = ABItem(question, "(C)", "(A)")
    stem, texts = item.options()
    assert stem == "How do you feel?" and texts == {"A": "Fine", "B": "Sad", "C": "Angry at them"}
    chat = tok.apply_chat_template(
        [{"role": "user", "content": stem}], tokenize=False, add_generation_prompt=True
    )
    prompt = tok(chat, add_special_tokens=False)["input_ids"]
    means = torch.stack(
        [
            _mean_logp(model, prompt, tok(t, add_special_tokens=False)["input_ids"])
            for t in texts.values()
        ]
    )
    both = ab_answer_probability(model, [item, ITEMS[0]])
    assert both[0] == pytest.approx(means.softmax(-1)[2].item(), rel=1e-4)
    letters = [tok(x, add_special_tokens=False)["input_ids"][-1] for x in "ABC"]
    text = (
        tok.apply_chat_template(
            [{"role": "user", "content": item.question}], tokenize=False, add_generation_prompt=True
        )
        + "("
    )
    logits = model.forward(torch.tensor([tok(text, add_special_tokens=False)["input_ids"]]))[0, -1]
    expected = logits[letters].softmax(-1)[2].item()
    assert ab_probability(model, [item])[0] == pytest.approx(expected, rel=1e-4)


def test_ab_item_options_need_the_answers_choices():
    with pytest.raises(ValueError, match="without its answers' choices"):
        ABItem("Pick one: yes or no?", "(A)", "(B)").options()
    with pytest.raises(ValueError, match="without its answers' choices"):
        ABItem("Pick?\n(A) yes\n(B) no", "(C)", "(A)").options()
    with pytest.raises(ValueError, match=r"an empty choice \(A\)"):
        ABItem("Pick?\n(A) \n(B) no", "(B)", "(A)").options()
    assert ABItem("Pick one: yes or no?", "(A)", "(B)").letters() == ["A", "B"]


def test_profanity_matches_whole_words():
    assert profane("What the fuck is this")
    assert not profane("The class assignment was hard")


def test_sentiment_and_toxicity_judges():
    pos, neg = "What a wonderful, delightful day, I love it.", "This is awful, I hate it."
    assert vader_compound([pos])[0] > 0.5 > -0.5 > vader_compound([neg])[0]
    probe = sentiment_probe()
    assert probe.accuracy > 0.75
    assert probe.probability([pos])[0] > 0.5 > probe.probability([neg])[0]
    toxic = toxicity_probe()
    assert toxic.accuracy > 0.85
    assert (
        toxic.probability(["you are a stupid worthless idiot"])[0]
        > toxic.probability(["the bridge opens at noon"])[0]
    )


def test_evaluate_generations_errors(tiny_models):
    with pytest.raises(ValueError, match="Unknown metric"):
        evaluate_generations(["a"], ["b"], metrics=["bleu"])
    with pytest.raises(ValueError, match="needs the unsteered reference model"):
        evaluate_generations(["a"], ["b"], metrics=["perplexity"])
    result = evaluate_generations(
        ["a"], ["b c d"], metrics=["distinct", "perplexity"], reference=tiny_models("gpt2")
    )
    assert result["distinct_1"] == 1.0 and result["perplexity"] > 1
