"""Text corpora for layer statistics: the one shipped with interv, or any text / JSONL file.

The default corpus (``interv/data/default_corpus.txt.gz``, about 1 M tokens) is built from the
shared datasets' free text: DExperts sentiment prompts with their continuations, ConvSent opinion
sentences, SST-2 sentences, the CAA / Anthropic model-written-eval questions and KnowEdit's
WikiBio passages. It deliberately excludes the CounterFact and ZsRE records that editing is
evaluated on, so the statistics never see the test set. ``build_default_corpus`` regenerates it.

A user corpus is a ``.txt`` file (paragraphs separated by blank lines), a ``.jsonl`` file (one
object per line; its ``text`` field, or the first string field), or a ``.json`` list of strings
or objects; ``.gz`` compression is understood.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, MissingFileError
from ..files import decode_text, parse_json, write_bytes
from .paths import data_root

DEFAULT_NAME = "default"
DEFAULT_FILE = Path(__file__).with_name("default_corpus.txt.gz")


@dataclass(frozen=True)
class Corpus:
    """A text source identified by the hash of its bytes (the statistics cache key uses it)."""

    path: Path
    name: str
    text_field: str | None = None

    def digest(self) -> str:
        """sha256 of the file and of how it is read, 16 hex digits."""
        sha = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        sha.update(f"|field={self.text_field}".encode())
        return sha.hexdigest()[:16]

    def documents(self) -> Iterator[str]:
        """The corpus's documents in file order (non-empty, stripped)."""
        suffixes = [s for s in self.path.suffixes if s != ".gz"]
        kind = suffixes[-1] if suffixes else ".txt"
        text = _read_text(self.path)
        where = f"corpus {self.path}"
        if kind == ".jsonl":
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    record = parse_json(line, f"{where} (line {number})", "corpus")
                    yield from _nonempty(_text_of(record, self.text_field, number))
        elif kind == ".json":
            records = parse_json(text, where, "corpus")
            if not isinstance(records, list):
                raise DataError(f"{self.path} must hold a JSON list of strings or objects.")
            for number, record in enumerate(records, 1):
                yield from _nonempty(_text_of(record, self.text_field, number))
        else:
            for paragraph in text.split("\n\n"):
                yield from _nonempty(paragraph)


def load_corpus(source: str | Path | None = None, text_field: str | None = None) -> Corpus:
    """``None`` or ``"default"``: the shipped corpus; otherwise a text, JSON or JSONL file."""
    if source is None or str(source) == DEFAULT_NAME:
        return Corpus(DEFAULT_FILE, DEFAULT_NAME)
    path = Path(source).expanduser()
    if not path.is_file():
        raise MissingFileError(
            f"Corpus {str(source)!r} is not a file; pass a .txt, .jsonl or .json file (optionally "
            f".gz), or 'default' for the corpus shipped with interv."
        )
    return Corpus(path, path.name, text_field)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"Corpus {path} is a corrupt or truncated gzip file ({err}).") from None
    return decode_text(raw, f"corpus {path}", "corpus")


def _nonempty(text: str) -> Iterator[str]:
    text = text.strip()
    if text:
        yield text


def _text_of(record: Any, field: str | None, number: int) -> str:
    if isinstance(record, str):
        return record
    if isinstance(record, dict):
        if field is not None:
            if field not in record:
                raise DataError(f"Corpus record {number} has no field {field!r}.")
            return str(record[field])
        if "text" in record:
            return str(record["text"])
        for value in record.values():
            if isinstance(value, str):
                return value
    raise DataError(f"Corpus record {number} holds no text (expected a string or an object).")


# ------------------------------------------------------------------ building the default corpus
def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _shared_documents(root: Path) -> list[str]:
    """Free text from the shared datasets, none of it from the editing evaluation sets."""
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


def build_default_corpus(root: Path | None = None, out: Path = DEFAULT_FILE, seed: int = 0) -> Path:
    """Rebuild the shipped corpus from the shared datasets (shuffled, so any prefix is mixed)."""
    docs = sorted(set(_shared_documents(root or data_root())))
    random.Random(seed).shuffle(docs)
    payload = "\n\n".join(docs).encode("utf-8") + b"\n"
    # mtime=0 keeps the file (and the statistics cache key) identical across rebuilds
    write_bytes(out, gzip.compress(payload, compresslevel=9, mtime=0))
    return out
