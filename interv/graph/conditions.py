"""When a node acts: a per-row decision made on the prompt and kept for the whole generation.

Conditional steering (Lee et al., "Programming Refusal with Conditional Activation Steering",
ICLR 2025, arXiv:2409.05907) steers only inputs whose activation resembles a condition
direction. Here the decision is taken per batch row on the prompt's forward, at the
condition's hook, and remembered for every generated token, so it works batched, with left
padding and with the KV cache (the reference implementation keeps one global decision and
generates one prompt at a time).

Example (with the default model)::

    from interv.graph import Add, conditions
    harmful = conditions.cosine("blocks.6.hook_resid_post", direction, threshold=0.1)
    Add("blocks.12.hook_resid_post", refusal, scale=4.0, condition=harmful)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from jaxtyping import Bool, Float, Shaped
from torch import Tensor

from ..adapters import HookContext, RunState
from ..errors import GraphError
from .tensors import HookInfo, Number, check_number, check_tensor


@dataclass(eq=False)
class Condition(ABC):
    """Base class: ``decide`` maps the prompt's activation at ``hook`` to one bool per row."""

    kind: ClassVar[str] = ""
    hook: str

    def check(self, info: HookInfo) -> None:  # noqa: B027 - an optional hook, a no-op unless overridden
        """Raise ``GraphError`` if the condition cannot read activations at this hook."""

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        """Its tensors with the factor they are used at, re-checked at compile (as a node's)."""
        return {}

    @abstractmethod
    def decide(
        self, act: Float[Tensor, "batch pos *features"], run: RunState
    ) -> Bool[Tensor, " batch"]:
        """One bool per row: whether the condition holds for that row's prompt."""


@dataclass(eq=False)
class Cosine(Condition):
    """Cosine between the prompt's activation and ``direction`` compared with ``threshold``.

    ``reduce="mean"`` averages the activation over each row's real prompt tokens,
    ``"last"`` takes the last prompt token. ``compare`` is ``">"`` (steer similar prompts)
    or ``"<"`` (steer dissimilar ones).
    """

    kind: ClassVar[str] = "cosine"
    direction: Float[Tensor, "*features"]
    threshold: Number
    compare: Literal[">", "<"] = ">"
    reduce: Literal["mean", "last"] = "mean"
    name: str = field(default="", kw_only=True)

    def __post_init__(self) -> None:
        check_tensor(self.direction, f"Condition at {self.hook!r}: direction")
        self.threshold = check_number(self.threshold, f"Condition at {self.hook!r}: threshold")
        if self.compare not in (">", "<") or self.reduce not in ("mean", "last"):
            raise GraphError(
                "A cosine condition needs compare '>' or '<' and reduce 'mean' or 'last'."
            )
        if float(self.direction.float().norm()) == 0:
            raise GraphError(f"Condition at {self.hook!r}: direction has zero norm.")

    def check(self, info: HookInfo) -> None:
        if tuple(self.direction.shape) != info.shape and self.direction.numel() != _numel(
            info.shape
        ):
            raise GraphError(
                f"Condition at {info.name!r}: direction has shape {list(self.direction.shape)}, "
                f"but activations there have features {list(info.shape)}."
            )

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        return {"direction": (self.direction, 1.0)}  # its norm must be finite for a cosine

    def scores(
        self,
        act: Float[Tensor, "batch pos *features"],
        attention_mask: Shaped[Tensor, "batch seq"] | None = None,
    ) -> Float[Tensor, " batch"]:
        """Cosine of each row's (mean or last) prompt activation with the direction.

        ``act`` is the prompt's activation at the hook (left-padded); ``attention_mask`` marks
        real tokens. Useful to pick a threshold from the scores of example prompts.
        """
        flat = act.flatten(2).float()  # [batch, pos, features]
        if self.reduce == "last":
            summary = flat[:, -1]
        else:
            mask = attention_mask if attention_mask is not None else torch.ones(flat.shape[:2])
            weights = (
                mask[:, : flat.shape[1]].to(device=flat.device, dtype=flat.dtype).unsqueeze(-1)
            )
            summary = (flat * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        direction = self.direction.reshape(-1).to(device=flat.device, dtype=flat.dtype)
        return torch.nn.functional.cosine_similarity(summary, direction.unsqueeze(0), dim=-1)

    def decide(
        self, act: Float[Tensor, "batch pos *features"], run: RunState
    ) -> Bool[Tensor, " batch"]:
        scores = self.scores(act, run.attention_mask)
        return scores > self.threshold if self.compare == ">" else scores < self.threshold

    def __repr__(self) -> str:
        return (
            f"Cosine({self.hook!r}, direction=Tensor{list(self.direction.shape)}, "
            f"threshold={self.threshold}, compare={self.compare!r}, reduce={self.reduce!r})"
        )

    def to_yaml(self, put: Any) -> dict[str, Any]:
        return {
            "type": self.kind,
            "hook": self.hook,
            "direction": put("direction", self.direction),
            "threshold": self.threshold,
            "compare": self.compare,
            "reduce": self.reduce,
        }


def cosine(
    hook: str,
    direction: Float[Tensor, "*features"],
    threshold: Number,
    *,
    compare: Literal[">", "<"] = ">",
    reduce: Literal["mean", "last"] = "mean",
    name: str = "",
) -> Cosine:
    """Steer rows whose prompt activation at ``hook`` has cosine ``compare threshold``."""
    return Cosine(hook, direction, threshold, compare, reduce, name=name)


def condition_from_yaml(spec: dict[str, Any], get: Any) -> Condition:
    """Inverse of ``Condition.to_yaml``; ``get`` resolves tensor references."""
    if spec.get("type") != Cosine.kind:
        raise GraphError(f"Unknown condition type {spec.get('type')!r}; known: {Cosine.kind}.")
    fields = {"type", "hook", "direction", "threshold", "compare", "reduce", "name"}
    missing = sorted({"hook", "direction", "threshold"} - set(spec))
    unknown = sorted(set(spec) - fields)
    if missing or unknown:
        raise GraphError(
            f"Cosine condition: missing field(s) {missing}, unknown field(s) {unknown}."
        )
    return Cosine(
        spec["hook"],
        get(spec["direction"]),
        spec["threshold"],
        spec.get("compare", ">"),
        spec.get("reduce", "mean"),
        name=spec.get("name", ""),
    )


class ConditionState:
    """One compiled condition: evaluated on each prompt forward, read by its nodes."""

    def __init__(self, condition: Condition):
        self.condition = condition
        self.decision: Tensor | None = None

    def hook(self, act: Float[Tensor, "batch pos *features"], ctx: HookContext) -> None:
        if (
            ctx.run.past_length == 0
        ):  # the prompt's forward (a plain forward or a generation's first)
            self.decision = self.condition.decide(act, ctx.run)

    def rows(self) -> Bool[Tensor, "batch 1"]:
        """``[batch, 1]`` bool: rows where the condition holds."""
        if self.decision is None:
            raise GraphError(
                f"The condition at {self.condition.hook!r} has not seen a prompt yet; conditions "
                "are decided on the prompt's forward."
            )
        return self.decision.unsqueeze(-1)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
