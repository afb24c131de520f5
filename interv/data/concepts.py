"""Concept steering data: AxBench's Concept10 (Wu et al. 2025, arXiv 2501.17148) and the
AlpacaEval instructions AxBench steers on.

A concept is a natural-language description (``"terms related to root in mathematical
contexts"``) with positive examples: an instruction and a response that mentions the concept.
The negatives (responses without any of the concepts) are shared by all concepts. Files
(under ``$INTERV_DATA``, not bundled: the instructions are CC BY-NC):
``steering/axbench/concept10/prod_2b_l20_v1/generate/{metadata,train_data}.jsonl`` and
``steering/axbench/alpaca_eval/text_davinci_003_model_outputs.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..files import read_json, read_jsonl
from .paths import data_file

CONCEPT10 = "steering/axbench/concept10/prod_2b_l20_v1/generate"
ALPACA = "steering/axbench/alpaca_eval/text_davinci_003_model_outputs.json"


@dataclass(frozen=True)
class Example:
    instruction: str
    response: str


@dataclass(frozen=True)
class Concept:
    id: int
    description: str
    positives: tuple[Example, ...]


def _jsonl(relative: str) -> list[dict]:
    return read_jsonl(data_file(relative), "benchmark data file")


def axbench_concepts(n: int | None = None) -> list[Concept]:
    """The first ``n`` Concept10 concepts (all ten for None) with their positive examples."""
    meta = _jsonl(f"{CONCEPT10}/metadata.jsonl")
    if n is not None and not 1 <= n <= len(meta):
        raise ConfigError(f"n must be between 1 and {len(meta)} concepts, got {n}.")
    rows = _jsonl(f"{CONCEPT10}/train_data.jsonl")
    out = []
    for record in meta[:n]:
        cid = int(record["concept_id"])
        positives = tuple(
            Example(r["input"], r["output"])
            for r in rows
            if r["category"] == "positive" and int(r["concept_id"]) == cid
        )
        out.append(Concept(cid, str(record["concept"]), positives))
    return out


def axbench_negatives() -> list[Example]:
    """Concept10's negative examples: instructions answered without any of the concepts."""
    rows = _jsonl(f"{CONCEPT10}/train_data.jsonl")
    return [Example(r["input"], r["output"]) for r in rows if r["category"] == "negative"]


def alpaca_instructions(n: int | None = None) -> list[str]:
    """AlpacaEval's 805 instructions, in file order (AxBench samples its steering prompts
    from them)."""
    records = read_json(data_file(ALPACA), "benchmark data file")
    return [str(r["instruction"]) for r in records[:n]]
