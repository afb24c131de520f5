"""Text for SAE training and inspection: the default corpus, or any text / JSON / JSONL file.

The default corpus is the shared datasets' free text (``interv.data.paths.data_root()``):
DExperts sentiment prompts with their continuations, ConvSent opinion sentences, SST-2
sentences, the CAA and Anthropic model-written-eval questions and KnowEdit's WikiBio passages
-- never the CounterFact / ZsRE records editing is evaluated on. It is the same document set
as the editing statistics' corpus (deduplicated, sorted, shuffled with seed 0), built here on
the fly so the two can be unified into one shipped file.

A user corpus is a ``.txt`` file (documents separated by blank lines), a ``.jsonl`` file (one
object per line: its ``text`` field, or the first string field) or a ``.json`` list of strings
or objects; ``.gz`` compression is understood.

Held-out text is chosen by a hash of each document, so the split does not depend on order or
on which other documents a corpus holds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT = "default"


def load_documents(source: str | Path | None = None, text_field: str | None = None) -> list[str]:
    """The documents of ``source`` (``None``/``"default"``: the default corpus), in order."""
    if source is None or str(source) == DEFAULT:
        return default_documents()
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Corpus {str(source)!r} is not a file; pass a .txt, .jsonl or .json file "
            "(optionally .gz), or 'default' for the corpus built from the shared datasets."
        )
    docs = list(_file_documents(path, text_field))
    if not docs:
        raise ValueError(f"Corpus {path} holds no text.")
    return docs


def split(docs: list[str], heldout_percent: int = 5) -> tuple[list[str], list[str]]:
    """(training, held-out) documents; a document is held out by the hash of its text."""
    if not 0 < heldout_percent < 100:
        raise ValueError(f"heldout_percent must be in 1..99, got {heldout_percent}.")
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


def default_documents(seed: int = 0) -> list[str]:
    """The shared datasets' free text, deduplicated and shuffled (any prefix is a mix)."""
    from ..data.paths import data_root

    docs = sorted(set(_shared_documents(data_root())))
    random.Random(seed).shuffle(docs)
    return docs


# --------------------------------------------------------------------------- reading files
def _file_documents(path: Path, field: str | None) -> Iterator[str]:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    kinds = [s for s in path.suffixes if s != ".gz"]
    kind = kinds[-1] if kinds else ".txt"
    if kind == ".jsonl":
        records: list[Any] = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif kind == ".json":
        records = json.loads(text)
        if not isinstance(records, list):
            raise ValueError(f"{path} must hold a JSON list of strings or objects.")
    else:
        records = text.split("\n\n")
    for number, record in enumerate(records, 1):
        doc = " ".join(_text_of(record, field, number, path).split())
        if doc:
            yield doc


def _text_of(record: Any, field: str | None, number: int, path: Path) -> str:
    if isinstance(record, str):
        return record
    if isinstance(record, dict):
        if field is not None:
            if field not in record:
                raise ValueError(f"{path}: record {number} has no field {field!r}.")
            return str(record[field])
        if "text" in record:
            return str(record["text"])
        for value in record.values():
            if isinstance(value, str):
                return value
    raise ValueError(f"{path}: record {number} holds no text (expected a string or an object).")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _shared_documents(root: Path) -> list[str]:
    docs: list[str] = []
    for path in sorted((root / "steering/sentiment/sentiment_prompts-10k").glob("*.jsonl")):
        docs += [f"{r['prompt']['text']} {r['continuation']['text']}" for r in _jsonl(path)]
    for entity in json.loads((root / "steering/sentiment/convsent_blender_test.json").read_text()):
        docs += [s.strip() for s in entity["pos"] + entity["neg"]]
    docs += [r["sentence"] for r in _jsonl(root / "steering/sentiment/sst2_validation_872.jsonl")]
    for path in sorted((root / "steering/caa/generate").glob("*/generate_dataset.json")):
        docs += [r["question"] for r in json.loads(path.read_text())]
    evals = root / "steering/anthropic_evals/advanced-ai-risk/human_generated_evals"
    for path in sorted(evals.glob("*.jsonl")):
        docs += [r["question"] for r in _jsonl(path)]
    wikibio = root / "knowledge_editing/knowedit/wikibio-test-all.json"
    docs += [r["text"] for r in json.loads(wikibio.read_text())]
    return [" ".join(d.split()) for d in docs if d and d.strip()]
