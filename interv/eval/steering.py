"""Metrics for steered generations (EasyEdit2's set, all offline).

* perplexity of each continuation under the *unsteered* model (generated tokens only);
* distinct-1/2/3 and n-gram-entropy fluency (``interv.eval.text``);
* sentiment: VADER compound and the share of continuations with compound >= 0.05, plus an
  SST-2 probe's P(positive);
* toxicity: share of continuations containing a profane term, and a probe's P(toxic);
* A/B behaviour probability for CAA test sets: of the answer letter (``ab_probability``,
  CAA's format) or of the answer's text after the bare question (``ab_answer_probability``,
  the cloze form small models are evaluated in).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from functools import cache
from typing import Any

import torch
from jaxtyping import Float

from ..adapters import HookedModel
from ..adapters.backends import Batch
from ..adapters.text import left_pad_ids, right_pad_ids
from ..contrast import AB_FORMS, ABItem
from ..data.steering import profanity_terms
from ..errors import ConfigError
from ..prompts import ab_answer_ids, ab_prompt
from .classifiers import sentiment_probe, toxicity_probe, vader_compound
from .text import distinct_n, fluency, words

METRICS = ("perplexity", "distinct", "fluency", "sentiment", "sentiment_probe", "toxicity")
# Each number a metric group reports -> its group (for picking one number, e.g. in calibration).
METRIC_KEYS = {
    "distinct_1": "distinct",
    "distinct_2": "distinct",
    "distinct_3": "distinct",
    "fluency": "fluency",
    "vader_compound": "sentiment",
    "vader_positive_share": "sentiment",
    "vader_negative_share": "sentiment",
    "probe_positive": "sentiment_probe",
    "profanity_share": "toxicity",
    "probe_toxic": "toxicity",
}


@torch.no_grad()
def perplexity(
    model: HookedModel, prompts: Sequence[str], continuations: Sequence[str], batch_size: int = 8
) -> list[float]:
    """exp(mean NLL) of each continuation's tokens given its prompt."""
    out: list[float] = []
    tok = model.tokenizer
    for start in range(0, len(prompts), batch_size):
        rows, spans = [], []
        for prompt, cont in zip(
            prompts[start : start + batch_size],
            continuations[start : start + batch_size],
            strict=False,
        ):
            p_ids = tok(prompt)["input_ids"]
            c_ids = tok(cont, add_special_tokens=False)["input_ids"]
            rows.append(p_ids + c_ids)
            spans.append(len(c_ids))
        width = max(len(r) for r in rows)
        ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        logits = model.forward(Batch(ids.to(model.device), mask.to(model.device))).float()
        logprobs = (
            logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None].to(logits.device))[..., 0]
        )
        for row, span in enumerate(spans):
            out.append(
                math.exp(-logprobs[row, width - 1 - span :].mean().item()) if span else float("nan")
            )
    return out


@cache
def _profanity_pattern() -> re.Pattern[str]:
    terms = sorted((re.escape(t) for t in profanity_terms() if len(t) > 2), key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(terms) + r")\b", re.IGNORECASE)


def profane(text: str) -> bool:
    return bool(_profanity_pattern().search(text))


