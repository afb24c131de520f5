"""Judging steered generations the way AxBench does (Wu et al. 2025, arXiv 2501.17148), offline.

An answer to an instruction, steered towards a concept, gets three scores from 0 to 2:
concept relevance (does it incorporate the concept?), instruction relevance (does it address
the instruction?) and fluency. AxBench combines them by their harmonic mean, so an answer must
do all three to score: steering that drowns the instruction, or the language, scores 0.
EasyEdit2's ``--eval_methods llm`` asks an LLM judge for the three. Judges here:

* ``LocalJudge`` (the default; deterministic, fast, offline): concept and instruction relevance
  are calibrated cosine similarities of all-MiniLM-L6-v2 sentence embeddings (response vs
  concept description, response vs instruction); fluency is the reference model's mean
  per-token NLL of the response after the instruction, calibrated, times the response's
  share of distinct bigrams (a loop like "the the the" is likely under a language model, so
  the NLL alone would call it fluent). Each signal ``x`` becomes
  ``2 * clamp((x - lo) / (hi - lo), 0, 1)`` with ``lo``/``hi`` measured on labelled data
  (the constants below; ``interv bench judge`` measures them again and scores them on
  held-out data).
* ``ModelJudge``: a local chat model asked the three rubric questions; the score is the
  expected rating from its next-token probabilities of "0", "1" and "2".
* ``OpenAIJudge``: the same questions to an OpenAI-compatible chat endpoint (temperature 0),
  the rating parsed from "Rating: [[X]]".

The rubric prompts are interv's own, written after AxBench's description of its judge.

Example:
    >>> from interv.eval.judge import judge_from, summarise  # doctest: +SKIP
    >>> judge = judge_from("local")  # doctest: +SKIP
    >>> scores = judge.judge(["Describe Paris."], ["Paris is ..."], "French food")  # doctest: +SKIP
    >>> summarise(scores)["harmonic_mean"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..adapters import HookedModel
from ..adapters.text import apply_chat_template
from ..errors import ConfigError, DataError
from .classifiers import embedder
from .judge_clients import ChatClient, RatingScorer
from .steering import perplexity
from .text import ngrams, words

# lo -> score 0, hi -> score 2, rounded from ``measured_bounds`` of
#   INTERV_DATA=/work/shared/data interv bench judge --json results/bench-judge.json
# (``interv.bench.judge.calibrate``): the median of a negative (lo) and a positive (hi) set,
# from the calibration halves only (the benchmark's AUROCs are on the other halves).
# Concept: cosine(response, concept description) on AxBench Concept10's latent_eval_data, the
# even concept ids (180 + 180): responses without the concept (lo) and with it (hi).
CONCEPT_COSINE = (0.005, 0.226)
# Instruction: cosine(instruction, response) on AlpacaEval's text-davinci-003 outputs, the 403
# even items: each instruction with the next item's output (lo) and with its own (hi).
INSTRUCTION_COSINE = (0.044, 0.709)
# Fluency: the default model's mean NLL (nats per token) of a response after its
# chat-formatted instruction: the first 48 words of 40 even AlpacaEval outputs shuffled (lo)
# and as written (hi).
FLUENCY_NLL = (6.34, 1.72)
ASPECTS = ("concept", "instruction", "fluency")


@runtime_checkable
class ModelLoader(Protocol):
    """Loads a model by name or path, None for the default model: ``interv.load``. Passed in
    because evaluation sits beside ``interv.loading`` and does not import it."""

    def __call__(self, name_or_path: str | None) -> HookedModel: ...


@dataclass(frozen=True)
class Judgement:
    """One response's three scores, each from 0 to 2."""

    concept: float
    instruction: float
    fluency: float

    @property
    def harmonic_mean(self) -> float:
        """AxBench's aggregate: 3 / (1/c + 1/i + 1/f), and 0 when any score is 0."""
        scores = (self.concept, self.instruction, self.fluency)
        if min(scores) <= 0:
            return 0.0
        return 3 / sum(1 / s for s in scores)


class Judge(ABC):
    """Scores responses to instructions for one concept."""

    name: str

    @abstractmethod
    def judge(
        self, instructions: Sequence[str], responses: Sequence[str], concept: str
    ) -> list[Judgement]: ...


def summarise(judgements: Sequence[Judgement]) -> dict[str, float]:
    """The mean of each score, and the mean of the per-response harmonic means.

    Example:
        >>> summarise([Judgement(2, 2, 2), Judgement(0, 2, 1)])["harmonic_mean"]
        1.0
    """
    if not judgements:
        raise DataError("No judgements to summarise.")
    out = {a: statistics.fmean(getattr(j, a) for j in judgements) for a in ASPECTS}
    out["harmonic_mean"] = statistics.fmean(j.harmonic_mean for j in judgements)
    return out


