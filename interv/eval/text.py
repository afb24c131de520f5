"""Text statistics of generations: distinct-n and n-gram-entropy fluency.

Words come from nltk's regex tokenizer (no punkt data needed).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from nltk.tokenize import RegexpTokenizer

_WORDS = RegexpTokenizer(r"\w+|[^\w\s]+")


def words(text: str) -> list[str]:
    return _WORDS.tokenize(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams over all n-grams across ``texts`` (whitespace words, as EasyEdit2)."""
    grams = [g for text in texts for g in ngrams(text.split(), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def ngram_entropy(text: str) -> float:
    """EasyEdit's fluency of one text: 2/3 x bigram entropy + 4/3 x trigram entropy (log2).

    Weights as in EasyEdit1 (``n_gram_entropy``: mean of entropy x weight over n = 2, 3 with
    weights 2/3 and 4/3). Repetitive text scores low; KnowEdit tables report it x 100.
    """
    tokens = words(text)
    total = []
    for n, weight in ((2, 2 / 3), (3, 4 / 3)):
        counts = Counter(ngrams(tokens, n))
        count = sum(counts.values())
        entropy = -sum(c / count * math.log2(c / count) for c in counts.values()) if count else 0.0
        total.append(entropy * weight)
    return sum(total) / len(total)


def fluency(texts: Sequence[str]) -> float:
    """Mean n-gram entropy over texts."""
    return sum(ngram_entropy(t) for t in texts) / len(texts) if texts else 0.0
