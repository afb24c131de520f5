"""The shared apply side: vector -> graph, positions (the first generated token), prompt
interventions composed with graphs, apply-spec validation."""

from __future__ import annotations

import pytest
import torch

from interv.errors import GraphError, ModelMismatchError
from interv.graph import Graph, Transform
from interv.record import ModelRecord
from interv.steer.apply import ApplyHParams, Steering, steering_for
from interv.steer.graphs import SteeringGraph
from interv.steer.prompt import PromptIntervention
from interv.steer.vector import SteeringVector

HOOK = "blocks.1.hook_resid_post"


def _vector(model, layers=(0, 1), scale=1.0) -> SteeringVector:
    g = torch.Generator().manual_seed(0)
    dirs = {
        f"blocks.{i}.hook_resid_post": 5 * torch.randn(model.cfg.d_model, generator=g)
        for i in layers
    }
    return SteeringVector(dirs, method="caa", model=ModelRecord.of(model), recommended_scale=scale)


def _changed_per_step(model, graph, prompts):
    """For every forward of a greedy generation: which positions the graph changed at HOOK."""
    seen: list[torch.Tensor] = []
    model.generate(
        prompts, max_new_tokens=3, hooks={HOOK: lambda act, ctx: seen.append(act.clone())}
    )
    steered: list[torch.Tensor] = []
    model.generate(
        prompts,
        max_new_tokens=3,
        graph=graph,
        hooks={HOOK: lambda act, ctx: steered.append(act.clone())},
    )
    return [(a - b).abs().amax(-1) > 1e-4 for a, b in zip(seen, steered, strict=True)], seen


def test_from_last_prompt_token_steers_the_first_generated_token(tiny_models):
    model = tiny_models("llama")
    graph = _vector(model, [1]).to_graph(positions="from_last_prompt_token")
    prompts = ["hi", "a longer prompt"]  # left padding: the short row starts later
    changed, _ = _changed_per_step(model, graph, prompts)
    first = changed[0]  # the prompt forward: [batch, pos]; its last column makes token 1
    assert first[:, -1].all() and not first[:, :-1].any()
    for later in changed[1:]:  # one new token per row per step
        assert later.all()


def test_generated_and_prompt_positions(tiny_models):
    model = tiny_models("llama")
    vector = _vector(model, [1])
    changed, _ = _changed_per_step(model, vector.to_graph(positions="generated"), ["hi there"])
    assert not changed[0].any() and all(c.all() for c in changed[1:])
    changed, _ = _changed_per_step(model, vector.to_graph(positions="prompt"), ["hi there"])
    assert changed[0].all() and not any(c.any() for c in changed[1:])


def test_to_graph_layers_multipliers_and_recommended_scale(tiny_models):
    model = tiny_models("llama")
    vector = _vector(model, [0, 1], scale=2.0)
    graph = vector.to_graph(scale=3.0, layers=[1], model=model)
    assert graph.names() == ["caa_L1"] and graph.nodes[0].scale == 3.0
    assert graph.model is not None and graph.model.fingerprint == model.fingerprint()
    steering = steering_for(vector, ApplyHParams(layers=[0, 1], multipliers=[1.0, -0.5]))
    assert [n.scale for n in steering.graph.nodes] == [2.0, -1.0]  # multiplier x recommended scale
    with pytest.raises(ValueError, match=r"no direction at layer\(s\) \[3\]"):
        vector.to_graph(layers=[3])
    with pytest.raises(ValueError, match="2 multipliers for 1 steered hooks"):
        vector.to_graph(layers=[1], multipliers=[1.0, 2.0])


def test_a_vector_for_another_model_fails_before_running(tiny_models):
    llama, qwen = tiny_models("llama"), tiny_models("qwen2")
    vector = _vector(llama, [1])
    with pytest.raises(ModelMismatchError, match="was made for .* not for"):
        vector.to_graph(model=qwen)
    with pytest.raises(ModelMismatchError, match="was made for"):
        qwen.forward("hi", graph=vector.to_graph())
    wide = SteeringVector({HOOK: torch.ones(7)})
    with pytest.raises(ValueError, match="width 7"):
        wide.check(llama)
    with pytest.raises(ValueError, match="layer 4 is out of range"):
        SteeringVector({"blocks.4.hook_resid_post": torch.ones(32)}).check(llama)


def test_apply_spec_validation():
    with pytest.raises(ValueError, match="Unknown positions 'middle'"):
        ApplyHParams(positions="middle")
    with pytest.raises(ValueError, match="3 values for 2 layers"):
        ApplyHParams(layers=[1, 2], multipliers=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="contradicts positions: prompt"):
        ApplyHParams(positions="prompt", steer_from_end_position=True)
    assert ApplyHParams(steer_from_end_position=True).positions == "from_last_prompt_token"
    graph = Graph(
        [Transform("ln_final.hook_normalized", torch.eye(4))], meta={"recommended_scale": 2.0}
    )
    with pytest.raises(ValueError, match="Remove `layers`"):
        SteeringGraph(graph).steering(ApplyHParams(layers=[1]))
    moved = (
        SteeringGraph(graph).steering(ApplyHParams(multipliers=[-1.5], positions="generated")).graph
    )
    assert moved.nodes[0].strength == -3.0 and moved.nodes[0].positions.kind == "generated"


def test_a_graph_artefact_scales_like_a_vector(tiny_models):
    """``SteeringGraph.to_graph(scale)`` multiplies every node's strength, as a vector's does,
    and refuses a model whose width its transform does not fit."""
    model = tiny_models("llama")
    width = model.cfg.d_model
    art = SteeringGraph(Graph([Transform("ln_final.hook_normalized", torch.eye(width))]))
    assert art.to_graph(scale=-2.5, model=model).nodes[0].strength == -2.5
    assert art.to_graph().nodes[0].strength == 1.0
    wrong = SteeringGraph(Graph([Transform("ln_final.hook_normalized", torch.eye(width + 1))]))
    with pytest.raises(GraphError, match="must be"):
        wrong.to_graph(scale=2.0, model=model)


def test_prompt_intervention_composes_with_a_graph(tiny_models, tmp_path):
    model = tiny_models("llama")
    graph = _vector(model, [1]).to_graph()
    steering = Steering(graph) + steering_for(PromptIntervention("Be kind."))
    out = steering.generate(model, ["hi", "yo"], max_new_tokens=4)
    assert out == model.generate(["Be kind. hi", "Be kind. yo"], max_new_tokens=4, graph=graph)
    system = Steering(prompt=PromptIntervention("Be kind.", mode="system"))
    chat = system.generate(model, ["hi"], max_new_tokens=4, chat_template=True)
    assert chat == model.generate(
        ["hi"], max_new_tokens=4, chat_template=True, system_prompt="Be kind."
    )
    stacked = PromptIntervention("A.") + PromptIntervention("B.")
    assert stacked.prompt == "A. B."
    with pytest.raises(ValueError, match="prefix prompt and a system prompt"):
        PromptIntervention("A.") + PromptIntervention("B.", mode="system")
    path = PromptIntervention("Be kind.", meta={"scores": {"a": 1.0}}).save(tmp_path / "p.yaml")
    assert PromptIntervention.load(path) == PromptIntervention(
        "Be kind.", meta={"scores": {"a": 1.0}}
    )
