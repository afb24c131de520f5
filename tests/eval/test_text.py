from __future__ import annotations

import pytest

from interv.eval.text import distinct_n, fluency, ngram_entropy


def test_distinct_n():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)


def test_ngram_entropy_penalises_repetition():
    varied = "The committee approved the new budget after a long debate about schools and roads."
    looping = "the the the the the the the the the the the the the the"
    assert ngram_entropy(looping) == 0.0
    assert ngram_entropy(varied) > 3.0
    assert fluency([varied, looping]) == pytest.approx(ngram_entropy(varied) / 2)
