"""Edit requests: one fact to write into a model, with the probes that score the edit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import RequestError


@dataclass
class EditRequest:
    """One fact to write: ``prompt`` (containing ``subject``) should continue with ``target_new``.

    The evaluation fields (rephrases, locality and portability probes) are optional and only read
    by the metrics; methods read ``prompt``, ``subject``, ``target_new`` and ``ground_truth``.
    ``locality`` and ``portability`` map a probe-set name to ``[(prompt, answer), ...]``.

    Example:
        >>> EditRequest(prompt="The Eiffel Tower is in", subject="Eiffel Tower",
        ...             target_new="Rome").subject
        'Eiffel Tower'
    """

    prompt: str
    target_new: str
    subject: str | None = None
    ground_truth: str | None = None
    rephrase_prompts: list[str] = field(default_factory=list)
    locality: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    portability: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    case_id: Any = None

    def __post_init__(self) -> None:
        require_text(self.prompt, "prompt", "Edit request", "give the text to complete")
        where = f"Edit request {self.prompt!r}"
        require_text(self.target_new, "target_new", where, "give the new answer")
        for name in ("subject", "ground_truth"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise RequestError(
                    f"{where}: `{name}` must be a string or null, got "
                    f"{value!r} ({type(value).__name__}); write it as text."
                )
        if not isinstance(self.rephrase_prompts, (list, tuple)) or not all(
            isinstance(p, str) for p in self.rephrase_prompts
        ):
            raise RequestError(
                f"{where}: `rephrase_prompts` must be a list of strings, got "
                f"{self.rephrase_prompts!r}."
            )
        if self.subject is not None and self.subject not in self.prompt:
            raise RequestError(
                f"Subject {self.subject!r} does not occur in prompt {self.prompt!r}; the subject "
                "must be a substring of the prompt (check spelling and capitalisation)."
            )

    def require_subject(self, method: str) -> str:
        if not self.subject:
            raise RequestError(
                f"{method} needs `subject` for request {self.prompt!r}; add the "
                "subject (a substring of the prompt) to the request."
            )
        return self.subject

    def subject_span(self, method: str) -> tuple[int, int]:
        """Where the subject sits in the prompt, in characters ``(start, end)``."""
        subject = self.require_subject(method)
        start = self.prompt.find(subject)
        if start < 0:  # checked at construction too; requests may be mutated after it
            raise RequestError(f"Subject {subject!r} does not occur in prompt {self.prompt!r}.")
        return start, start + len(subject)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "subject": self.subject,
            "target_new": self.target_new,
            "ground_truth": self.ground_truth,
            "case_id": self.case_id,
        }


def require_text(value: Any, name: str, where: str, fix: str) -> str:
    """``value`` if it is a non-blank string; else a ``RequestError`` naming ``name`` (after
    ``where``, when given).

    A number is refused rather than turned into text: ``target_new: 5`` is more often a
    misplaced field than the answer "5" (write ``"5"`` for that).
    """
    if not isinstance(value, str):
        raise RequestError(
            f"{where + ': ' if where else ''}`{name}` must be a string, got {value!r} "
            f'({type(value).__name__}); write it as text (quote a number: "5").'
        )
    if not value.strip():
        empty = f"{where} has an empty `{name}`" if where else f"`{name}` is empty"
        raise RequestError(f"{empty}; {fix}.")
    return value
