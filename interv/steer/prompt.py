"""Prompt steering: a system or prefix prompt as an intervention (EasyEdit2's ``prompt``).

Prompting is a strong steering baseline (AxBench, arXiv 2501.17148, finds it beats most
activation methods). The intervention is text, not activations: a ``PromptIntervention`` is
honoured by the applier, which puts the prompt before each input (``mode="prefix"``, EasyEdit2's
``f"{prompt} {input}"``) or into the system turn (``mode="system"``), and composes with any
intervention graph (``Steering`` in ``interv.steer.apply``). The prompt is written by hand
(``prompt``) or chosen among ``candidates`` by an evaluation metric on a few inputs.

Example:
    >>> from interv.steer.prompt import PromptIntervention
    >>> PromptIntervention("Be cheerful.").apply(["Today I"], None)
    (['Be cheerful. Today I'], None)
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..adapters import HookedModel
from ..hparams import HParams
from .base import STEER_METHODS, SteerMethod
from .vector import model_identity, provenance

log = logging.getLogger(__name__)
FORMAT = "interv.prompt"
MODES = ("prefix", "system")


@dataclass
class PromptIntervention:
    """A prompt put before each input (``prefix``) or into the system turn (``system``)."""

    prompt: str
    mode: str = "prefix"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # provenance

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Prompt `mode` must be one of {', '.join(MODES)}, not {self.mode!r}.")
        if not self.prompt.strip():
            raise ValueError("A prompt intervention needs a non-empty `prompt`.")

    def apply(self, inputs: Sequence[str], system: str | None) -> tuple[list[str], str | None]:
        """The inputs and system prompt with this prompt put in."""
        if self.mode == "system":
            return list(inputs), f"{system}\n{self.prompt}" if system else self.prompt
        return [f"{self.prompt} {text}" for text in inputs], system

    def __add__(self, other: PromptIntervention) -> PromptIntervention:
        if self.mode != other.mode:
            raise ValueError("Cannot stack a prefix prompt and a system prompt; use one mode.")
        return PromptIntervention(f"{self.prompt} {other.prompt}", self.mode)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"format": FORMAT, "version": 1, "prompt": self.prompt, "mode": self.mode,
                    "meta": json.loads(json.dumps(self.meta, default=str))}
        path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        return path

    @classmethod
    def load(cls, path: str | Path) -> PromptIntervention:
        document = yaml.safe_load(Path(path).read_text())
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"{path} is not an interv prompt intervention (format: {FORMAT}).")
        return cls(document["prompt"], document.get("mode", "prefix"), document.get("meta") or {})


@dataclass(kw_only=True)
class PromptHParams(HParams):
    method = "prompt"
    prompt: str = ""  # the prompt, written by hand; or leave empty and give candidates
    candidates: list[str] = field(default_factory=list)
    mode: str = "prefix"
    metric: str = "vader_positive_share"  # a text metric of interv.eval.steering
    goal: str = "max"
    n_inputs: int = 20  # inputs the candidates are compared on
    max_new_tokens: int = 30
    chat_template: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if bool(self.prompt.strip()) == bool(self.candidates):
            raise ValueError("Prompt steering needs exactly one of `prompt` or `candidates`.")
        if self.mode not in MODES:
            raise ValueError(f"`mode` must be one of {', '.join(MODES)}, not {self.mode!r}.")
        if self.goal not in ("max", "min"):
            raise ValueError(f"`goal` must be 'max' or 'min', not {self.goal!r}.")


def score_texts(texts: Sequence[str], metric: str) -> float:
    """One number for generated texts: a key of ``interv.eval.steering.text_metrics``."""
    from ..eval.steering import METRIC_KEYS, text_metrics

    if metric not in METRIC_KEYS:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {', '.join(sorted(METRIC_KEYS))}.")
    return text_metrics(texts, [METRIC_KEYS[metric]])[metric]


@STEER_METHODS.register("prompt")
class PromptSteer(SteerMethod):
    """Returns a ``PromptIntervention``: the given prompt, or the best of the candidates."""

    name = "prompt"
    hparams_class = PromptHParams
    data_kind = "prompts"

    @property
    def needs_data(self) -> bool:
        return bool(self.hparams.candidates)  # type: ignore[attr-defined]

    def fit(self, model: HookedModel | None, data: Sequence[str] | None = None) -> PromptIntervention:
        hp: PromptHParams = self.hparams  # type: ignore[assignment]
        record = {"method": "prompt", **provenance(),
                  **({"model": model_identity(model)} if model is not None else {})}
        if not hp.candidates:
            return PromptIntervention(hp.prompt, hp.mode, record)
        if model is None:
            raise ValueError("Choosing among prompt candidates needs the model to generate with.")
        inputs = list(data or [])[: hp.n_inputs]
        if not inputs:
            raise ValueError("The dataset is empty; choosing a prompt needs inputs to generate from.")
        scores = {}
        for candidate in hp.candidates:
            texts, system = PromptIntervention(candidate, hp.mode).apply(inputs, None)
            out = model.generate(texts, max_new_tokens=hp.max_new_tokens, chat_template=hp.chat_template,
                                 system_prompt=system, do_sample=True, seed=hp.seed)
            scores[candidate] = score_texts(out, hp.metric)
            log.info("prompt candidate %r: %s = %.3f", candidate, hp.metric, scores[candidate])
        pick = max if hp.goal == "max" else min
        best = pick(hp.candidates, key=lambda c: scores[c])
        meta = {**record, "metric": hp.metric, "scores": scores,
                "mean_score": statistics.fmean(scores.values())}
        return PromptIntervention(best, hp.mode, meta)