def calibrated(x: float, bounds: tuple[float, float]) -> float:
    """``2 * clamp((x - lo) / (hi - lo), 0, 1)`` for ``bounds = (lo, hi)`` (hi < lo: lower is
    better)."""
    lo, hi = bounds
    return 2.0 * min(max((x - lo) / (hi - lo), 0.0), 1.0)


def repetition_factor(text: str) -> float:
    """The share of distinct word bigrams (1.0 under two words)."""
    grams = ngrams(words(text), 2)
    return len(set(grams)) / len(grams) if grams else 1.0


def _check(instructions: Sequence[str], responses: Sequence[str]) -> None:
    if len(instructions) != len(responses):
        raise ConfigError(
            f"{len(instructions)} instructions for {len(responses)} responses: give one "
            "instruction per response."
        )


@dataclass(frozen=True)
class Signals:
    """``LocalJudge``'s raw measurements of one response, before calibration."""

    concept_cosine: float
    instruction_cosine: float
    nll: float
    repetition: float


class LocalJudge(Judge):
    """Embedding similarity and the reference model's likelihood, calibrated to 0..2."""

    name = "local"

    def __init__(
        self,
        reference: HookedModel | None = None,
        *,
        loader: ModelLoader | None = None,
        concept_bounds: tuple[float, float] = CONCEPT_COSINE,
        instruction_bounds: tuple[float, float] = INSTRUCTION_COSINE,
        fluency_bounds: tuple[float, float] = FLUENCY_NLL,
        batch_size: int = 8,
    ):
        self._reference, self._loader = reference, loader
        self.concept_bounds, self.instruction_bounds = concept_bounds, instruction_bounds
        self.fluency_bounds, self.batch_size = fluency_bounds, batch_size

    @property
    def reference(self) -> HookedModel:
        """The model whose likelihood measures fluency (given, or the loader's default model)."""
        if self._reference is None:
            if self._loader is None:
                raise ConfigError(
                    "The local judge measures fluency with a reference model: pass reference="
                    "(the unsteered model), or loader=interv.load for the default model."
                )
            self._reference = self._loader(None)
        return self._reference

    def nll(self, instructions: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Mean per-token NLL of each response after its instruction (chat-formatted when the
        reference has a template), no steering: the unsteered reference model's forward."""
        tok = self.reference.tokenizer
        prompts = (
            apply_chat_template(tok, list(instructions), None)
            if getattr(tok, "chat_template", None)
            else [f"{i}\n" for i in instructions]
        )
        ppl = perplexity(self.reference, prompts, responses, batch_size=self.batch_size)
        return [math.log(p) if p > 0 else math.nan for p in ppl]

    def concept_cosines(self, responses: Sequence[str], concept: str) -> list[float]:
        """cosine(response, concept description) of sentence embeddings."""
        embed = embedder()
        return (embed(list(responses)) @ embed([concept])[0]).tolist()

    def instruction_cosines(
        self, instructions: Sequence[str], responses: Sequence[str]
    ) -> list[float]:
        """cosine(instruction, response) of sentence embeddings."""
        _check(instructions, responses)
        embed = embedder()
        return (embed(list(responses)) * embed(list(instructions))).sum(-1).tolist()

    def signals(
        self, instructions: Sequence[str], responses: Sequence[str], concept: str
    ) -> list[Signals]:
        """The raw signals of non-empty responses (``judge`` scores empty ones 0)."""
        _check(instructions, responses)
        if not responses:
            return []
        concept_cos = self.concept_cosines(responses, concept)
        instruction_cos = self.instruction_cosines(instructions, responses)
        nll = self.nll(instructions, responses)
        return [
            Signals(c, i, n, repetition_factor(r))
            for c, i, n, r in zip(concept_cos, instruction_cos, nll, responses, strict=True)
        ]

    def score(self, signals: Signals) -> Judgement:
        fluency = 0.0
        if math.isfinite(signals.nll):
            fluency = calibrated(signals.nll, self.fluency_bounds) * signals.repetition
        return Judgement(
            calibrated(signals.concept_cosine, self.concept_bounds),
            calibrated(signals.instruction_cosine, self.instruction_bounds),
            fluency,
        )

    def judge(
        self, instructions: Sequence[str], responses: Sequence[str], concept: str
    ) -> list[Judgement]:
        _check(instructions, responses)
        keep = [k for k, r in enumerate(responses) if r.strip()]
        found = self.signals([instructions[k] for k in keep], [responses[k] for k in keep], concept)
        out = [Judgement(0.0, 0.0, 0.0)] * len(responses)
        for k, signals in zip(keep, found, strict=True):
            out[k] = self.score(signals)
        return out


CONCEPT_RUBRIC = (
    "Please act as an impartial judge. Rate how well the response below incorporates this "
    'concept: "{concept}".\n'
    "0: the concept is absent from the response.\n"
    "1: the concept is present only weakly, in passing or indirectly.\n"
    "2: the concept is clearly and substantially part of the response.\n"
    "Judge the concept only, not whether the response is fluent or answers a question.\n\n"
    "Response:\n{response}\n\n{answer}"
)
INSTRUCTION_RUBRIC = (
    "Please act as an impartial judge. Rate how well the response below addresses the "
    "instruction.\n"
    "0: the response is unrelated to the instruction.\n"
    "1: the response is related to the instruction but does not really carry it out.\n"
    "2: the response clearly addresses the instruction.\n"
    "Judge relevance only, not style or fluency.\n\n"
    "Instruction:\n{instruction}\n\nResponse:\n{response}\n\n{answer}"
)
FLUENCY_RUBRIC = (
    "Please act as an impartial judge. Rate the fluency of the response below.\n"
    "0: not fluent: ungrammatical, incoherent, or repeating itself.\n"
    "1: somewhat fluent: understandable, but with awkward phrasing, errors or repetition.\n"
    "2: fluent: natural, grammatical and coherent.\n"
    "Judge the language only, not what the response is about.\n\n"
    "Response:\n{response}\n\n{answer}"
)
RUBRICS = {"concept": CONCEPT_RUBRIC, "instruction": INSTRUCTION_RUBRIC, "fluency": FLUENCY_RUBRIC}
DIGIT_ANSWER = "Reply with one digit only: 0, 1 or 2."
BRACKET_ANSWER = (
    "Explain your rating in one or two sentences, then give it on the last line exactly as "
    '"Rating: [[X]]", where X is 0, 1 or 2.'
)


def rubric_prompts(
    aspect: str, instructions: Sequence[str], responses: Sequence[str], concept: str, answer: str
) -> list[str]:
    """The judge's question about ``aspect`` for each (instruction, response)."""
    template = RUBRICS[aspect]
    return [
        template.format(concept=concept, instruction=i, response=r, answer=answer)
        for i, r in zip(instructions, responses, strict=True)
    ]


class ModelJudge(Judge):
    """A local chat model's expected rating for each rubric question (batched, deterministic)."""

    def __init__(self, model: HookedModel, *, batch_size: int = 8):
        self.scorer = RatingScorer(model, batch_size=batch_size)
        self.name = f"model:{model.cfg.name}"

    def judge(
        self, instructions: Sequence[str], responses: Sequence[str], concept: str
    ) -> list[Judgement]:
        _check(instructions, responses)
        scores = {
            aspect: self.scorer.expected(
                rubric_prompts(aspect, instructions, responses, concept, DIGIT_ANSWER)
            )
            for aspect in ASPECTS
        }
        return [Judgement(*values) for values in zip(*scores.values(), strict=True)]


class OpenAIJudge(Judge):
    """Each rubric question sent to an OpenAI-compatible chat endpoint, one request each."""

    def __init__(self, client: ChatClient):
        self.client = client
        self.name = f"openai:{client.model}"

    def judge(
        self, instructions: Sequence[str], responses: Sequence[str], concept: str
    ) -> list[Judgement]:
        _check(instructions, responses)
        prompts = {
            aspect: rubric_prompts(aspect, instructions, responses, concept, BRACKET_ANSWER)
            for aspect in ASPECTS
        }
        return [
            Judgement(*(float(self.client.rate(prompts[a][k])) for a in ASPECTS))
            for k in range(len(responses))
        ]


def judge_from(
    spec: str | None, reference: HookedModel | None = None, *, loader: ModelLoader | None = None
) -> Judge:
    """A judge from its spec: None or ``"local"`` (``LocalJudge`` on ``reference``, else on the
    default model from ``loader``), ``"model:<name-or-path>"`` (``ModelJudge`` on that local
    chat model, loaded with ``loader``, e.g. ``interv.load``) or ``"openai:<model>"``
    (``OpenAIJudge``; key ``$OPENAI_API_KEY``, endpoint ``$INTERV_JUDGE_BASE_URL``, default
    https://api.openai.com/v1).

    Example:
        >>> judge_from(None).name
        'local'
    """
    if spec is None or spec == "local":
        return LocalJudge(reference, loader=loader)
    kind, _, name = spec.partition(":")
    if kind == "model" and name:
        if loader is None:
            raise ConfigError(
                f"The judge {spec!r} loads a model: pass loader=interv.load to judge_from."
            )
        model = loader(name)
        if reference is not None:
            model.to(reference.device)
        return ModelJudge(model)
    if kind == "openai" and name:
        return OpenAIJudge(ChatClient.from_env(name))
    raise ConfigError(
        f"Unknown judge {spec!r}: use 'local', 'model:<name-or-path>' or 'openai:<model>'."
    )
