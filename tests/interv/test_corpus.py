"""The shipped statistics corpus and user corpora."""

from __future__ import annotations

import gzip
import json

import pytest

from interv.bench.data import leaked_prompts
from interv.data.corpus import DEFAULT_FILE, load_corpus


def test_default_corpus_ships_and_is_large_enough():
    corpus = load_corpus()
    assert corpus.path == DEFAULT_FILE and corpus.path.is_file()
    docs = list(corpus.documents())
    assert len(docs) > 20_000 and sum(len(d) for d in docs) > 3_000_000  # about 1M tokens
    assert len(corpus.digest()) == 16


def test_leakage_check_finds_prompts_whose_every_window_is_in_the_corpus():
    """The check ``interv bench data`` runs on the shipped corpus against CounterFact and ZsRE
    (the suite itself does not read those files)."""
    corpus = "one two three four five six seven and other text entirely about cats and dogs"
    prompts = [
        "two three four five six",
        "one two three four five six seven",
        "cats and dogs",
        "three four five six eight",
    ]
    assert leaked_prompts(corpus, prompts) == prompts[:2]  # short prompts are not judged


def test_user_corpora(tmp_path):
    (tmp_path / "a.txt").write_text("First paragraph\nstill first.\n\n\nSecond one.\n")
    assert list(load_corpus(tmp_path / "a.txt").documents()) == [
        "First paragraph\nstill first.",
        "Second one.",
    ]
    (tmp_path / "b.jsonl").write_text('{"id": 1, "body": "x y"}\n\n{"text": "z"}\n')
    assert list(load_corpus(tmp_path / "b.jsonl").documents()) == ["x y", "z"]
    assert next(iter(load_corpus(tmp_path / "b.jsonl", text_field="body").documents())) == "x y"
    with pytest.raises(
        ValueError, match="record 3 has no field 'body'"
    ):  # JSONL records count lines
        list(load_corpus(tmp_path / "b.jsonl", text_field="body").documents())
    (tmp_path / "c.json.gz").write_bytes(
        gzip.compress(json.dumps(["one", {"text": "two"}]).encode())
    )
    assert list(load_corpus(tmp_path / "c.json.gz").documents()) == ["one", "two"]
    assert load_corpus(tmp_path / "a.txt").digest() != load_corpus(tmp_path / "b.jsonl").digest()
