"""Each steering method's artefact for one concept, from the concept's training examples: the
method half of ``interv bench concepts``.

Every vector method reads or trains at one layer's block output (the shipped SAE's layer, so
``sae_feature`` steers where the others do) on the same ``n_train`` positive examples (an
instruction and a response about the concept), with these contrasts:

* ``caa`` / ``repe``: the positive response against the model's own response to the same
  instruction, both after the chat-formatted instruction (mean over the response's tokens;
  RepE takes the first principal component of the differences);
* ``mean_diff``: positive responses against concept-free responses to other instructions
  (ActAdd-style, free text, mean over tokens);
* ``vector_prompt``: the model's own responses read with and without the concept prompt;
* ``sft``: trained to make the positive responses likely;
* ``reps``: trained to prefer the positive response over the model's own with ``+v`` and the
  reverse with ``-v`` (the model's own response is the "original" RePS needs);
* ``sae_feature``: the decoder direction of the SAE feature whose mean activation on the
  positive responses exceeds its mean on the negatives by the most.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..adapters.text import apply_chat_template
from ..contrast import ContrastPair
from ..data.concepts import Concept, Example
from ..steer.activations import read_token_states
from ..steer.caa import CAA, CAAHParams
from ..steer.mean_diff import MeanDiff, MeanDiffHParams
from ..steer.repe import RepE, RepEHParams
from ..steer.reps import RePS, RePSHParams
from ..steer.sae_feature import SAEFeatureHParams, SAEFeatureSteer, load_sae
from ..steer.sft import SFT, SFTHParams
from ..steer.vector import SteeringVector
from ..steer.vector_prompt import VectorPrompt, VectorPromptHParams
from ..tokens import tokenize

log = logging.getLogger(__name__)
PROMPT = "In your answer, talk about {concept}."
SAE = "smollm2-135m-res12"


@dataclass(frozen=True)
class TrainSet:
    """What every method of one concept is fitted on."""

    concept: Concept
    # responses already cut to ``response_tokens`` (``clipped``)
    positives: Sequence[Example]  # instruction + response about the concept
    own: Sequence[str]  # the model's own responses to the same instructions
    negatives: Sequence[Example]  # concept-free responses to other instructions
    layer: int
    response_tokens: int
    seed: int

    @property
    def prompt(self) -> str:
        return PROMPT.format(concept=self.concept.description)


def clipped(model: HookedModel, examples: Sequence[Example], n_tokens: int) -> list[Example]:
    """The examples with each response cut to its first ``n_tokens`` tokens."""
    return [Example(e.instruction, clip(model, e.response, n_tokens)) for e in examples]


def clip(model: HookedModel, text: str, n_tokens: int) -> str:
    """The text cut to its first ``n_tokens`` tokens."""
    ids = tokenize(model, [text.strip()], special_tokens=False)[0][:n_tokens]
    return model.tokenizer.decode(ids).strip()


def _pairs(model: HookedModel, data: TrainSet) -> list[ContrastPair]:
    chats = apply_chat_template(model.tokenizer, [e.instruction for e in data.positives], None)
    return [
        ContrastPair(positive=e.response, negative=own, prompt=chat)
        for e, own, chat in zip(data.positives, data.own, chats, strict=True)
    ]


def _records(model: HookedModel, data: TrainSet) -> list[dict[str, str]]:
    return [
        {
            "input": e.instruction,
            "output": e.response,
            "rejected": own,
        }
        for e, own in zip(data.positives, data.own, strict=True)
    ]


def sae_contrast_feature(model: HookedModel, data: TrainSet) -> int:
    """The SAE feature most active on the positive responses relative to the negatives."""
    sae = load_sae(model, SAE, None)

    def mean_code(texts: Sequence[str]) -> Float[Tensor, " d_sae"]:
        states = read_token_states(model, tokenize(model, texts), sae.hook_name)
        codes = [sae.encode(s.to(sae.device, sae.dtype)).float().mean(0) for s in states]
        return torch.stack(codes).mean(0)

    pos = [e.response for e in data.positives]
    neg = [e.response for e in data.negatives]
    return int((mean_code(pos) - mean_code(neg)).argmax())


def _caa(model: HookedModel, data: TrainSet) -> SteeringVector:
    hp = CAAHParams(layers=[data.layer], chat_template=False)
    return CAA(hp).fit(model, _pairs(model, data))


def _repe(model: HookedModel, data: TrainSet) -> SteeringVector:
    return RepE(RepEHParams(layers=[data.layer])).fit(model, _pairs(model, data))


def _mean_diff(model: HookedModel, data: TrainSet) -> SteeringVector:
    pos = [e.response for e in data.positives]
    neg = [e.response for e in data.negatives[: len(pos)]]
    hp = MeanDiffHParams(
        layers=[data.layer], hook="hook_resid_post", read="mean", positive=pos, negative=neg
    )
    return MeanDiff(hp).fit(model)


def _vector_prompt(model: HookedModel, data: TrainSet) -> SteeringVector:
    records = [
        {"input": e.instruction, "output": own}
        for e, own in zip(data.positives, data.own, strict=True)
    ]
    hp = VectorPromptHParams(layers=[data.layer], prompt=data.prompt, chat_template=True)
    return VectorPrompt(hp).fit(model, records)


def _sft(model: HookedModel, data: TrainSet) -> SteeringVector:
    hp = SFTHParams(
        layers=[data.layer], chat_template=True, output_length=data.response_tokens, seed=data.seed
    )
    return SFT(hp).fit(model, _records(model, data))


def _reps(model: HookedModel, data: TrainSet) -> SteeringVector:
    hp = RePSHParams(
        layers=[data.layer], chat_template=True, output_length=data.response_tokens, seed=data.seed
    )
    return RePS(hp).fit(model, _records(model, data))


def _sae_feature(model: HookedModel, data: TrainSet) -> SteeringVector:
    hp = SAEFeatureHParams(sae=SAE, features=[sae_contrast_feature(model, data)], strengths=[1.0])
    return SAEFeatureSteer(hp).fit(model)


FITTERS: dict[str, Callable[[HookedModel, TrainSet], SteeringVector]] = {
    "caa": _caa,
    "mean_diff": _mean_diff,
    "repe": _repe,
    "vector_prompt": _vector_prompt,
    "reps": _reps,
    "sft": _sft,
    "sae_feature": _sae_feature,
}
METHODS = tuple(FITTERS)


def fit_all(
    model: HookedModel, data: TrainSet, methods: Sequence[str]
) -> dict[str, SteeringVector]:
    """``{method: vector}`` for the methods asked for (names of ``METHODS``)."""
    out = {}
    for method in methods:
        start = time.perf_counter()
        out[method] = FITTERS[method](model, data)
        log.info("%s fitted in %.1f s", method, time.perf_counter() - start)
    return out


def residual_norm(model: HookedModel, texts: Sequence[str], layer: int) -> float:
    """The median token norm at the layer's block output (first tokens left out: their
    "massive activations" are orders of magnitude larger)."""
    states = read_token_states(model, tokenize(model, texts), names.hook("hook_resid_post", layer))
    norms = torch.cat([s[1:].norm(dim=-1) for s in states if s.shape[0] > 1])
    return float(norms.median())
