"""HookedModel behaviour: caching, hook lifetimes, positions during generation, batching."""

from __future__ import annotations

import pytest
import torch

from interv.adapters.backends import Batch
from tests.conftest import BACKENDS
from tests.tiny import FAMILIES

PROMPTS = ["Hello world", "abc"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_stop_at_layer_skips_later_layers(tiny_models, backend):
    model = tiny_models("llama", backend)
    logits, cache = model.run_with_cache(PROMPTS, stop_at_layer=0)
    assert logits is None
    assert "blocks.0.hook_resid_post" in cache
    assert not any(name.startswith("blocks.1.") for name in cache)
    _, full = model.run_with_cache(PROMPTS, ["blocks.0.hook_resid_post"])
    torch.testing.assert_close(cache["blocks.0.hook_resid_post"], full["blocks.0.hook_resid_post"])
    with pytest.raises(ValueError, match="stop_at_layer=5 is out of range"):
        model.run_with_cache(PROMPTS, stop_at_layer=5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hooks_removed_after_an_exception(tiny_models, backend):
    model = tiny_models("llama", backend)
    with torch.no_grad():
        baseline = model.forward(PROMPTS)

    def boom(act, ctx):
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError, match="hook failed"):
        model.forward(PROMPTS, hooks={"blocks.0.hook_mlp_out": boom})
    with pytest.raises(RuntimeError, match="hook failed"):
        with model.hooks({"blocks.1.hook_resid_post": boom}):
            model.generate(PROMPTS, max_new_tokens=2)
    with torch.no_grad():
        torch.testing.assert_close(model.forward(PROMPTS), baseline)
    if backend == "hf":
        for module in model.hf_model.modules():
            assert not module._forward_hooks
            assert len(module._forward_pre_hooks) <= 1  # only the run tracker on the root


@pytest.mark.parametrize("backend", BACKENDS)
def test_context_hooks_apply_to_forward_and_generate(tiny_models, backend):
    model = tiny_models("gpt2", backend)
    zero = {"blocks.1.hook_resid_post": lambda act, ctx: torch.zeros_like(act)}
    with torch.no_grad():
        expected = model.forward(PROMPTS, hooks=zero)
        with model.hooks(zero):
            got = model.forward(PROMPTS)
            steered = model.generate(PROMPTS, max_new_tokens=3)
        assert steered == model.generate(PROMPTS, max_new_tokens=3, hooks=zero)
        torch.testing.assert_close(got, expected)
        assert not torch.allclose(model.forward(PROMPTS), expected)


def test_hook_returning_wrong_shape_is_an_error(tiny_models):
    model = tiny_models("llama")
    with pytest.raises(ValueError, match="blocks.0.hook_resid_pre.*must return None or a tensor"):
        model.forward(PROMPTS, hooks={"blocks.0.hook_resid_pre": lambda a, c: a[:, :1]})


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_state_tracks_positions_during_generation(tiny_models, backend):
    model = tiny_models("llama", backend)
    seen = []

    def record(act, ctx):
        run = ctx.run
        seen.append((run.step, run.prompt_length, run.token_index.tolist(), act.shape[1]))

    model.generate(
        PROMPTS, max_new_tokens=3, hooks={"blocks.0.hook_resid_pre": record}, min_new_tokens=3
    )
    prompt_len = model.to_batch(PROMPTS).input_ids.shape[1]
    assert seen[0] == (0, prompt_len, list(range(prompt_len)), prompt_len)
    assert seen[1] == (1, prompt_len, [prompt_len], 1)
    assert seen[2] == (2, prompt_len, [prompt_len + 1], 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_state_tracks_one_unpadded_prompt(tiny_models, backend):
    """transformers passes no attention mask for one unpadded prompt: the cache gives the past."""
    model = tiny_models("llama", backend)
    seen = []
    hooks = {
        "blocks.0.hook_resid_pre": lambda act, ctx: seen.append(
            (ctx.run.past_length, ctx.run.prompt_length)
        )
    }
    model.generate(PROMPTS[0], max_new_tokens=3, min_new_tokens=3, hooks=hooks)
    n = model.to_batch(PROMPTS[0]).input_ids.shape[1]
    assert seen == [(0, n), (n, n), (n + 1, n)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_state_keeps_python_positions_and_ids(tiny_models, backend):
    model = tiny_models("llama", backend)
    seen = []

    def record(act, ctx):
        run = ctx.run
        seen.append(
            (
                run.past_length,
                run.cur_length,
                run.forward_id,
                run.input_ids.clone(),
                run.sequence_ids().clone(),
            )
        )

    prompt = model.to_batch(PROMPTS).input_ids
    hooks = {"blocks.0.hook_resid_pre": record}
    model.generate(PROMPTS, max_new_tokens=3, min_new_tokens=3, hooks=hooks)
    n = prompt.shape[1]
    assert [(past, cur) for past, cur, *_ in seen] == [(0, n), (n, 1), (n + 1, 1)]
    assert [fid - seen[0][2] for _, _, fid, *_ in seen] == [0, 1, 2]
    assert torch.equal(seen[0][3], prompt) and torch.equal(seen[0][4], prompt)
    assert [s[4].shape[1] for s in seen] == [n, n + 1, n + 2]
    assert torch.equal(seen[2][4], torch.cat([prompt, seen[1][3], seen[2][3]], dim=1))


@pytest.mark.parametrize("family", ["llama", "gpt2", "gpt_neox_sequential", "gemma2"])
def test_resid_mid_writes_reach_both_branches(tiny_models, family):
    """resid_mid = resid_pre + attn_out, so adding v to either gives the same logits."""
    model = tiny_models(family)
    v = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    add = lambda act, ctx: act + v  # noqa: E731
    with torch.no_grad():
        via_mid = model.forward(PROMPTS, hooks={"blocks.0.hook_resid_mid": add})
        via_attn = model.forward(PROMPTS, hooks={"blocks.0.hook_attn_out": add})
        via_post = model.forward(PROMPTS, hooks={"blocks.0.hook_resid_post": add})
        via_next_pre = model.forward(PROMPTS, hooks={"blocks.1.hook_resid_pre": add})
    torch.testing.assert_close(via_mid, via_attn, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(via_post, via_next_pre, atol=1e-4, rtol=1e-4)


def test_batched_generation_equals_one_by_one(tiny_models):
    model = tiny_models("llama")
    batched = model.generate(PROMPTS, max_new_tokens=5)
    assert batched == [model.generate(p, max_new_tokens=5)[0] for p in PROMPTS]


def test_chat_template_and_system_prompt(tiny_models):
    model = tiny_models("llama")
    templated = model.generate(
        "Hi", chat_template=True, system_prompt="Be brief.", max_new_tokens=3
    )
    manual = model.generate(
        "<|system|>Be brief.<eos><|user|>Hi<eos><|assistant|>", max_new_tokens=3
    )
    assert templated == manual


def test_generation_errors(tiny_models):
    model = tiny_models("llama")
    with pytest.raises(ValueError, match="Unknown generation parameter.*repetiton_penalty"):
        model.generate("Hi", repetiton_penalty=1.2)
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 1"):
        model.generate("Hi", max_new_tokens=0)
    model.tokenizer.chat_template, saved = None, model.tokenizer.chat_template
    try:
        with pytest.raises(ValueError, match="has no chat template"):
            model.generate("Hi", chat_template=True)
    finally:
        model.tokenizer.chat_template = saved


def test_sampling_is_reproducible_with_a_seed(tiny_models):
    model = tiny_models("llama")
    first = model.generate(PROMPTS, do_sample=True, temperature=1.5, seed=3, max_new_tokens=8)
    again = model.generate(PROMPTS, do_sample=True, temperature=1.5, seed=3, max_new_tokens=8)
    assert first == again


def test_inputs_as_ids_and_encoding(tiny_models):
    model = tiny_models("llama")
    batch = model.to_batch(PROMPTS)
    with torch.no_grad():
        from_text = model.forward(PROMPTS)
        from_encoding = model.forward(
            {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        )
        from_ids = model.forward(batch.input_ids[0])  # the longest prompt has no padding
    torch.testing.assert_close(from_text, from_encoding)
    torch.testing.assert_close(from_ids[0], from_text[0])


def _prefix_rows(model):
    vocab = model.cfg.d_vocab
    g = torch.Generator().manual_seed(0)
    rows = [torch.randint(3, vocab, (n,), generator=g).tolist() for n in (9, 6, 11)]
    return rows, [4, 0, 7]  # split points; the second row has an empty prefix


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("backend", ["hf", "transformer_lens"])
def test_prefill_then_continuation_equals_whole_rows(tiny_models, family, backend):
    from interv.adapters.text import left_pad_ids, right_pad_ids

    model = tiny_models(family, backend)
    rows, splits = _prefix_rows(model)
    whole = left_pad_ids(rows, 0, model.device)
    with torch.no_grad():
        expected = model.forward(whole)
        try:
            prefixes = [r[:s] for r, s in zip(rows, splits, strict=True)]
            past = model.prefill(left_pad_ids(prefixes, 0, model.device))
        except NotImplementedError:
            pytest.skip(f"{family} has a sliding-window cache, which prefill does not support")
        cont = right_pad_ids([r[s:] for r, s in zip(rows, splits, strict=True)], 0, model.device)
        seen = {}

        def record(act, ctx):
            seen["index"] = ctx.run.token_index.tolist()

        got = model.forward(cont, past=past, hooks={"blocks.0.hook_resid_pre": record})
        again = model.forward(cont, past=past)  # the prefix is not consumed
    width = whole.input_ids.shape[1]
    scale = float(expected.abs().max())
    for i, (row, split) in enumerate(zip(rows, splits, strict=True)):
        ref = expected[i, width - len(row) + split :]
        assert torch.allclose(got[i, : len(row) - split], ref, atol=1e-4 * scale)
        assert torch.equal(got, again)
    assert seen["index"][0] == past.attention_mask.shape[1]  # positions continue after the prefix


@pytest.mark.parametrize("backend", ["hf", "transformer_lens"])
def test_prefill_stopped_early_serves_shallow_reads(tiny_models, backend):
    from interv.adapters.text import left_pad_ids, right_pad_ids

    model = tiny_models("llama", backend)
    rows, splits = _prefix_rows(model)
    hook = "blocks.0.hook_resid_post"
    with torch.no_grad():
        _, whole = model.run_with_cache(left_pad_ids(rows, 0, model.device), [hook])
        past = model.prefill(
            left_pad_ids([r[:s] for r, s in zip(rows, splits, strict=True)], 0, model.device),
            stop_at_layer=0,
        )
        cont = right_pad_ids([r[s:] for r, s in zip(rows, splits, strict=True)], 0, model.device)
        _, got = model.run_with_cache(cont, [hook], past=past, stop_at_layer=0)
    assert past.depth == 1 < model.cfg.n_layers
    width = whole[hook].shape[1]
    for i, (row, split) in enumerate(zip(rows, splits, strict=True)):
        expected = whole[hook][i, width - len(row) + split :]
        torch.testing.assert_close(got[hook][i, : len(row) - split], expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="prefilled up to block 0 only"):
        model.forward(cont, past=past)  # the later blocks have no keys and values


@pytest.mark.parametrize("backend", ["hf", "transformer_lens"])
def test_prefix_select_continues_a_subset_of_rows(tiny_models, backend):
    """Selected rows continue exactly as if only they had been prefilled; padding columns no
    kept row uses are dropped (row 2 has the longest prefix, so keeping 1 and 0 trims)."""
    from interv.adapters.text import left_pad_ids, right_pad_ids

    model = tiny_models("llama", backend)
    rows, splits = _prefix_rows(model)
    prefixes = [r[:s] for r, s in zip(rows, splits, strict=True)]
    tails = [r[s:] for r, s in zip(rows, splits, strict=True)]
    keep = [1, 0]
    with torch.no_grad():
        past = model.prefill(left_pad_ids(prefixes, 0, model.device))
        chosen = past.select(torch.tensor(keep))
        alone = model.prefill(left_pad_ids([prefixes[i] for i in keep], 0, model.device))
        cont = right_pad_ids([tails[i] for i in keep], 0, model.device)
        got, expected = model.forward(cont, past=chosen), model.forward(cont, past=alone)
    assert (
        chosen.attention_mask.shape[1]
        == max(splits[i] for i in keep)
        < past.attention_mask.shape[1]
    )
    torch.testing.assert_close(chosen.lengths, alone.lengths)
    for i, k in enumerate(keep):
        n = len(tails[k])
        torch.testing.assert_close(got[i, :n], expected[i, :n], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("backend", ["hf", "transformer_lens"])
@pytest.mark.parametrize("sizes", [None, [2, 1]])  # all rows in one sequence, or in two
def test_packed_rows_equal_whole_rows(tiny_models, family, backend, sizes):
    """Rows packed into sequences (``Batch.segments``) see only themselves: whole, or after a
    packed prefill of their beginnings, each row's logits equal its own left-padded row's."""
    from interv.adapters.text import left_pad_ids, packed_ids

    model = tiny_models(family, backend)
    rows, splits = _prefix_rows(model)
    with torch.no_grad():
        expected = model.forward(left_pad_ids(rows, 0, model.device))
        packed, starts = packed_ids(rows, model.device, sizes)
        got_whole = model.forward(packed)
    lengths = [len(rows[0]) + len(rows[1]), len(rows[2])] if sizes else [sum(map(len, rows))]
    assert got_whole.shape[:2] == (len(lengths), max(lengths))  # padding only to the longest
    width, scale = expected.shape[1], float(expected.abs().max())
    refs = [expected[i, width - len(row) :] for i, row in enumerate(rows)]
    for row, ref, (b, col) in zip(rows, refs, starts, strict=True):
        assert torch.allclose(got_whole[b, col : col + len(row)], ref, atol=1e-4 * scale)
    with torch.no_grad():
        heads = packed_ids([r[:s] for r, s in zip(rows, splits, strict=True)], model.device, sizes)[
            0
        ]
        try:
            past = model.prefill(heads)
        except NotImplementedError:  # after the whole packed rows above were checked
            pytest.skip(f"{family} has a sliding-window cache, which prefill does not support")
        cont, cont_starts = packed_ids(
            [r[s:] for r, s in zip(rows, splits, strict=True)], model.device, sizes
        )
        cont.past = past
        got_tail = model.forward(cont)
    for row, split, ref, (b, col) in zip(rows, splits, refs, cont_starts, strict=True):
        tail = got_tail[b, col : col + len(row) - split]
        assert torch.allclose(tail, ref[split:], atol=1e-4 * scale)


def test_packed_prefix_select_keeps_rows(tiny_models):
    """Selected rows of a packed prefix (here one sequence per row, the middle one empty)
    continue as if only they had been prefilled, in the order asked for; the columns only
    dropped rows used go; a packed prefix needs a packed continuation."""
    from interv.adapters.text import packed_ids, right_pad_ids

    model = tiny_models("llama")
    rows, splits = _prefix_rows(model)
    heads = [r[:s] for r, s in zip(rows, splits, strict=True)]
    tails = [r[s:] for r, s in zip(rows, splits, strict=True)]
    keep = [1, 0]
    with torch.no_grad():
        past = model.prefill(packed_ids(heads, model.device, [1, 1, 1])[0])
        chosen = past.select(torch.tensor(keep))
        alone = model.prefill(packed_ids([heads[i] for i in keep], model.device, [1, 1])[0])
        cont = packed_ids([tails[i] for i in keep], model.device, [1, 1])[0]
        got = model.forward(Batch(cont.input_ids, cont.attention_mask, chosen, cont.segments))
        expected = model.forward(Batch(cont.input_ids, cont.attention_mask, alone, cont.segments))
    assert chosen.attention_mask.shape[1] == splits[0] < past.attention_mask.shape[1]
    torch.testing.assert_close(chosen.segments, alone.segments)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="continued by a packed batch"):
        model.forward(right_pad_ids([[9]] * 3, 0, model.device), past=past)
    padded = model.prefill(right_pad_ids(heads[:1], 0, model.device))
    with pytest.raises(ValueError, match="a padded one by a padded batch"):
        model.forward(packed_ids([[9]], model.device)[0], past=padded)
    with pytest.raises(ValueError, match="must be counts that add up to the 3 rows"):
        packed_ids(rows, model.device, [1, 1])


def test_prefill_errors(tiny_models):
    from interv.adapters.text import left_pad_ids, right_pad_ids

    model = tiny_models("llama")
    past = model.prefill(left_pad_ids([[5, 6], [7, 8]], 0, model.device))
    with pytest.raises(ValueError, match="past holds 2 prefixes but inputs have 1 rows"):
        model.forward(right_pad_ids([[9]], 0, model.device), past=past)
    with pytest.raises(NotImplementedError, match="nnsight"):
        tiny_models("llama", "nnsight").prefill(left_pad_ids([[5, 6]], 0, model.device))