def text_metrics(texts: Sequence[str], metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Metrics that need only the generated texts."""
    result: dict[str, float] = {}
    if "distinct" in metrics:
        for n in (1, 2, 3):
            result[f"distinct_{n}"] = distinct_n(texts, n)
    if "fluency" in metrics:
        result["fluency"] = fluency(texts)
    if "sentiment" in metrics:
        compound = vader_compound(texts)
        result["vader_compound"] = statistics.fmean(compound)
        result["vader_positive_share"] = sum(c >= 0.05 for c in compound) / len(compound)
        result["vader_negative_share"] = sum(c <= -0.05 for c in compound) / len(compound)
    if "sentiment_probe" in metrics:
        result["probe_positive"] = statistics.fmean(sentiment_probe().probability(texts))
    if "toxicity" in metrics:
        result["profanity_share"] = sum(profane(t) for t in texts) / len(texts)
        result["probe_toxic"] = statistics.fmean(toxicity_probe().probability(texts))
    return {k: round(v, 4) for k, v in result.items()}


def evaluate_generations(
    prompts: Sequence[str],
    continuations: Sequence[str],
    metrics: Sequence[str] = METRICS,
    reference: HookedModel | None = None,
) -> dict[str, float]:
    """All requested metrics over (prompt, continuation) pairs; perplexity needs ``reference``."""
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ConfigError(
            f"Unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}."
        )
    if not continuations:
        raise ConfigError("No generations to evaluate.")
    result = text_metrics(continuations, metrics)
    if "perplexity" in metrics:
        if reference is None:
            raise ConfigError("The perplexity metric needs the unsteered reference model.")
        ppl = [
            p for p in perplexity(reference, prompts, continuations) if math.isfinite(p) and p < 1e4
        ]
        result["perplexity"] = round(statistics.fmean(ppl), 3) if ppl else float("nan")
    result["mean_words"] = round(statistics.fmean(len(words(c)) for c in continuations), 2)
    return result


@torch.no_grad()
def ab_probability(
    model: HookedModel,
    items: Sequence[ABItem],
    *,
    hooks: Any = None,
    chat_template: bool = True,
    batch_size: int = 8,
) -> list[float]:
    """P(answer letter showing the behaviour), normalised over the letters the item offers
    (A and B, or as many as it lists), per item."""
    out: list[float] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        texts = [ab_prompt(model.tokenizer, item.question, chat_template) for item in chunk]
        encoded = model.tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=not chat_template,
        )
        batch = Batch(
            encoded["input_ids"].to(model.device), encoded["attention_mask"].to(model.device)
        )
        last = model.forward(batch, hooks=hooks)[:, -1].float()
        offered = [item.letters() for item in chunk]
        ids = {
            x: model.tokenizer(x, add_special_tokens=False)["input_ids"][-1]
            for x in set().union(*offered)
        }
        for item, letters, logits in zip(chunk, offered, last, strict=True):
            probs = logits[[ids[x] for x in letters]].softmax(-1)
            out.append(float(probs[letters.index(item.matching_letter)]))
    return out


@torch.no_grad()
def ab_answer_probability(
    model: HookedModel,
    items: Sequence[ABItem],
    *,
    hooks: Any = None,
    chat_template: bool = True,
    batch_size: int = 8,
) -> list[float]:
    """P(the answer showing the behaviour) from the likelihood of each answer's *text*.

    The cloze form of an A/B item: the question without its choices is the prompt, each
    choice's text a continuation, and the probability is the softmax over the item's answers
    (two, or as many as it lists) of their mean per-token log-probability. Models too small
    to map a letter to its choice (on ``ab_probability`` SmolLM2-135M answers CAA's items at
    chance, and a vector there moves the letter, not the behaviour) can still prefer one
    answer's text; SmolLM's own benchmark suite scores small models in this form for the same
    reason. ``hooks`` act on the answer and on the prompt's last token only (CAA's "after the
    instruction"): the rest of the question runs once per item, as an unsteered prefix.
    """
    out: list[float] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        prompts, owners, answers, spans = [], [], [], []
        for item in chunk:
            prompt, by_letter = ab_answer_ids(model.tokenizer, item, chat_template)
            pick = list(by_letter).index(item.matching_letter)
            spans.append((len(answers), len(by_letter), pick))
            owners += [len(prompts)] * len(by_letter)
            prompts.append(prompt)
            answers += list(by_letter.values())
        mean_logp = _answer_logprobs(model, prompts, owners, answers, hooks)
        for first, count, pick in spans:  # softmax over each item's own answers
            out.append(float(mean_logp[first : first + count].softmax(-1)[pick]))
    return out


def _answer_logprobs(
    model: HookedModel,
    prompts: list[list[int]],
    owners: list[int],
    answers: list[list[int]],
    hooks: Any,
) -> torch.Tensor:
    """Mean log-probability of each answer (``owners[j]``: its prompt) with ``hooks`` on the
    prompt's last token and the answer: the prompts' other tokens are prefilled once."""
    pad = model.tokenizer.pad_token_id
    tails = [[prompts[o][-1], *ans] for o, ans in zip(owners, answers, strict=True)]
    try:
        prefix = model.prefill(left_pad_ids([p[:-1] for p in prompts], pad, model.device))
    except NotImplementedError:  # no prefill here: whole rows, the hooks masked to the tails
        return _answer_logprobs_whole(model, [prompts[o] for o in owners], tails, hooks)
    batch = right_pad_ids(tails, pad, model.device)
    past = prefix.select(torch.tensor(owners, device=model.device))
    logp = model.forward(batch, hooks=hooks, past=past).float().log_softmax(-1)
    ids = batch.input_ids
    return torch.stack(
        [
            logp[r, : len(t) - 1].gather(-1, ids[r, 1 : len(t), None]).mean()
            for r, t in enumerate(tails)
        ]
    )


def _answer_logprobs_whole(
    model: HookedModel, prompts: list[list[int]], tails: list[list[int]], hooks: Any
) -> torch.Tensor:
    """``_answer_logprobs`` on whole rows (``prompts[j]`` is row ``j``'s prompt)."""
    rows = [p[:-1] + t for p, t in zip(prompts, tails, strict=True)]
    batch = left_pad_ids(rows, model.tokenizer.pad_token_id, model.device)
    width = batch.input_ids.shape[1]
    steered = torch.zeros_like(batch.attention_mask, dtype=torch.bool)
    for r, t in enumerate(tails):
        steered[r, width - len(t) :] = True
    pairs = list(hooks.items()) if isinstance(hooks, dict) else list(hooks or [])

    def masked(fn: Any) -> Any:
        def run(
            act: Float[torch.Tensor, "batch pos *features"], ctx: Any
        ) -> Float[torch.Tensor, "batch pos *features"]:
            before = act.clone()
            after = fn(act, ctx)
            after = act if after is None else after
            keep = steered.view(*steered.shape, *[1] * (act.dim() - 2))
            return torch.where(keep, after, before)

        return run

    logp = model.forward(batch, hooks=[(n, masked(f)) for n, f in pairs]).float().log_softmax(-1)
    ids = batch.input_ids
    return torch.stack(
        [
            logp[r, width - len(t) : -1].gather(-1, ids[r, width - len(t) + 1 :, None]).mean()
            for r, t in enumerate(tails)
        ]
    )


def ab_scorer(form: str) -> Any:
    """``ab_probability`` for the ``"letter"`` form, ``ab_answer_probability`` for ``"answer"``."""
    forms = dict(zip(AB_FORMS, (ab_probability, ab_answer_probability), strict=True))
    if form not in forms:
        raise ConfigError(f"Unknown A/B form {form!r}; choose one of {', '.join(AB_FORMS)}.")
    return forms[form]
