"""Contrastive data: CAA's A/B items and free-form positive/negative pairs.

An ``ABItem`` is a multiple-choice question whose choices are listed as ``(A) ...``, ``(B)
...`` (a few list more); one answer shows a behaviour, the other does not. A ``ContrastPair``
is two texts that differ in the concept to steer. Steering methods read both; the A/B forms
(``AB_FORMS``) say where: at the answer ``letter`` (CAA's format) or over each choice's text
after the question without its choices (``answer``, the cloze form small models are scored in).

At the answer letter the two sides of an A/B item also differ in the letter itself, so a mean
over items keeps a letter term unless the items matching with A and with B are weighed
equally: ``answer_groups`` and ``balance_answer_letters`` take it out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from .errors import DataError

log = logging.getLogger(__name__)

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
            raise DataError(
                f"A/B question without its answers' choices ('(A) ...', '(B) ...' on "
                f"lines of their own): {self.question[:80]!r}..."
            )
        empty = [letter for letter, text in found.items() if not text]
        if empty:
            raise DataError(
                f"A/B question with an empty choice ({', '.join(empty)}): {self.question[:80]!r}..."
            )
        return _CHOICES_LABEL.sub("", parts[0].strip()).strip(), found

    def letters(self) -> list[str]:
        """The answer letters the question offers (A and B when its choices cannot be read)."""
        try:
            return list(self.options()[1])
        except DataError:
            return sorted({"A", "B", self.matching_letter, self.not_matching_letter})


@dataclass(frozen=True)
class ContrastPair:
    """Two texts that differ in the concept to steer: ``positive`` shows it, ``negative`` not."""

    positive: str
    negative: str
    prompt: str = ""  # shared context the two continuations follow (may be empty)


Contrast = ABItem | ContrastPair


def answer_groups(data: Sequence[Contrast]) -> Bool[Tensor, " n"] | None:
    """For A/B data, which items' matching answer is the first letter (a bool mask); None for
    free-form pairs or when every item matches with the same letter (nothing to balance)."""
    if not data or not isinstance(data[0], ABItem):
        return None
    first = [isinstance(item, ABItem) and item.matching_letter == "A" for item in data]
    if all(first) or not any(first):
        log.warning(
            "Every A/B item matches the behaviour with the same letter; the vector keeps "
            "the letter difference (set balance_answers: false to silence this)."
        )
        return None
    return torch.tensor(first)


def balance_answer_letters(
    diffs: Float[Tensor, "n d"], groups: Bool[Tensor, " n"] | None
) -> Float[Tensor, "n d"]:
    """Per-item differences with the answer letter taken out: each item moves by its group's
    mean minus the average of the two group means (``groups`` from ``answer_groups``; None
    leaves ``diffs`` as they are). The result's mean is the balanced mean, and PCA on it no
    longer finds the letter axis."""
    if groups is None:
        return diffs
    first, second = diffs[groups].mean(0), diffs[~groups].mean(0)
    centre = 0.5 * (first + second)
    return diffs - torch.where(groups[:, None], first - centre, second - centre)
