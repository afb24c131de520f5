"""Token ids of texts, answers and subjects: what every method and metric tokenizes alike.

* ``answer_ids``: an answer's tokens as they follow a prompt (with a leading space);
* ``tokenize``: texts as token-id lists;
* ``encode``: a text's ids and its *lookup token*, chosen by ``fact_token``: the subject's last
  token (``subject_last``, ROME's default), its first token (``subject_first``) or the text's
  last token (``last``). Positions come from the tokenizer's character offsets, so a subject
  that shares a token with the text around it still maps to the token holding its last
  character.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .adapters import HookedModel
from .errors import ConfigError, RequestError

FACT_TOKENS = ("subject_last", "subject_first", "last")


def answer_ids(model: HookedModel, answer: str) -> list[int]:
    """Token ids of an answer as it follows a prompt (with a leading space)."""
    text = answer if answer.startswith(" ") else " " + answer
    return model.tokenizer(text, add_special_tokens=False)["input_ids"]


def tokenize(
    model: HookedModel, texts: Sequence[str], *, special_tokens: bool = True
) -> list[list[int]]:
    return [model.tokenizer(t, add_special_tokens=special_tokens)["input_ids"] for t in texts]


@dataclass(frozen=True)
class Encoded:
    """Token ids of one text and the index of its lookup token."""

    ids: tuple[int, ...]
    lookup: int


def encode(model: HookedModel, text: str, span: tuple[int, int], fact_token: str) -> Encoded:
    """Tokenize ``text`` and find the lookup token of the subject at character ``span``."""
    if fact_token not in FACT_TOKENS:
        raise ConfigError(f"fact_token must be one of {FACT_TOKENS}, got {fact_token!r}.")
    if not getattr(model.tokenizer, "is_fast", False):
        raise ConfigError(
            "Locating the subject needs a fast tokenizer (character offsets); "
            "load the model's fast tokenizer."
        )
    enc = model.tokenizer(text, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    if fact_token == "last":
        return Encoded(tuple(ids), len(ids) - 1)
    char = span[1] - 1 if fact_token == "subject_last" else span[0]
    for index, (start, end) in enumerate(offsets):
        if start <= char < end:
            return Encoded(tuple(ids), index)
    raise RequestError(f"Could not find the subject's token at character {char} of {text!r}.")
