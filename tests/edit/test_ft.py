"""FT-L and FT-M: the edit lands, the model is untouched by compute, constraints hold."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from interv.edit import EDIT_METHODS, EditRequest
from interv.edit.ft import FTLHParams, FTMHParams, _encode, _loss
from interv.eval.tokens import token_accuracy
from interv.hparams import HParams

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "edit"
REQUEST = EditRequest(prompt="Hello world", target_new="abc", subject="Hello")
FAST = dict(layers=[1], lr=5e-2, num_steps=30, norm_constraint=None)


def weights_hash(model) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.hf_model.named_parameters()):
        digest.update(name.encode() + param.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def method(name: str, **changes):
    cls = EDIT_METHODS.get(name)
    return cls(cls.hparams_class(**changes))


@pytest.mark.parametrize("name", ["ft-l", "ft-m"])
def test_registered_with_their_objective(name):
    cls = EDIT_METHODS.get(name)
    assert cls.batchable and cls.name == name
    assert (
        cls.hparams_class().objective_optimization
        == {"ft-l": "prompt_last", "ft-m": "target_new"}[name]
    )


@pytest.mark.parametrize(
    ("family", "backend"), [("llama", "hf"), ("gpt2", "hf"), ("llama", "transformer_lens")]
)
def test_ft_m_writes_the_target_and_leaves_the_model_alone(fresh_tiny, family, backend):
    model = fresh_tiny(family, backend)
    before, flags = weights_hash(model), [p.requires_grad for p in model.hf_model.parameters()]
    assert token_accuracy(model, [REQUEST.prompt], [REQUEST.target_new]) != [1.0]
    patch = method("ft-m", **FAST).compute(model, [REQUEST])
    assert weights_hash(model) == before  # compute never changes the model
    assert [p.requires_grad for p in model.hf_model.parameters()] == flags
    assert all(p.grad is None for p in model.hf_model.parameters())
    assert patch.weights() == ["blocks.1.mlp.W_out"] and patch.method == "ft-m"
    assert patch.fingerprint == model.fingerprint() and patch.requests[0]["target_new"] == "abc"
    with patch.applied(model):
        assert token_accuracy(model, [REQUEST.prompt], [REQUEST.target_new]) == [1.0]
    assert weights_hash(model) == before


def test_ft_l_raises_the_target_at_the_last_prompt_position(fresh_tiny):
    model = fresh_tiny("llama")
    example = _encode(model, REQUEST, 40)
    loss_before = _loss(model, [example], "prompt_last").item()
    patch = method("ft-l", **FAST).compute(model, [REQUEST])
    with patch.applied(model):
        # every target token is scored at the same position: the floor is log(#target tokens)
        assert _loss(model, [example], "prompt_last").item() < 0.5 * loss_before
        top = model.forward(REQUEST.prompt)[0, -1].argmax().item()
    assert top in example.target


def test_losses_match_their_definitions(tiny_models):
    model = tiny_models("llama")
    example = _encode(model, REQUEST, 40)
    n = len(example.target)
    with torch.no_grad():
        logprobs = model.forward(torch.tensor([example.prompt + example.target]))[0].log_softmax(-1)
        target_new = -logprobs[-n - 1 : -1].gather(-1, torch.tensor(example.target)[:, None]).mean()
        last = len(example.prompt) - 1
        prompt_last = -logprobs[last, example.target].mean()
        assert _loss(model, [example], "target_new").item() == pytest.approx(
            target_new.item(), rel=1e-5
        )
        assert _loss(model, [example], "prompt_last").item() == pytest.approx(
            prompt_last.item(), rel=1e-5
        )
        # a batch is the mean of its requests, whatever the padding
        other = _encode(model, EditRequest(prompt="A much longer prompt here", target_new="x"), 40)
        single = _loss(model, [other], "target_new").item()
        pair = _loss(model, [example, other], "target_new").item()
        assert pair == pytest.approx((target_new.item() + single) / 2, rel=1e-4)


def test_norm_constraint_bounds_every_element(fresh_tiny):
    model = fresh_tiny("llama")
    patch = method("ft-m", layers=[0, 1], lr=5e-2, num_steps=5, norm_constraint=1e-3).compute(
        model, [REQUEST]
    )
    assert patch.weights() == ["blocks.0.mlp.W_out", "blocks.1.mlp.W_out"]
    for p in patch.patches:
        assert p.dense().abs().max().item() <= 1e-3 + 1e-7
        assert p.dense().abs().max().item() > 5e-4  # it did move, up to the bound


def test_early_stopping_and_batches(fresh_tiny):
    model = fresh_tiny("llama")
    patch = method("ft-m", layers=[1], early_stop_loss=1e6).compute(model, [REQUEST])
    assert all(torch.count_nonzero(p.dense()) == 0 for p in patch.patches)  # stopped before a step
    second = EditRequest(prompt="The cat", target_new="dog")
    both = method("ft-m", **FAST, batch_size=2).compute(model, [REQUEST, second])
    with both.applied(model):
        assert token_accuracy(model, ["Hello world", "The cat"], ["abc", "dog"]) == [1.0, 1.0]


def test_other_weights_can_be_edited(fresh_tiny):
    model = fresh_tiny("llama")
    patch = method("ft-m", layers=[1], weights=["mlp.W_in", "mlp.W_gate"], num_steps=2).compute(
        model, [REQUEST]
    )
    assert patch.weights() == ["blocks.1.mlp.W_in", "blocks.1.mlp.W_gate"]


def test_bad_hyperparameters_and_layers(fresh_tiny):
    with pytest.raises(ValueError, match="Use method: ft-m"):
        FTLHParams(objective_optimization="target_new")
    with pytest.raises(ValueError, match="objective_optimization must be one of"):
        FTMHParams(objective_optimization="sideways")
    with pytest.raises(ValueError, match="num_steps must be at least 1"):
        FTMHParams(num_steps=0)
    with pytest.raises(ValueError, match="norm_constraint must be a positive number"):
        FTMHParams(norm_constraint=-1.0)
    assert (
        FTMHParams.from_dict({"norm_constraint": False}).norm_constraint is None
    )  # EasyEdit's "off"
    model = fresh_tiny("llama")
    before = weights_hash(model)
    with pytest.raises(ValueError, match=r"layer\(s\) \[7\] out of range"):
        method("ft-m", layers=[7]).compute(model, [REQUEST])
    with pytest.raises(KeyError, match="W_outt"):
        method("ft-m", layers=[1], weights=["mlp.W_outt"]).compute(model, [REQUEST])
    assert weights_hash(model) == before


@pytest.mark.parametrize("name", ["ft-l", "ft-m"])
def test_recipes_load_with_their_method(name):
    path = RECIPES / f"{name}-smollm2.yaml"
    hp = HParams.from_yaml.__func__(EDIT_METHODS.get(name).hparams_class, path)
    assert (
        hp.method == name
        and hp.to_dict() == EDIT_METHODS.get(name).hparams_class.from_yaml(path).to_dict()
    )
    assert hp == EDIT_METHODS.get(name).hparams_class()  # the recipe is the tuned default


@pytest.mark.real_model
def test_ft_m_edit_sticks_on_the_default_model(real_models):
    model = real_models("hf")
    request = EditRequest(
        prompt="The Eiffel Tower is located in the city of",
        target_new="Rome",
        subject="Eiffel Tower",
    )
    before = weights_hash(model)
    assert token_accuracy(model, [request.prompt], ["Rome"]) == [0.0]
    patch = method("ft-m").compute(model, [request])
    with patch.applied(model):
        assert token_accuracy(model, [request.prompt], ["Rome"]) == [1.0]
        assert model.generate(request.prompt, max_new_tokens=3)[0].strip().startswith("Rome")
    assert weights_hash(model) == before
