"""Position, row and head selectors under left padding and cached generation, on every backend."""

from __future__ import annotations

import pytest
import torch

from interv.graph import Add, Graph, GraphError, positions
from tests.conftest import BACKENDS
from tests.graph.conftest import PROMPTS, trace, vector

HOOK = "blocks.1.hook_resid_pre"
GEN = dict(generate=4, min_new_tokens=4)


def _graph(model, selector, **kw):
    return Graph([Add(HOOK, vector(model.cfg.d_model), positions=selector, **kw)])


def _padding(model) -> torch.Tensor:
    return (model.to_batch(PROMPTS).attention_mask == 0).sum(1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_generated_only_add_leaves_the_prompt_alone(tiny_models, backend):
    model = tiny_models("llama", backend)
    graph = _graph(model, positions.generated())
    with torch.no_grad():
        assert torch.equal(model.forward(PROMPTS, graph=graph), model.forward(PROMPTS))
    forwards = trace(model, HOOK, graph, **GEN)
    assert [f.step for f in forwards] == [0, 1, 2, 3]
    assert not forwards[0].changed.any()
    v = vector(model.cfg.d_model)
    for f in forwards[1:]:
        assert f.changed.all()
        torch.testing.assert_close(f.after - f.before, v.expand_as(f.before))
    steered = model.generate(PROMPTS, max_new_tokens=4, graph=graph)
    plain = model.generate(PROMPTS, max_new_tokens=4)
    assert [s[0] for s in steered] == [p[0] for p in plain]  # decided by the prompt's logits


@pytest.mark.parametrize("backend", BACKENDS)
def test_last_prompt_token_is_one_column_in_every_row(tiny_models, backend):
    model = tiny_models("llama", backend)
    forwards = trace(model, HOOK, _graph(model, positions.last_prompt_token()), **GEN)
    first = forwards[0].changed
    assert first[:, -1].all() and not first[:, :-1].any()
    assert not any(f.changed.any() for f in forwards[1:])


def test_prompt_only(tiny_models):
    model = tiny_models("gpt2")
    forwards = trace(model, HOOK, _graph(model, positions.prompt()), **GEN)
    assert forwards[0].changed.all()
    assert not any(f.changed.any() for f in forwards[1:])


def test_indices_count_each_rows_real_tokens(tiny_models):
    model = tiny_models("llama")
    pad = _padding(model)
    length = model.to_batch(PROMPTS).input_ids.shape[1]
    (f,) = trace(model, HOOK, _graph(model, positions.indices(0, -2)))
    for row in range(2):
        assert f.changed[row].nonzero().flatten().tolist() == [int(pad[row]), length - 2]
    (f,) = trace(model, HOOK, _graph(model, positions.indices(-5)))  # "abc" has 3 tokens
    assert f.changed[0].nonzero().flatten().tolist() == [length - 5]
    assert not f.changed[1].any()


def test_slices(tiny_models):
    model = tiny_models("qwen2")
    pad = _padding(model)
    (f,) = trace(model, HOOK, _graph(model, positions.slice(1, 3)))
    for row in range(2):
        assert f.changed[row].nonzero().flatten().tolist() == [int(pad[row]) + 1, int(pad[row]) + 2]
    forwards = trace(model, HOOK, _graph(model, positions.slice(-2, None)), **GEN)
    length = forwards[0].changed.shape[1]
    assert forwards[0].changed.nonzero()[:, 1].unique().tolist() == [length - 2, length - 1]
    assert all(f.changed.all() for f in forwards[1:])  # open end: every generated token
    forwards = trace(model, HOOK, _graph(model, positions.slice(None, 2)), **GEN)
    assert all(not f.changed.any() for f in forwards[1:])


def _occurrences(sequence: torch.Tensor, ids: list[int]) -> torch.Tensor:
    """Reference: positions covered by any occurrence of ``ids``, by plain Python loops."""
    covered = torch.zeros_like(sequence, dtype=torch.bool)
    for row in range(sequence.shape[0]):
        tokens = sequence[row].tolist()
        for j in range(len(tokens) - len(ids) + 1):
            if tokens[j : j + len(ids)] == ids:
                covered[row, j : j + len(ids)] = True
    return covered


@pytest.mark.parametrize("text", ["l", "lo", "o w"])
def test_tokens_in_the_prompt(tiny_models, text):
    model = tiny_models("llama")
    (f,) = trace(model, HOOK, _graph(model, positions.tokens(text)))
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    expected = _occurrences(f.sequence, ids)
    assert expected.any()
    assert torch.equal(f.changed, expected)


@pytest.mark.parametrize("backend", ["hf", "nnsight"])
def test_tokens_in_generated_text(tiny_models, backend):
    model = tiny_models("llama", backend)
    ids = model.to_batch(PROMPTS).input_ids
    plain = model.hf_model.generate(
        input_ids=ids,
        attention_mask=model.to_batch(PROMPTS).attention_mask,
        max_new_tokens=4,
        do_sample=False,
    )
    token = int(plain[0, ids.shape[1] + 1])  # the second generated token of row 0
    graph = Graph(
        [Add(HOOK, vector(model.cfg.d_model, scale=1e-4), positions=positions.tokens([token]))]
    )
    forwards = trace(model, HOOK, graph, **GEN)
    found_generated = False
    for f in forwards:
        expected = _occurrences(f.sequence, [token])[:, f.past :]
        assert torch.equal(f.changed, expected), f"step {f.step}"
        found_generated |= f.step > 0 and bool(expected.any())
    assert found_generated


def test_rows(tiny_models):
    model = tiny_models("llama")
    (f,) = trace(model, HOOK, _graph(model, positions.all(), rows=[1]))
    assert f.changed[1].all() and not f.changed[0].any()
    with pytest.raises(GraphError, match="selects row 2, but the batch has 2 rows"):
        model.forward(PROMPTS, graph=_graph(model, positions.all(), rows=[2]))


def test_selectors_combine_with_rows_and_heads(tiny_models):
    model = tiny_models("llama")
    hook = "blocks.0.attn.hook_z"
    graph = Graph(
        [
            Add(
                hook,
                vector(model.cfg.d_head),
                heads=[2],
                rows=[0],
                positions=positions.last_prompt_token(),
            )
        ]
    )
    (f,) = trace(model, hook, graph)
    changed = (f.after - f.before).abs().amax(-1) > 0  # [batch, pos, n_heads]
    assert changed.nonzero().tolist() == [[0, changed.shape[1] - 1, 2]]
