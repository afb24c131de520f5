"""Text for SAE training and inspection: the shipped corpus, or any text / JSON / JSONL file.

Documents come from ``interv.data.corpus`` (the same corpus as the editing statistics: the
shared datasets' free text, shipped as ``interv/data/default_corpus.txt.gz``), so training and
inspection work offline from a wheel install. Held-out text is chosen by a hash of each
document, so the split does not depend on order or on which other documents a corpus holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..data.corpus import load_corpus
from ..errors import DataError

DEFAULT = "default"


def load_documents(source: str | Path | None = None, text_field: str | None = None) -> list[str]:
    """The documents of ``source`` (``None``/``"default"``: the shipped corpus), in order."""
    corpus = load_corpus(source, text_field)
    docs = [" ".join(doc.split()) for doc in corpus.documents()]
    docs = [doc for doc in docs if doc]
    if not docs:
        raise DataError(f"Corpus {corpus.path} holds no text.")
    return docs


def split(docs: list[str], heldout_percent: int = 5) -> tuple[list[str], list[str]]:
    """(training, held-out) documents; a document is held out by the hash of its text."""
    if not 0 < heldout_percent < 100:
        raise DataError(f"heldout_percent must be in 1..99, got {heldout_percent}.")
    train, heldout = [], []
    for doc in docs:
        bucket = int.from_bytes(hashlib.sha1(doc.encode()).digest()[:4], "big") % 100
        (heldout if bucket < heldout_percent else train).append(doc)
    return train, heldout


def digest(docs: list[str]) -> str:
    """A short hash of a document list (cache keys use it)."""
    sha = hashlib.sha256()
    for doc in docs:
        sha.update(doc.encode())
        sha.update(b"\x00")
    return sha.hexdigest()[:16]
