"""The default model: one graph, the same numbers on every backend; folded equals hooked."""

from __future__ import annotations

import pytest
import torch

from interv.graph import Add, Clamp, Graph, ProjectOut, positions
from tests.conftest import BACKENDS
from tests.graph.conftest import assert_close, vector
from tests.interv.test_patch import weights_hash

pytestmark = pytest.mark.real_model

PROMPTS = ["The capital of France is", "My favourite food is"]


def _graph(model) -> Graph:
    d = model.cfg.d_model
    return Graph(
        [
            Add("blocks.10.hook_resid_post", vector(d, 1, 4.0), positions=positions.generated()),
            ProjectOut("blocks.12.hook_resid_post", vector(d, 2)),
            Clamp(
                "blocks.8.hook_resid_post",
                vector(d, 3),
                5.0,
                positions=positions.last_prompt_token(),
            ),
            Add("blocks.3.attn.hook_z", vector(model.cfg.d_head, 4), heads=[0, 8]),
        ],
        model=model,
    )


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "hf"])
def test_same_graph_same_numbers_on_every_backend(real_models, backend):
    reference, model = real_models("hf"), real_models(backend)
    graph = _graph(reference)
    mask = reference.to_batch(PROMPTS).attention_mask.bool()
    with torch.no_grad():
        expected = reference.forward(PROMPTS, graph=graph)
        got = model.forward(PROMPTS, graph=graph)
        baseline = reference.forward(PROMPTS)
    assert not torch.allclose(expected[mask], baseline[mask], atol=1e-2)
    assert_close(got[mask], expected[mask], backend)
    kw = dict(max_new_tokens=4, min_new_tokens=4)  # the generated-only node acts from step 1
    assert model.generate(PROMPTS, graph=graph, **kw) == reference.generate(
        PROMPTS, graph=graph, **kw
    )


def test_folded_equals_hooked_on_the_default_model(real_models):
    model = real_models("hf")
    d = model.cfg.d_model
    graph = Graph(
        [
            Add("blocks.10.hook_resid_post", vector(d, 5, 3.0)),
            Add("blocks.6.hook_attn_out", vector(d, 6, 2.0)),
            Add("blocks.20.hook_resid_pre", vector(d, 7, 2.0)),
        ],
        model=model,
    )
    mask = model.to_batch(PROMPTS).attention_mask.bool()
    original = weights_hash(model)
    kw = dict(max_new_tokens=4, min_new_tokens=4)
    with torch.no_grad():
        hooked = model.forward(PROMPTS, graph=graph)
    hooked_text = model.generate(PROMPTS, graph=graph, **kw)
    patch = graph.fold(model)
    assert patch.weights() == ["blocks.10.mlp.b_out", "blocks.6.attn.b_O", "blocks.19.mlp.b_out"]
    with patch.applied(model), torch.no_grad():
        folded = model.forward(PROMPTS)
        folded_text = model.generate(PROMPTS, **kw)
    assert_close(folded[mask], hooked[mask], "folded vs hooked")
    assert folded_text == hooked_text
    assert weights_hash(model) == original
