"""Teacher-forced token predictions, the basis of EasyEdit's editing metrics.

EasyEdit's definitions (``easyeditor/evaluate``), kept here:

* **token accuracy** (``rewrite_acc``, ``rephrase_acc``, ``portability``): feed
  ``prompt + " " + answer`` and take the argmax at each position that predicts an answer token;
  the score is the fraction of answer tokens predicted correctly (so partial credit is possible
  before any edit).
* **locality**: record those argmax tokens for a locality prompt before and after the edit; the
  score is the fraction that did not change (whether they were right does not matter).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from ..adapters import HookedModel
from ..adapters.backends import Batch
from ..tokens import answer_ids

__all__ = [
    "answer_ids",
    "predicted_answer_tokens",
    "teacher_forced_batch",
    "token_accuracy",
    "unchanged_fraction",
]


def teacher_forced_batch(
    model: HookedModel, prompts: Sequence[str], answers: Sequence[str]
) -> tuple[Batch, list[list[int]], list[int]]:
    """Left-padded prompt+answer ids, the answer ids, and where each answer starts."""
    rows, targets = [], []
    for prompt, answer in zip(prompts, answers, strict=True):
        prompt_ids = model.tokenizer(prompt)["input_ids"]
        target = answer_ids(model, answer)
        rows.append(prompt_ids + target)
        targets.append(target)
    width = max(len(r) for r in rows)
    pad = model.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    starts = [width - len(t) for t in targets]
    return Batch(ids.to(model.device), mask.to(model.device)), targets, starts


@torch.no_grad()
def predicted_answer_tokens(
    model: HookedModel, prompts: Sequence[str], answers: Sequence[str], batch_size: int = 16
) -> list[Int[Tensor, " answer"]]:
    """Argmax token at each position that predicts an answer token, per (prompt, answer)."""
    out: list[Int[Tensor, " answer"]] = []
    for start in range(0, len(prompts), batch_size):
        chunk_p, chunk_a = prompts[start : start + batch_size], answers[start : start + batch_size]
        batch, targets, starts = teacher_forced_batch(model, chunk_p, chunk_a)
        logits = model.forward(batch)
        for row, (target, begin) in enumerate(zip(targets, starts, strict=True)):
            # logits at position p predict token p + 1
            out.append(logits[row, begin - 1 : begin - 1 + len(target)].argmax(-1).cpu())
    return out


def token_accuracy(
    model: HookedModel, prompts: Sequence[str], answers: Sequence[str], batch_size: int = 16
) -> list[float]:
    """EasyEdit's teacher-forced accuracy of each answer (fraction of its tokens predicted)."""
    predicted = predicted_answer_tokens(model, prompts, answers, batch_size)
    scores = []
    for tokens, answer in zip(predicted, answers, strict=True):
        target = torch.tensor(answer_ids(model, answer))
        scores.append(float((tokens == target).float().mean()))
    return scores


def unchanged_fraction(
    before: Sequence[Int[Tensor, " _answer"]], after: Sequence[Int[Tensor, " _answer"]]
) -> list[float]:
    """EasyEdit locality: the fraction of predicted tokens that stayed the same."""
    return [float((a == b).float().mean()) for a, b in zip(before, after, strict=True)]
