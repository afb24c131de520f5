"""Fluency: EasyEdit's weighted bigram/trigram entropy of a sampled generation.

EasyEdit's definition (``easyeditor/evaluate/evaluate_utils.py``, ``test_generation=True``):
sample a continuation of the prompt with top-k sampling (k = 5) until the sequence, prompt
included, is 100 tokens long; take the text of the whole sequence (prompt + continuation),
split it into word tokens, and compute the entropy (log base 2) of its bigram and trigram
frequency distributions; fluency = mean(2/3 · H₂, 4/3 · H₃), averaged over texts. Repetitive,
degenerate text has low entropy. KnowEdit tables report the value × 100.

The entropy and the word tokenizer (no punkt data needed) live in ``interv.eval.text``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ..adapters import HookedModel
from .text import ngram_entropy, word_tokens

__all__ = ["fluency", "ngram_entropy", "sample_texts", "word_tokens"]


def sample_texts(
    model: HookedModel,
    prompts: Sequence[str],
    *,
    max_length: int = 100,
    top_k: int = 5,
    seed: int = 0,
    batch_size: int = 16,
) -> list[str]:
    """EasyEdit's ``generate_fast``: prompt + top-k sampled continuation, ``max_length`` tokens
    in all."""
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        prompt_len = model.to_batch(chunk).input_ids.shape[1]
        new = model.generate(
            chunk,
            max_new_tokens=max(1, max_length - prompt_len),
            do_sample=True,
            top_k=top_k,
            seed=seed + start,
        )
        for prompt, continuation in zip(chunk, new, strict=True):
            text = unicodedata.normalize("NFKD", prompt + continuation)
            texts.append(text.replace("\n\n", " "))
    return texts


def fluency(model: HookedModel, prompts: Sequence[str], **sampling: int) -> list[float]:
    """The n-gram entropy of one sampled generation per prompt (EasyEdit's ``fluency``);
    ``sampling`` goes to ``sample_texts`` (max_length, top_k, seed, batch_size)."""
    return [ngram_entropy(text) for text in sample_texts(model, prompts, **sampling)]
