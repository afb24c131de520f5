"""Composition: names, +, * (strength), enable/disable, merge, model records."""

from __future__ import annotations

import pytest
import torch

from interv.adapters import UnknownNameError
from interv.errors import ModelMismatchError
from interv.graph import Add, Clamp, Graph, GraphError, ModelRecord, ProjectOut, Scale, positions
from tests.graph.conftest import PROMPTS, vector

POST0, PRE1 = "blocks.0.hook_resid_post", "blocks.1.hook_resid_pre"


def _logits(model, graph):
    with torch.no_grad():
        return model.forward(PROMPTS, graph=graph)


def test_names_are_unique_and_order_is_kept():
    v = torch.ones(32)
    graph = Graph([Add(POST0, v), Add(PRE1, v), Scale(PRE1, 2.0, name="s")])
    assert graph.names() == ["add", "add_2", "s"]
    both = graph + Graph([Add(POST0, v, name="s")])
    assert both.names() == ["add", "add_2", "s", "s_2"]
    assert [n.hooks for n in both] == [(POST0,), (PRE1,), (PRE1,), (POST0,)]
    assert (graph + Add(POST0, v)).names()[-1] == "add_3"
    assert sum([graph, graph]).names() == ["add", "add_2", "s", "add_3", "add_4", "s_2"]


def test_given_names_are_kept_and_generated_names_go_around_them():
    v = torch.ones(32)
    graph = Graph(
        [Add(POST0, v), Add(PRE1, v, name="add"), Add(POST0, v, name="add_2"), Add(PRE1, v)]
    )
    assert graph.names() == ["add_3", "add", "add_2", "add_4"]
    with pytest.raises(GraphError, match="Two nodes are named 'push'"):
        Graph([Add(POST0, v, name="push"), Scale(PRE1, 2.0), Add(PRE1, v, name="push")])
    # Composition renames the second graph's clashing nodes (documented on Graph.__add__),
    # and the result holds every node once.
    both = Graph([Add(POST0, v, name="push")]) + Graph([Add(PRE1, v, name="push")])
    assert both.names() == ["push", "push_2"]
    assert Graph(both.nodes).names() == both.names()


def test_graphs_copy_their_nodes():
    node = Add(POST0, torch.ones(32))
    graph = Graph([node])
    graph.disable("add")
    assert node.enabled and not graph["add"].enabled
    with pytest.raises(UnknownNameError, match="Unknown node name 'ad'.*add"):
        graph.disable("ad")


def test_scaling_multiplies_strength(tiny_models):
    model = tiny_models("llama")
    v = vector(model.cfg.d_model)
    graph = Graph([Add(POST0, v, scale=2.0), ProjectOut(PRE1, v)])
    half = graph * 0.5
    assert [n.strength for n in half] == [0.5, 0.5] and [n.strength for n in graph] == [1.0, 1.0]
    assert [n.strength for n in 0.5 * graph] == [0.5, 0.5]
    assert [n.strength for n in -graph] == [-1.0, -1.0]
    assert [n.strength for n in graph / 4] == [0.25, 0.25]
    expected = Graph([Add(POST0, v, scale=1.0), ProjectOut(PRE1, v, strength=0.5)])
    torch.testing.assert_close(_logits(model, half), _logits(model, expected))
    torch.testing.assert_close(_logits(model, graph * 0), _logits(model, None))
    with pytest.raises(GraphError, match="finite number"):
        graph * float("nan")


def test_enable_disable_without(tiny_models):
    model = tiny_models("llama")
    v = vector(model.cfg.d_model)
    graph = Graph([Add(POST0, v, name="a"), Clamp(PRE1, v, 1.0, name="c")])
    only_a = Graph([Add(POST0, v)])
    graph.disable("c")
    torch.testing.assert_close(_logits(model, graph), _logits(model, only_a))
    graph.enable("c")
    assert not torch.allclose(_logits(model, graph), _logits(model, only_a))
    torch.testing.assert_close(_logits(model, graph.without("c")), _logits(model, only_a))
    assert graph.names() == ["a", "c"]


def test_merge_adds_at_the_same_hook(tiny_models):
    model = tiny_models("llama")
    a, b, c = (vector(model.cfg.d_model, seed=s) for s in range(3))
    graph = Graph([Add(POST0, a, scale=2.0), Add(PRE1, c), Add(POST0, b, strength=0.5)])
    merged = graph.merged()
    assert merged.names() == ["add+add_3", "add_2"]
    torch.testing.assert_close(merged["add+add_3"].vector, 2.0 * a + 0.5 * b)
    torch.testing.assert_close(_logits(model, merged), _logits(model, graph), atol=1e-5, rtol=1e-5)
    # A node that need not commute with addition keeps the Adds around it apart.
    blocked = Graph([Add(POST0, a), Scale(POST0, 3.0), Add(POST0, b)]).merged()
    assert blocked.names() == ["add", "scale", "add_2"]
    # Different selections never merge.
    apart = Graph([Add(POST0, a), Add(POST0, b, positions=positions.generated())]).merged()
    assert len(apart) == 2


def test_model_record_refuses_another_model(tiny_models):
    llama, qwen = tiny_models("llama"), tiny_models("qwen2")
    graph = Graph([Add(POST0, torch.ones(32))], model=llama)
    assert graph.model == ModelRecord.of(llama)
    llama.forward(PROMPTS, graph=graph)  # its own model is fine
    with pytest.raises(ModelMismatchError, match="was made for .*model_type 'llama' != 'qwen2'"):
        qwen.forward(PROMPTS, graph=graph)
    with pytest.raises(GraphError, match="different models"):
        graph + Graph(model=qwen)
    graph.model = None  # the documented escape hatch
    qwen.forward(PROMPTS, graph=graph)


def test_repr_is_short():
    graph = Graph([Add(POST0, torch.ones(576), scale=4.0, positions=positions.generated())])
    text = repr(graph)
    assert "Tensor[576]" in text and "generated" in text and len(text) < 200
