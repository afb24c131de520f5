"""Small steering datasets for the tiny models (short texts: the tiny models see 128 positions)."""

from __future__ import annotations

import pytest

from interv.data.steering import ABItem, ContrastPair

AB = [
    ABItem(f"Q{i}?\n(A) yes\n(B) no", "(A)" if i % 2 else "(B)", "(B)" if i % 2 else "(A)")
    for i in range(6)
]
PAIRS = [ContrastPair("good great fine", "bad awful poor", prompt=f"Item {i}:") for i in range(4)]
LABELLED = [
    ("good great fine", 1),
    ("nice and kind", 1),
    ("bad awful poor", 0),
    ("rude and mean", 0),
]


@pytest.fixture
def ab_items() -> list[ABItem]:
    return list(AB)


@pytest.fixture
def pairs() -> list[ContrastPair]:
    return list(PAIRS)


@pytest.fixture
def labelled() -> list[tuple[str, int]]:
    return list(LABELLED)
