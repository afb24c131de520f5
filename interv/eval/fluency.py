"""Fluency: EasyEdit's weighted bigram/trigram entropy of a sampled generation.

EasyEdit's definition (``easyeditor/evaluate/evaluate_utils.py``, ``test_generation=True``):
sample a continuation of the prompt with top-k sampling (k = 5) until the sequence, prompt
included, is 100 tokens long; take the text of the whole sequence (prompt + continuation),
split it into word tokens, and compute the entropy (log base 2) of its bigram and trigram
frequency distributions; fluency = mean(2/3 · H₂, 4/3 · H₃), averaged over texts. Repetitive,
degenerate text has low entropy. KnowEdit tables report the value × 100.

EasyEdit tokenises words with ``nltk.word_tokenize``, which needs the ``punkt`` model. interv
does not depend on downloaded nltk data: it splits sentences with a regular expression and
then uses nltk's regex word tokenizer (``NLTKWordTokenizer``, the one ``word_tokenize`` runs
on each sentence), which gives the same tokens on ordinary prose.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from ..adapters import HookedModel

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
WEIGHTS = {2: 2 / 3, 3: 4 / 3}


def word_tokens(text: str) -> list[str]:
    """Word tokens of ``text`` (sentence split by regex, then nltk's Treebank-style rules)."""
    from nltk.tokenize import NLTKWordTokenizer

    tokenizer = NLTKWordTokenizer()
    return [tok for sentence in _SENTENCE_END.split(text) for tok in tokenizer.tokenize(sentence)]


def ngram_entropy(text: str, weights: dict[int, float] = WEIGHTS) -> float:
    """EasyEdit's ``compute_n_gram_entropy``: mean over n of weight_n · H(n-grams), in bits.

    Example:
        >>> round(ngram_entropy("the cat sat on the mat"), 3)
        2.107
    """
    tokens = word_tokens(text)
    weighted = []
    for n, weight in weights.items():
        counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        total = sum(counts.values())
        entropy = -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0
        weighted.append(weight * entropy)
    return sum(weighted) / len(weighted)


def sample_texts(
    model: HookedModel,
    prompts: Sequence[str],
    *,
    max_length: int = 100,
    top_k: int = 5,
    seed: int = 0,
    batch_size: int = 16,
) -> list[str]:
    """EasyEdit's ``generate_fast``: prompt + top-k sampled continuation, ``max_length`` tokens in all."""
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


def fluency(
    model: HookedModel,
    prompts: Sequence[str],
    *,
    max_length: int = 100,
    top_k: int = 5,
    seed: int = 0,
    batch_size: int = 16,
) -> list[float]:
    """The n-gram entropy of one sampled generation per prompt (EasyEdit's ``fluency``)."""
    texts = sample_texts(
        model, prompts, max_length=max_length, top_k=top_k, seed=seed, batch_size=batch_size
    )
    return [ngram_entropy(text) for text in texts]
