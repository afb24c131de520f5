"""Prompt steering: a system or prefix prompt as an intervention (EasyEdit2's ``prompt``).

Prompting is a strong steering baseline (AxBench, arXiv 2501.17148, finds it beats most
activation methods). The intervention is text, not activations: a ``PromptIntervention`` is
honoured by the applier, which puts the prompt before each input (``mode="prefix"``, EasyEdit2's
``f"{prompt} {input}"``) or into the system turn (``mode="system"``), and composes with any
intervention graph (``Steering`` in ``interv.steer.apply``); it saves as ``prompt.yaml``. The
prompt is written by hand (``prompt``) or chosen among ``candidates`` by an evaluation metric on
a few inputs.

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

import torch
import yaml

from ..adapters import HookedModel
from ..errors import ArtefactError, ConfigError, SteeringError
from ..eval.steering import METRIC_KEYS, text_metrics
from ..files import provenance, read_yaml, write_text
from ..hparams import HParams
from ..record import ModelRecord
from .apply import ApplyHParams, Steering
from .base import STEER_METHODS, SteerMethod

log = logging.getLogger(__name__)
FORMAT = "interv.prompt"
FILE = "prompt.yaml"
MODES = ("prefix", "system")


@dataclass
class PromptIntervention:
    """A prompt put before each input (``prefix``) or into the system turn (``system``)."""

    prompt: str
    mode: str = "prefix"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # provenance

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SteeringError(
                f"Prompt `mode` must be one of {', '.join(MODES)}, not {self.mode!r}."
            )
        if not self.prompt.strip():
            raise SteeringError("A prompt intervention needs a non-empty `prompt`.")

    @property
    def method(self) -> str:
        return str(self.meta.get("method", "prompt"))

    def apply(self, inputs: Sequence[str], system: str | None) -> tuple[list[str], str | None]:
        """The inputs and system prompt with this prompt put in."""
        if self.mode == "system":
            return list(inputs), f"{system}\n{self.prompt}" if system else self.prompt
        return [f"{self.prompt} {text}" for text in inputs], system

    def __add__(self, other: PromptIntervention) -> PromptIntervention:
        if self.mode != other.mode:
            raise SteeringError("Cannot stack a prefix prompt and a system prompt; use one mode.")
        return PromptIntervention(f"{self.prompt} {other.prompt}", self.mode)

    # ----------------------------------------------------------------- as an artefact
    def steering(self, spec: ApplyHParams | None = None) -> Steering:
        """The prompt as a ``Steering`` (no graph); ``layers`` and multipliers mean nothing
        for text and are refused."""
        spec = spec or ApplyHParams()
        if spec.layers is not None or spec.multipliers != [1.0]:
            raise SteeringError(
                "A prompt intervention has no layers or strength; remove "
                "`layers` and `multipliers` from its apply hyperparameters."
            )
        return Steering(prompt=self)

    def check(self, model: HookedModel) -> None:
        """Text fits every model: nothing to check."""

    def annotated(self, config: str, recommended_scale: float | None) -> PromptIntervention:
        if recommended_scale is not None:
            raise SteeringError(
                "recommended_scale means nothing for a prompt intervention; "
                "remove it from the method file."
            )
        return PromptIntervention(self.prompt, self.mode, {**self.meta, "config": config})

    def describe(self) -> str:
        return f"{self.mode} prompt {self.prompt!r}"

    def save_to(self, folder: Path, dtype: torch.dtype = torch.float32) -> Path:
        return self.save(Path(folder) / FILE)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        document = {
            "format": FORMAT,
            "version": 1,
            "prompt": self.prompt,
            "mode": self.mode,
            "meta": json.loads(json.dumps(self.meta, default=str)),
        }
        return write_text(path, yaml.safe_dump(document, sort_keys=False, allow_unicode=True))

    @classmethod
    def load(cls, path: str | Path) -> PromptIntervention:
        document = read_yaml(path, "saved prompt.yaml", ArtefactError)
        if document.get("format") != FORMAT:
            raise ArtefactError(f"{path} is not an interv prompt intervention (format: {FORMAT}).")
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

    @classmethod
    def from_easyedit2(cls, values: dict[str, Any], source: str) -> dict[str, Any]:
        """EasyEdit2's ``generate_prompt_params`` (how a prompt is generated): its chat-template
        and length keys set how candidates are compared; sampling keys are logged and ignored
        (candidates are compared by sampling with ``seed``)."""
        out = dict(values)
        params = out.pop("generate_prompt_params", None)
        if params is None:
            return out
        if not isinstance(params, dict):
            raise ConfigError(f"{source}: generate_prompt_params must be a mapping of settings.")
        for key, field_name in (("use_chat_template", "chat_template"), ("max_new_tokens",) * 2):
            if key in params:
                out.setdefault(field_name, params[key])
        rest = sorted(set(params) - {"use_chat_template", "max_new_tokens"})
        if rest:
            log.info("%s: generate_prompt_params %s are not used by interv.", source, rest)
        return out

    def __post_init__(self) -> None:
        if bool(self.prompt.strip()) == bool(self.candidates):
            raise ConfigError("Prompt steering needs exactly one of `prompt` or `candidates`.")
        if self.mode not in MODES:
            raise ConfigError(f"`mode` must be one of {', '.join(MODES)}, not {self.mode!r}.")
        if self.goal not in ("max", "min"):
            raise ConfigError(f"`goal` must be 'max' or 'min', not {self.goal!r}.")
        if self.metric not in METRIC_KEYS:
            raise ConfigError(
                f"Unknown metric {self.metric!r}; choose one of {', '.join(sorted(METRIC_KEYS))}."
            )


def score_texts(texts: Sequence[str], metric: str) -> float:
    """One number for generated texts: a key of ``interv.eval.steering.text_metrics``."""
    if metric not in METRIC_KEYS:
        raise ConfigError(
            f"Unknown metric {metric!r}; choose one of {', '.join(sorted(METRIC_KEYS))}."
        )
    return text_metrics(texts, [METRIC_KEYS[metric]])[metric]


@STEER_METHODS.register("prompt")
class PromptSteer(SteerMethod[Sequence[str] | None, PromptIntervention]):
    """Returns a ``PromptIntervention``: the given prompt, or the best of the candidates."""

    name = "prompt"
    hparams_class = PromptHParams
    data_kind = "prompts"
    hparams: PromptHParams

    @property
    def needs_data(self) -> bool:
        return bool(self.hparams.candidates)

    def fit(
        self, model: HookedModel | None, data: Sequence[str] | None = None
    ) -> PromptIntervention:
        hp = self.hparams
        record: dict[str, Any] = {"method": "prompt", **provenance()}
        if model is not None:
            record["model"] = ModelRecord.of(model).to_dict()
        if not hp.candidates:
            return PromptIntervention(hp.prompt, hp.mode, record)
        if model is None:
            raise SteeringError(
                "Choosing among prompt candidates needs the model to generate with; pass it to fit."
            )
        inputs = list(data or [])[: hp.n_inputs]
        if not inputs:
            raise SteeringError(
                "The dataset is empty; choosing a prompt needs inputs to generate from."
            )
        scores = {}
        for candidate in hp.candidates:
            texts, system = PromptIntervention(candidate, hp.mode).apply(inputs, None)
            out = model.generate(
                texts,
                max_new_tokens=hp.max_new_tokens,
                chat_template=hp.chat_template,
                system_prompt=system,
                do_sample=True,
                seed=hp.seed,
            )
            scores[candidate] = score_texts(out, hp.metric)
            log.info("prompt candidate %r: %s = %.3f", candidate, hp.metric, scores[candidate])
        pick = max if hp.goal == "max" else min
        best = pick(hp.candidates, key=lambda c: scores[c])
        meta = {
            **record,
            "metric": hp.metric,
            "scores": scores,
            "mean_score": statistics.fmean(scores.values()),
        }
        return PromptIntervention(best, hp.mode, meta)
