"""The shipped statistics corpus and user corpora."""

from __future__ import annotations

import gzip
import json

import pytest

from interv.data.corpus import DEFAULT_FILE, load_corpus
from interv.data.editing import COUNTERFACT, ZSRE
from interv.data.paths import data_file


def test_default_corpus_ships_and_is_large_enough():
    corpus = load_corpus()
    assert corpus.path == DEFAULT_FILE and corpus.path.is_file()
    docs = list(corpus.documents())
    assert len(docs) > 20_000 and sum(len(d) for d in docs) > 3_000_000  # about 1M tokens
    assert len(corpus.digest()) == 16


def test_default_corpus_holds_no_editing_test_prompts():
    text = gzip.decompress(DEFAULT_FILE.read_bytes()).decode()
    counterfact = json.loads(data_file(COUNTERFACT).read_text())
    zsre = json.loads(data_file(ZSRE).read_text())
    probes = [r["prompt"] for r in counterfact] + [r["rephrase_prompt"] for r in counterfact]
    probes += [r["src"] for r in zsre]
    words = text.split()
    shingles = {" ".join(words[i : i + 5]) for i in range(len(words) - 4)}
    leaked = []
    for probe in probes:
        tokens = probe.split()
        if len(tokens) >= 5 and all(" ".join(tokens[i : i + 5]) in shingles for i in range(len(tokens) - 4)):
            leaked.append(probe)
    assert not leaked, leaked[:5]


def test_user_corpora(tmp_path):
    (tmp_path / "a.txt").write_text("First paragraph\nstill first.\n\n\nSecond one.\n")
    assert list(load_corpus(tmp_path / "a.txt").documents()) == ["First paragraph\nstill first.", "Second one."]
    (tmp_path / "b.jsonl").write_text('{"id": 1, "body": "x y"}\n\n{"text": "z"}\n')
    assert list(load_corpus(tmp_path / "b.jsonl").documents()) == ["x y", "z"]
    assert next(iter(load_corpus(tmp_path / "b.jsonl", text_field="body").documents())) == "x y"
    with pytest.raises(ValueError, match="record 3 has no field 'body'"):  # JSONL records count lines
        list(load_corpus(tmp_path / "b.jsonl", text_field="body").documents())
    (tmp_path / "c.json.gz").write_bytes(gzip.compress(json.dumps(["one", {"text": "two"}]).encode()))
    assert list(load_corpus(tmp_path / "c.json.gz").documents()) == ["one", "two"]
    assert load_corpus(tmp_path / "a.txt").digest() != load_corpus(tmp_path / "b.jsonl").digest()
