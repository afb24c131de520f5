"""Fluency: EasyEdit's weighted bigram/trigram entropy, without nltk's punkt data."""

from __future__ import annotations

import math
import unicodedata

import pytest

from interv.eval.fluency import ngram_entropy, sample_texts, word_tokens


def test_word_tokens_split_like_word_tokenize():
    assert word_tokens("Paris is big. It isn't small, is it?") == [
        "Paris",
        "is",
        "big",
        ".",
        "It",
        "is",
        "n't",
        "small",
        ",",
        "is",
        "it",
        "?",
    ]


def test_entropy_matches_easyedit_formula():
    # 5 distinct bigrams (uniform) and 4 distinct trigrams: mean(2/3 log2 5, 4/3 log2 4)
    assert ngram_entropy("the cat sat on the mat") == pytest.approx(
        (2 / 3 * math.log2(5) + 4 / 3 * 2) / 2
    )
    # "a b a b a b": bigrams ab x3, ba x2; trigrams aba x2, bab x2
    h2 = -(0.6 * math.log2(0.6) + 0.4 * math.log2(0.4))
    assert ngram_entropy("a b a b a b") == pytest.approx((2 / 3 * h2 + 4 / 3 * 1.0) / 2)
    assert ngram_entropy("word") == 0.0
    assert ngram_entropy("the the the the the the") < ngram_entropy("one two three four five six")


def test_samples_start_with_the_prompt_and_stop_at_the_length(tiny_models):
    model = tiny_models("llama")
    texts = sample_texts(model, ["Hello", "A longer prompt"], max_length=20, seed=1)
    assert texts[0].startswith("Hello") and texts[1].startswith("A longer prompt")
    assert texts == sample_texts(model, ["Hello", "A longer prompt"], max_length=20, seed=1)
    padded = model.to_batch(["Hello", "A longer prompt"]).input_ids.shape[1]
    new = model.generate(
        ["Hello", "A longer prompt"], max_new_tokens=20 - padded, do_sample=True, top_k=5, seed=1
    )  # EasyEdit: top-5 sampling up to 20 tokens in all
    expected = [
        unicodedata.normalize("NFKD", p + t).replace("\n\n", " ")
        for p, t in zip(["Hello", "A longer prompt"], new, strict=True)
    ]
    assert texts == expected
