"""Input routing (``interv.adapters.routing``): a router on ``model.patches`` puts a context
before the rows it claims; callers see logits, activations and generations of their own
tokens, and a batch with no claimed row runs exactly as without routers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from interv.adapters.applied import Applied
from interv.adapters.backends import Batch
from interv.adapters.text import left_pad_ids, packed_ids
from interv.errors import HookError
from tests.conftest import BACKENDS

PROMPTS = ["the cat sat on", "a dog ran", "birds sang loudly and the"]
CONTEXT = "one two three four five six"


class WordRouter:
    """Claims the rows that contain ``word``; records the texts it was shown."""

    def __init__(self, word: str, context: str = CONTEXT):
        self.word, self.context, self.seen = word, context, []

    def route(self, model, texts):
        self.seen.append(list(texts))
        ids = model.tokenizer(self.context, add_special_tokens=False)["input_ids"]
        return [list(ids) if self.word in text else None for text in texts]


@contextmanager
def routed(model, router) -> Iterator[WordRouter]:
    model.patches.push(Applied(router, []))
    try:
        yield router
    finally:
        model.patches.take(router)


def with_context(model, prompt: str) -> torch.Tensor:
    """The ids of the context followed by the prompt's own ids: what a claimed row runs."""
    tok = model.tokenizer
    return torch.tensor(
        [tok(CONTEXT, add_special_tokens=False)["input_ids"] + tok(prompt)["input_ids"]]
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_claimed_rows_read_the_context_and_others_do_not(tiny_models, backend):
    model = tiny_models("llama", backend)
    with torch.no_grad():
        plain = model.forward(PROMPTS)
        expected = model.forward(with_context(model, PROMPTS[0]))[0, -1]
        with routed(model, WordRouter("cat")) as router:
            got = model.forward(PROMPTS)
            nobody = model.forward(PROMPTS[1:])
    assert router.seen[0] == PROMPTS  # the router reads each row's text, padding left out
    assert got.shape == plain.shape  # the context is sliced off again
    torch.testing.assert_close(got[0, -1], expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got[0, -1], plain[0, -1], atol=1e-3)
    for row in (1, 2):  # unclaimed rows only gained padding on the left
        torch.testing.assert_close(got[row, -1], plain[row, -1], atol=1e-5, rtol=1e-5)
    assert torch.equal(nobody, model.forward(PROMPTS[1:]))  # no claimed row: the same bytes


def test_a_batch_nobody_claims_runs_exactly_as_before(tiny_models):
    model = tiny_models("llama")
    plain = model.forward(PROMPTS)
    with routed(model, WordRouter("zebra")):
        assert torch.equal(model.forward(PROMPTS), plain)
    assert torch.equal(model.forward(PROMPTS), plain)


def test_cache_and_prefill_see_the_rows_own_columns(tiny_models):
    model = tiny_models("llama")
    name = "blocks.1.hook_resid_post"
    with torch.no_grad():
        _, plain = model.run_with_cache(PROMPTS, [name])
        _, alone = model.run_with_cache(with_context(model, PROMPTS[0]), [name])
        with routed(model, WordRouter("cat")):
            logits, cache = model.run_with_cache(PROMPTS, [name])
            prefix = model.prefill(PROMPTS)
            cont = left_pad_ids([[5]] * len(PROMPTS), None, model.device)
            continued = model.forward(Batch(cont.input_ids, cont.attention_mask), past=prefix)
        full = model.forward(torch.tensor([with_context(model, PROMPTS[0])[0].tolist() + [5]]))
    assert cache[name].shape == plain[name].shape and logits.shape[1] == plain[name].shape[1]
    torch.testing.assert_close(cache[name][0, -1], alone[name][0, -1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache[name][1, -1], plain[name][1, -1], atol=1e-5, rtol=1e-5)
    # the prefilled prefix was routed; its continuation follows the context
    torch.testing.assert_close(continued[0, -1], full[0, -1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("backend", ["hf", "transformer_lens"])
def test_generation_continues_the_routed_prompt(tiny_models, backend):
    model = tiny_models("llama", backend)
    with routed(model, WordRouter("cat")):
        got = model.generate(PROMPTS[:2], max_new_tokens=6)
    tok = model.tokenizer
    alone = model.generate([tok.decode(with_context(model, PROMPTS[0])[0])], max_new_tokens=6)
    assert got[0] == alone[0]
    assert got[1] == model.generate(PROMPTS[1:2], max_new_tokens=6)[0]


def test_packed_and_right_padded_batches_are_refused_when_claimed(tiny_models):
    model = tiny_models("llama")
    rows = [model.tokenizer(p)["input_ids"] for p in PROMPTS]
    packed, _ = packed_ids(rows, model.device)
    right = Batch(
        torch.tensor([rows[1] + [0] * (len(rows[2]) - len(rows[1])), rows[2]]),
        torch.tensor(
            [[1] * len(rows[1]) + [0] * (len(rows[2]) - len(rows[1])), [1] * len(rows[2])]
        ),
    )
    with routed(model, WordRouter("a")):
        with pytest.raises(HookError, match="packed batch"):
            model.forward(packed)
        with pytest.raises(HookError, match="padding on the right"):
            model.forward(right)
    with routed(model, WordRouter("zebra")):  # nothing claimed: nothing to refuse
        assert model.forward(packed).shape[1] == packed.input_ids.shape[1]


def test_routers_stack_oldest_first_and_revert_in_order(tiny_models):
    model = tiny_models("llama")
    first, second = WordRouter("cat", "one two"), WordRouter("cat", "three four")
    with routed(model, first), routed(model, second):
        got = model.forward(PROMPTS[:1])
        with pytest.raises(ValueError, match="later patches are on top"):
            model.patches.take(first)
    tok = model.tokenizer
    both = tok("one two", add_special_tokens=False)["input_ids"]
    both += tok("three four", add_special_tokens=False)["input_ids"]
    expected = model.forward(torch.tensor([both + tok(PROMPTS[0])["input_ids"]]))
    torch.testing.assert_close(got[0, -1], expected[0, -1], atol=1e-5, rtol=1e-5)
    assert not model.patches
