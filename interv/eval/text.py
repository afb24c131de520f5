"""Text statistics of generations: distinct-n and n-gram-entropy fluency.

Words come from nltk's regex tokenizer (no punkt data needed).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from nltk.tokenize import RegexpTokenizer

_WORDS = RegexpTokenizer(r"\w+|[^\w\s]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
ENTROPY_WEIGHTS = {2: 2 / 3, 3: 4 / 3}


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation runs (for vocabulary statistics)."""
    return _WORDS.tokenize(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams over all n-grams across ``texts`` (whitespace words, as EasyEdit2)."""
    grams = [g for text in texts for g in ngrams(text.split(), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def word_tokens(text: str) -> list[str]:
    """EasyEdit's word tokens: sentences split by regex (EasyEdit's ``nltk.word_tokenize`` needs
    punkt data, which interv does not depend on), then nltk's Treebank-style regex rules, which
    give the same tokens on ordinary prose. Case is kept, as in EasyEdit."""
    from nltk.tokenize import NLTKWordTokenizer

    tokenizer = NLTKWordTokenizer()
    return [tok for sentence in _SENTENCE_END.split(text) for tok in tokenizer.tokenize(sentence)]


def ngram_entropy(text: str, weights: dict[int, float] = ENTROPY_WEIGHTS) -> float:
    """EasyEdit's ``compute_n_gram_entropy`` of one text: mean over n of weight_n x H(n-grams) in
    bits, with weights 2/3 (bigrams) and 4/3 (trigrams). Repetitive text scores low; KnowEdit
    tables report it x 100.

    Example:
        >>> round(ngram_entropy("the cat sat on the mat"), 3)
        2.107
    """
    tokens = word_tokens(text)
    weighted = []
    for n, weight in weights.items():
        counts = Counter(ngrams(tokens, n))
        total = sum(counts.values())
        entropy = -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0
        weighted.append(weight * entropy)
    return sum(weighted) / len(weighted)


def fluency(texts: Sequence[str]) -> float:
    """Mean n-gram entropy over texts."""
    return sum(ngram_entropy(t) for t in texts) / len(texts) if texts else 0.0
