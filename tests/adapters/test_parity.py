"""Every backend gives the same logits, activations, interventions and generations.

Tolerance: float32 on CPU; max |a - b| <= 1e-5 * max |b| over the real (non-padding)
positions of each tensor. hf and nnsight run the same modules and agree exactly;
TransformerLens's bridge re-derives attention in its own code, which moves the last bits
(largest relative error seen: 8e-7 of the tensor's scale).
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import BACKENDS
from tests.tiny import FAMILIES

PROMPTS = ["Hello world", "abc"]  # different lengths: the batch is left-padded
OTHER_BACKENDS = [b for b in BACKENDS if b != "hf"]


def assert_close(got: torch.Tensor, expected: torch.Tensor, msg: str = "") -> None:
    scale = expected.abs().max().item()
    error = (got - expected).abs().max().item()
    assert error <= 1e-5 * max(scale, 1.0), f"{msg}: max error {error:.3g} at scale {scale:.3g}"


def _real(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Only real (non-padding) positions: padded positions attend to nothing and are undefined."""
    return x[mask.bool()]


def _perturbation(name: str, shape: torch.Size) -> torch.Tensor:
    seed = sum(name.encode()) * 7919
    return torch.randn(shape[-1], generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_same_hook_names(tiny_models, family, backend):
    assert tiny_models(family, backend).hook_names() == tiny_models(family, "hf").hook_names()
    assert tiny_models(family, backend).weight_names() == tiny_models(family, "hf").weight_names()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_plain_transformers(tiny_models, tiny_dirs, family, backend):
    from transformers import AutoModelForCausalLM

    model = tiny_models(family, backend)
    plain = AutoModelForCausalLM.from_pretrained(tiny_dirs[family]).eval()
    batch = model.to_batch(PROMPTS)
    with torch.no_grad():
        expected = plain(**batch.model_kwargs()).logits
        got = model.forward(PROMPTS)
    mask = batch.attention_mask
    assert_close(_real(got, mask), _real(expected, mask))


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_activations_match_at_every_hook(tiny_models, family, backend):
    reference = tiny_models(family, "hf")
    model = tiny_models(family, backend)
    with torch.no_grad():
        _, expected = reference.run_with_cache(PROMPTS)
        _, got = model.run_with_cache(PROMPTS)
    assert list(got) == reference.hook_names()
    mask = reference.to_batch(PROMPTS).attention_mask
    for name in reference.hook_names():
        assert_close(_real(got[name], mask), _real(expected[name], mask), name)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_interventions_match_at_every_hook(tiny_models, family, backend):
    """Writing at a hook changes the model the same way on every backend."""
    reference = tiny_models(family, "hf")
    model = tiny_models(family, backend)
    mask = reference.to_batch(PROMPTS).attention_mask
    baseline = _real(reference.forward(PROMPTS).detach(), mask)
    for name in reference.hook_names():

        def add(act, ctx):
            return act + _perturbation(ctx.name, act.shape)

        with torch.no_grad():
            expected = _real(reference.forward(PROMPTS, hooks={name: add}), mask)
            got = _real(model.forward(PROMPTS, hooks={name: add}), mask)
        assert not torch.allclose(expected, baseline, atol=1e-4), f"{name} had no effect"
        assert_close(got, expected, name)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox", "gemma2"])
def test_greedy_generation_matches(tiny_models, family, backend):
    reference = tiny_models(family, "hf")
    model = tiny_models(family, backend)
    steer = {"blocks.1.hook_resid_pre": lambda act, ctx: act + 0.5}
    for hooks in (None, steer):
        expected = reference.generate(PROMPTS, max_new_tokens=6, hooks=hooks)
        assert model.generate(PROMPTS, max_new_tokens=6, hooks=hooks) == expected


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox", "gemma2"])
def test_left_padding_does_not_change_real_positions(tiny_models, family, backend):
    model = tiny_models(family, backend)
    with torch.no_grad():
        padded = model.forward(PROMPTS)
        alone = model.forward(PROMPTS[1])
    n = alone.shape[1]
    assert_close(padded[1, -n:], alone[0])
