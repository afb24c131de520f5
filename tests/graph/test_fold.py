"""Folding constant additions into weights: same logits as hooks, exact revert, clear refusals."""

from __future__ import annotations

import pytest
import torch

from interv.adapters import architecture_for
from interv.errors import ModelMismatchError
from interv.graph import Add, Graph, GraphError, ProjectOut, SAEFeature, conditions, positions
from interv.patch import PatchSet
from tests.conftest import BACKENDS
from tests.graph.conftest import PROMPTS, assert_close, real_positions, vector
from tests.interv.test_patch import weights_hash


def _additions(model) -> Graph:
    d = model.cfg.d_model
    nodes = [
        Add("blocks.0.hook_resid_post", vector(d, 1), scale=0.5),
        Add(
            "blocks.1.hook_resid_pre", vector(d, 2)
        ),  # the same stream: also into blocks.0.mlp.b_out
        Add("blocks.1.hook_attn_out", vector(d, 3), strength=0.3),
        Add("blocks.1.hook_mlp_out", vector(d, 4)),
    ]
    if "blocks.1.hook_resid_mid" in model.hook_names():
        nodes.append(Add("blocks.1.hook_resid_mid", vector(d, 5)))
    if (
        not model.cfg.tied_embeddings
        and "hook_embed" in architecture_for(model.cfg.model_type).additive_weights
    ):
        nodes.append(Add("blocks.0.hook_resid_pre", vector(d, 6), scale=0.2))
    return Graph(nodes)


def _check_fold_equals_hooks(model, graph):
    mask = real_positions(model)
    original = weights_hash(model)
    params = sorted(name for name, _ in model.hf_model.named_parameters())
    with torch.no_grad():
        hooked = model.forward(PROMPTS, graph=graph)
        baseline = model.forward(PROMPTS)
    kw = dict(max_new_tokens=5, min_new_tokens=5)
    hooked_text = model.generate(PROMPTS, graph=graph, **kw)
    patch = graph.fold(model)
    with patch.applied(model), torch.no_grad():
        folded = model.forward(PROMPTS)
        folded_text = model.generate(PROMPTS, **kw)
    assert not torch.allclose(hooked[mask], baseline[mask], atol=1e-3)
    assert_close(folded[mask], hooked[mask], "folded vs hooked")
    assert folded_text == hooked_text
    assert weights_hash(model) == original
    assert sorted(name for name, _ in model.hf_model.named_parameters()) == params
    return patch


@pytest.mark.parametrize(
    "family", ["llama", "qwen2", "gpt2", "gpt_neox", "gpt_neox_sequential", "gemma"]
)
def test_fold_equals_hooks(fresh_tiny, family):
    model = fresh_tiny(family)
    patch = _check_fold_equals_hooks(model, _additions(model))
    targets = set(patch.weights())
    assert {"blocks.0.mlp.b_out", "blocks.1.attn.b_O", "blocks.1.mlp.b_out"} <= targets


@pytest.mark.parametrize("backend", BACKENDS)
def test_fold_on_every_backend_creates_and_removes_biases(fresh_tiny, backend):
    model = fresh_tiny("llama", backend)
    assert "blocks.0.mlp.b_out" not in model.weight_names()
    patch = _check_fold_equals_hooks(model, _additions(model))
    assert "embed.W_E" in patch.weights()  # llama here has untied embeddings
    assert "blocks.0.mlp.b_out" not in model.weight_names()
    assert model.hf_model.model.layers[0].mlp.down_proj.bias is None


def test_strength_and_sae_additions_fold(fresh_tiny, tiny_sae):
    model = fresh_tiny("llama")
    sae = tiny_sae(model, hook="blocks.1.hook_resid_pre")
    graph = (
        Graph(
            [
                Add("blocks.1.hook_mlp_out", vector(model.cfg.d_model), scale=2.0),
                SAEFeature(sae, [1, 2], values=[3.0, -1.0]),
            ]
        )
        * 0.5
    )
    _check_fold_equals_hooks(model, graph)
    graph.disable("add")
    assert graph.fold(model).weights() == ["blocks.0.mlp.b_out"]  # the SAE node's stream


def test_folded_patch_round_trips(fresh_tiny, tmp_path):
    model = fresh_tiny("qwen2")
    graph = Graph([Add("blocks.1.hook_resid_post", vector(model.cfg.d_model))])
    loaded = PatchSet.load(graph.fold(model).save(tmp_path / "fold.safetensors"))
    with torch.no_grad():
        hooked = model.forward(PROMPTS, graph=graph)
        with loaded.applied(model):
            folded = model.forward(PROMPTS)
    assert_close(folded[real_positions(model)], hooked[real_positions(model)])


def _refusals(model):
    d = model.cfg.d_model
    cond = conditions.cosine("blocks.0.hook_resid_post", torch.ones(d), 0.0)
    return [
        (
            "acts on positions 'generated'",
            Add("blocks.0.hook_resid_post", torch.ones(d), positions=positions.generated()),
        ),
        ("selects batch rows", Add("blocks.0.hook_resid_post", torch.ones(d), rows=[0])),
        ("it is conditional", Add("blocks.1.hook_resid_post", torch.ones(d), condition=cond)),
        (
            "selects attention heads",
            Add("blocks.0.attn.hook_z", torch.ones(model.cfg.d_head), heads=[0]),
        ),
        ("only constant additions", ProjectOut("blocks.0.hook_resid_post", torch.ones(d))),
        (
            "no weight of a llama model adds a constant",
            Add("blocks.0.mlp.hook_post", torch.ones(model.cfg.d_mlp)),
        ),
        (
            "no weight of a llama model adds a constant",
            Add("ln_final.hook_normalized", torch.ones(d)),
        ),
    ]


def test_unfoldable_graphs_are_refused(fresh_tiny):
    model = fresh_tiny("llama")
    original = weights_hash(model)
    for reason, node in _refusals(model):
        with pytest.raises(GraphError, match=f"Cannot fold.*{reason}"):
            Graph([Add("blocks.0.hook_resid_post", torch.ones(model.cfg.d_model)), node]).fold(
                model
            )
    assert weights_hash(model) == original


def test_refusals_that_depend_on_the_architecture(fresh_tiny):
    gemma2 = fresh_tiny("gemma2")  # post-norms after attention and MLP
    with pytest.raises(
        GraphError,
        match="'blocks.1.hook_resid_pre' \\(its last write is 'blocks.0.hook_mlp_out'\\).*gemma2",
    ):
        Graph([Add("blocks.1.hook_resid_pre", torch.ones(32))]).fold(gemma2)
    gpt2 = fresh_tiny("gpt2")  # tied embeddings
    for hook in ("hook_embed", "blocks.0.hook_resid_pre"):
        with pytest.raises(GraphError, match="ties it to the unembedding"):
            Graph([Add(hook, torch.ones(32))]).fold(gpt2)
    llama = fresh_tiny("llama")
    with pytest.raises(ModelMismatchError, match="was made for"):
        Graph([Add("blocks.0.hook_resid_post", torch.ones(32))], model=gpt2).fold(llama)
