"""Helpers the graph tests share: seeded vectors, a before/after tracer, a tiny SAE."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

PROMPTS = ["Hello world", "abc"]  # different lengths: the batch is left-padded


def vector(shape, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return scale * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@dataclass
class Forward:
    step: int
    before: torch.Tensor
    after: torch.Tensor
    sequence: torch.Tensor | None = None
    past: int = 0
    changed: torch.Tensor = field(init=False)

    def __post_init__(self):
        diff = (self.after - self.before).abs()
        self.changed = diff.flatten(2).amax(-1) > 0 if diff.dim() > 2 else diff > 0  # [batch, cur]


def trace(model, hook, graph, prompts=PROMPTS, *, generate=0, **kwargs) -> list[Forward]:
    """The activation at ``hook`` before and after the graph, for every forward of a run."""
    before: list[tuple] = []
    after: list[Forward] = []

    def record_before(act, ctx):
        before.append((ctx.run.step, act.detach().clone()))

    def record_after(act, ctx):
        step, first = before[len(after)]
        seq = ctx.run.sequence_ids()
        after.append(
            Forward(
                step,
                first,
                act.detach().clone(),
                None if seq is None else seq.clone(),
                ctx.run.past_length,
            )
        )

    with model.hooks({hook: record_before}), torch.no_grad():
        if generate:
            model.generate(
                prompts, max_new_tokens=generate, graph=graph, hooks={hook: record_after}, **kwargs
            )
        else:
            model.forward(prompts, graph=graph, hooks={hook: record_after})
    return after


class TinySAE(nn.Module):
    """A ReLU sparse autoencoder with the minimal interface SAEFeature needs."""

    def __init__(self, d_in: int, d_sae: int, hook_name: str, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W_enc = nn.Parameter(torch.randn(d_in, d_sae, generator=g) / d_in**0.5)
        self.b_enc = nn.Parameter(0.1 * torch.randn(d_sae, generator=g))
        self.W_dec = nn.Parameter(torch.randn(d_sae, d_in, generator=g) / d_sae**0.5)
        self.b_dec = nn.Parameter(0.1 * torch.randn(d_in, generator=g))
        self.hook_name = hook_name

    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, z):
        return z @ self.W_dec + self.b_dec


@pytest.fixture
def tiny_sae():
    def make(model, hook="blocks.1.hook_resid_pre", d_sae=48, seed=0):
        width = 1
        for d in model.hook_shape(hook):
            width *= d
        return TinySAE(width, d_sae, hook, seed)

    return make


def real_positions(model, prompts=PROMPTS) -> torch.Tensor:
    return model.to_batch(prompts).attention_mask.bool()


def assert_close(got, expected, msg=""):
    """Max |a - b| <= 1e-5 of the tensor's scale (the adapter parity tolerance)."""
    scale = expected.abs().max().item()
    error = (got - expected).abs().max().item()
    assert error <= 1e-5 * max(scale, 1.0), f"{msg}: max error {error:.3g} at scale {scale:.3g}"
