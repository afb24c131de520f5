"""Answers by open generation, scored by (normalised) string match.

EasyEdit's "real-world" protocol (``evaluation_type: LLM-judge``, after "The Mirage of Model
Editing", 2025): wrap the question in the chat template with the system prompt "You are a
helpful assistant.", decode greedily and stop at ".", a newline or EOS; the answer is correct
when an LLM judge says so, or, without a judge, when it equals the target after
``normalize_answer`` (lowercase, punctuation and the articles a/an/the removed, whitespace
collapsed). Locality is exact string equality of the generation before and after the edit.

interv implements it without the judge: ``match="exact"`` is EasyEdit's fallback,
``match="contains"`` accepts an answer that contains the normalised target as whole words
(useful for chatty models that answer in a full sentence). Generation is batched and capped at
``max_new_tokens`` (EasyEdit: 512); greedy decoding makes the text up to the first stop the
same as with a stop criterion.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from ..adapters import HookedModel
from ..errors import ConfigError

SYSTEM_PROMPT = "You are a helpful assistant."
MATCHES = ("exact", "contains")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_STOP = re.compile(r"[.\n]")


def normalize_answer(text: str) -> str:
    """EasyEdit's (SQuAD's) normalisation: lowercase, no punctuation or articles, single spaces.

    Example:
        >>> normalize_answer("The  Eiffel Tower.")
        'eiffel tower'
    """
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_matches(answer: str, target: str, match: str = "exact") -> bool:
    """Whether a generated answer counts as ``target`` under ``match``."""
    if match not in MATCHES:
        raise ConfigError(f"match must be one of {MATCHES}, got {match!r}.")
    got, want = normalize_answer(answer), normalize_answer(target)
    if match == "exact":
        return got == want
    return bool(want) and f" {want} " in f" {got} "


def cut_at_stop(text: str) -> str:
    """The generation up to its first "." or newline (EasyEdit's stop strings)."""
    return _STOP.split(text, maxsplit=1)[0]


def generate_answers(
    model: HookedModel,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    chat_template: bool | None = None,
    system_prompt: str | None = SYSTEM_PROMPT,
    batch_size: int = 16,
) -> list[str]:
    """Greedy answers, cut at the first stop; ``chat_template=None`` uses it when the model has
    one."""
    if chat_template is None:
        chat_template = bool(getattr(model.tokenizer, "chat_template", None))
    answers: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        texts = model.generate(
            chunk,
            max_new_tokens=max_new_tokens,
            chat_template=chat_template,
            system_prompt=system_prompt if chat_template else None,
        )
        answers += [cut_at_stop(t).strip() for t in texts]
    return answers
