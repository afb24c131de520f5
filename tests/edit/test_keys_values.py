"""The shared key and value machinery: lookup tokens, keys, value optimisation, readout."""

from __future__ import annotations

import pytest
import torch

from interv.edit import EditRequest, RequestError, _rows
from interv.edit._keys import encode, gather, mean_keys, templated
from interv.edit._rows import Readout
from interv.edit._templates import subject_slots
from interv.edit._values import _problem, frozen, optimise_values, value_prompts
from interv.edit.rome import ROMEHParams
from interv.eval.tokens import answer_ids
from tests.edit.conftest import TINY


def test_lookup_token_follows_character_offsets(edit_tiny):
    model = edit_tiny
    text = "The cat sat on the"  # byte tokens: T h e _ c a t ...
    assert encode(model, text, (0, 7), "subject_last").lookup == 6
    assert encode(model, text, (4, 7), "subject_first").lookup == 4
    assert encode(model, text, (0, 7), "last").lookup == len(text) - 1
    with pytest.raises(ValueError, match="fact_token must be one of"):
        encode(model, text, (0, 7), "subject_middle")


def test_templates_shift_the_lookup_token(edit_tiny):
    model = edit_tiny
    request = EditRequest(prompt="The cat sat on the", subject="cat", target_new="mat")
    bare, prefixed = templated(model, request, ["{}", "Ab. {}"], "subject_last", "test")
    assert prefixed.lookup - bare.lookup == len("Ab. ")
    assert model.tokenizer.decode([prefixed.ids[prefixed.lookup]]) == "t"
    bad = EditRequest(prompt="The cat sat", subject="cat", target_new="mat")
    bad.subject = "dog"  # mutated after validation
    with pytest.raises(RequestError, match="does not occur"):
        templated(model, bad, ["{}"], "subject_last", "test")


def test_keys_are_the_w_out_inputs_averaged_over_templates(edit_tiny):
    model = edit_tiny
    request = EditRequest(prompt="The cat sat on the", subject="The cat", target_new="mat")
    templates = ["{}", "Ab. {}", "Hello there. {}"]
    keys = mean_keys(model, [request, request], 1, templates, "subject_last", "test")
    single = [
        gather(model, [e], ["blocks.1.mlp.hook_post"], None)["blocks.1.mlp.hook_post"][0]
        for e in templated(model, request, templates, "subject_last", "test")
    ]
    torch.testing.assert_close(keys[0], torch.stack(single).mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(keys[0], keys[1])


def test_value_optimisation_reaches_the_target_and_respects_the_norm_budget(edit_tiny):
    model = edit_tiny
    requests = [
        EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome"),
        EditRequest(prompt="The cat sat on the", subject="The cat", target_new="mat"),
    ]
    hp = ROMEHParams(**{**TINY, "v_chunk_size": 1})
    flags = [p.requires_grad for p in model.hf_model.parameters()]
    result = optimise_values(model, requests, "blocks.1.hook_mlp_out", ["{}", "Ab. {}"], hp, "test")
    assert [p.requires_grad for p in model.hf_model.parameters()] == flags
    assert (
        all(p >= hp.v_stop_prob for p in result.probs) and max(result.steps) < hp.v_num_grad_steps
    )
    # the budget is relative to the activation's mean norm over the templates
    encoded = [e for r in requests for e in templated(model, r, ["{}", "Ab. {}"], "last", "test")]
    acts = gather(model, encoded, ["blocks.1.hook_mlp_out"], 1)["blocks.1.hook_mlp_out"]
    scale = acts.norm(dim=1).view(2, 2).mean(1)
    assert (result.delta.norm(dim=1) <= hp.clamp_norm_factor * scale + 1e-3).all()
    # the optimised activation, added back in, makes the target the prediction
    target = answer_ids(model, "Rome")[0]
    enc = templated(model, requests[0], ["{}"], "last", "test")[0]

    def add(act, ctx):
        act = act.clone()
        act[0, enc.lookup] += result.delta[0]
        return act

    logits = model.forward(torch.tensor([enc.ids]), hooks={"blocks.1.hook_mlp_out": add})
    assert int(logits[0, -1].argmax()) == target


def test_rank_one_writes_scale_delta_by_the_rows_key(edit_tiny):
    """With ``writes`` delta enters as ``(k·u) delta``: u = 0 leaves it no effect, and u with
    k·u = 1 at every row's lookup gives the same values as adding delta there directly."""
    model = edit_tiny
    request = EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome")
    hp = ROMEHParams(**{**TINY, "v_num_grad_steps": 4, "v_stop_prob": 1.0})
    templates, post = ["{}", "Ab. {}"], "blocks.1.mlp.hook_post"
    plain = optimise_values(model, [request], "blocks.1.hook_mlp_out", templates, hp, "t")
    none = optimise_values(
        model,
        [request],
        "blocks.1.hook_mlp_out",
        templates,
        hp,
        "t",
        writes=(post, [torch.zeros(model.cfg.d_mlp)]),
    )
    assert none.probs[0] < 0.5 * plain.probs[0]
    keys = gather(model, templated(model, request, templates, "last", "t"), [post], 1)[post]
    u = torch.linalg.lstsq(keys, torch.ones(len(keys), 1)).solution[:, 0]  # k·u = 1 on both rows
    ones = optimise_values(
        model, [request], "blocks.1.hook_mlp_out", templates, hp, "t", writes=(post, [u])
    )
    torch.testing.assert_close(ones.delta, plain.delta, atol=1e-3, rtol=1e-3)


def test_rows_a_rank_one_write_cannot_reach_do_not_hold_up_stopping(edit_tiny):
    """u with k·u = 0 at the bare prompt and 1 in the template: the bare row cannot change, so
    the request stops once the template row is written instead of running every step."""
    model = edit_tiny
    request = EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome")
    templates, post, site = ["{}", "Ab. {}"], "blocks.1.mlp.hook_post", "blocks.1.hook_mlp_out"
    keys = gather(model, templated(model, request, templates, "last", "t"), [post], 1)[post]
    u = torch.linalg.lstsq(keys, torch.tensor([[0.0], [1.0]])).solution[:, 0]
    hp = ROMEHParams(**{**TINY, "v_num_grad_steps": 20, "v_stop_prob": 0.5})
    result = optimise_values(model, [request], site, templates, hp, "t", writes=(post, [u]))
    assert result.steps[0] < hp.v_num_grad_steps and result.probs[0] >= 0.5
    target = answer_ids(model, "Rome")
    bare = templated(model, request, ["{}"], "last", "t")[0]

    def add(act, ctx):  # what the edit does at the bare prompt's lookup: (k·u) delta = 0
        act = act.clone()
        act[0, bare.lookup] += float(keys[0] @ u) * result.delta[0]
        return act

    with torch.no_grad():
        logits = model.forward(torch.tensor([bare.ids]), hooks={site: add})
    assert float(logits[0, -1].softmax(-1)[target[0]]) < 0.5  # still unwritten


def test_reusing_prefix_keys_values_optimises_the_same_values(edit_tiny, monkeypatch):
    """Each step runs only the tokens from the lookup on; the result equals whole-row steps."""
    requests = [
        EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome"),
        EditRequest(prompt="So the cat sat on the", subject="the cat", target_new="mat"),
    ]
    hp = ROMEHParams(**{**TINY, "v_stop_prob": 1.0, "v_num_grad_steps": 4})  # exactly 4 steps
    results, real = {}, _rows._layout
    for split in (True, False):
        monkeypatch.setitem(_rows._CHECKED, edit_tiny, split)
        seen = []
        monkeypatch.setattr(_rows, "_layout", lambda *a, seen=seen: seen.append(a[2]) or real(*a))
        results[split] = optimise_values(
            edit_tiny, requests, "blocks.1.hook_mlp_out", ["{}", "Ab. {}"], hp, "t"
        )
        assert seen == [split]  # one layout for all steps (no request finished early)
    _assert_same_values(results[True].delta, results[False].delta)
    assert results[True].probs == pytest.approx(results[False].probs, abs=1e-4)


def _assert_same_values(got, expected):
    """Equal up to float rounding, relative to each value's size: Adam's steps (lr 20) carry
    the rounding of a packed forward to ~1e-6 of the value's norm, a coordinate near zero
    included."""
    for a, b in zip(got, expected, strict=True):
        assert float((a - b).norm()) <= 1e-5 * float(b.norm())


def test_finished_requests_leave_the_others_on_the_same_prefix(edit_tiny, monkeypatch):
    """A request that reaches its target early drops out; the others continue the prefix rows
    already computed (no second prefill) and end where whole-row steps end."""
    requests = [
        EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome"),
        EditRequest(prompt="So the cat sat on the", subject="the cat", target_new="mat"),
        EditRequest(prompt="A red fox ran", subject="A red fox", target_new=" far away"),
    ]
    site, templates = "blocks.1.hook_mlp_out", ["{}", "Ab. {}"]
    first = optimise_values(
        edit_tiny, requests, site, templates, ROMEHParams(**{**TINY, "v_num_grad_steps": 1}), "t"
    ).probs
    low, high = sorted(first)[1:]
    hp = ROMEHParams(**{**TINY, "v_stop_prob": (low + high) / 2, "v_num_grad_steps": 5})
    results, real = {}, edit_tiny.prefill
    for split in (True, False):
        monkeypatch.setitem(_rows._CHECKED, edit_tiny, split)
        prefills = []
        monkeypatch.setattr(
            edit_tiny,
            "prefill",
            lambda *a, prefills=prefills, **k: prefills.append(1) or real(*a, **k),
        )
        results[split] = optimise_values(edit_tiny, requests, site, templates, hp, "t")
        assert len(prefills) == split  # one prefill, whatever finishes when
    assert min(results[True].steps) == 1 < max(results[True].steps)  # one finished at once
    assert results[True].steps == results[False].steps
    _assert_same_values(results[True].delta, results[False].delta)


def test_chunks_are_formed_by_row_length_and_values_return_in_request_order(edit_tiny):
    """The request with the longer rows comes first but is chunked second; each value still
    belongs to its own request (equal to optimising it alone)."""
    long = EditRequest(
        prompt="Hello world, this is a long way", subject="Hello world", target_new="Rome"
    )
    short = EditRequest(prompt="So the cat", subject="the cat", target_new="mat")
    hp = ROMEHParams(
        **{
            **TINY,
            "v_num_grad_steps": 3,
            "v_stop_prob": 1.0,
            "v_chunk_size": 1,
            "fact_token": "subject_last",
        }
    )
    site, templates = "blocks.1.hook_mlp_out", ["{}", "Ab. {}"]
    both = optimise_values(edit_tiny, [long, short], site, templates, hp, "t")
    alone = [
        optimise_values(edit_tiny, [r], site, templates, hp, "t").delta[0] for r in (long, short)
    ]
    torch.testing.assert_close(both.delta, torch.stack(alone), atol=1e-5, rtol=1e-4)


def test_value_optimisation_falls_back_without_prefill(tiny_models, monkeypatch):
    model = tiny_models("llama", "nnsight")
    monkeypatch.delitem(_rows._CHECKED, model, raising=False)
    request = EditRequest(prompt="Hello world, this is", subject="Hello world", target_new=" abc")
    hp = ROMEHParams(**{**TINY, "v_num_grad_steps": 2})
    optimise_values(model, [request], "blocks.1.hook_mlp_out", ["{}"], hp, "t")
    assert _rows._CHECKED[model] is False


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2"])
def test_readout_matches_the_models_logits(tiny_models, family):
    model = tiny_models(family)
    batch = model.to_batch(["Hello there", "Hi"])
    rows, cols = torch.tensor([0, 1, 1]), torch.tensor([3, 10, 9])
    full = model.forward(batch)[rows, cols]
    readout = Readout(model)
    first = readout(batch, {}, rows, cols)
    assert readout.mode == "unembed"
    torch.testing.assert_close(readout(batch, {}, rows, cols), full, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(first, full)


def test_frozen_restores_flags_after_errors(edit_tiny):
    params = list(edit_tiny.hf_model.parameters())
    params[0].requires_grad_(False)
    before = [p.requires_grad for p in params]
    with pytest.raises(RuntimeError):
        with frozen(edit_tiny):
            assert not any(p.requires_grad for p in params)
            raise RuntimeError("boom")
    assert [p.requires_grad for p in params] == before


def test_subject_prompts_take_the_edit_prompts_place_after_the_first_two_templates(edit_tiny):
    model = edit_tiny
    request = EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome")
    templates = ["{}", "Ab. {}", "Cd. {}", "Ef. {}", "Gh. {}"]
    assert subject_slots(5, 2) == [None, None, 0, 1, 0] and subject_slots(5, 0) == [None] * 5
    hp = ROMEHParams(subject_prompts=["{}:", "Q: {}? A:"])
    rows = value_prompts(model, request, templates, hp, "t")
    texts = [model.tokenizer.decode(list(r.ids)) for r in rows]
    assert texts == [
        "Hello world, this is",
        "Ab. Hello world, this is",
        "Cd. Hello world:",
        "Ef. Q: Hello world? A:",
        "Gh. Hello world:",
    ]
    assert all(model.tokenizer.decode([r.ids[r.lookup]]) == "d" for r in rows)  # "world"'s last
    # ROME's own code and a prompt-last lookup use the edit prompt in every template
    for off in ({"original_implementation": True}, {"fact_token": "last"}):
        hp_off = ROMEHParams(**{"subject_prompts": ["{}:"], **off})
        assert [r.ids for r in value_prompts(model, request, templates, hp_off, "t")] == [
            r.ids for r in templated(model, request, templates, hp_off.fact_token, "t")
        ]


@pytest.mark.parametrize("bad", ["no subject here", "{} and {}", "{}", " {} "])
def test_a_subject_prompt_without_one_subject_and_words_is_one_error(bad):
    with pytest.raises(ValueError, match="subject_prompts must be texts with one '{}'"):
        ROMEHParams(subject_prompts=["{}:", bad])


def test_subject_prompt_rows_are_optimised_and_the_mean_activation_stays_the_prompts(edit_tiny):
    """Each subject prompt row continues with the target in the value's loss; R-ROME's mean
    activation is over the edit prompt's rows only. (A random tiny model does not carry the
    subject's token to the answer: tests/real shows the effect on the default model.)"""
    model = edit_tiny
    request = EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome")
    templates, site = ["{}", "Ab. {}", "Cd. {}"], "blocks.1.hook_mlp_out"
    hp = ROMEHParams(
        **{**TINY, "fact_token": "subject_last", "subject_prompts": ["{}:"], "v_num_grad_steps": 2}
    )
    problem = _problem(model, request, templates, hp, "t")
    target = answer_ids(model, "Rome")
    subject_row = model.tokenizer("Cd. Hello world:")["input_ids"]
    assert problem.rows[2] == tuple(subject_row) + tuple(target[:-1])
    assert problem.target == target and len(problem.rows) == 4  # three value rows, the KL row
    result = optimise_values(model, [request], site, templates, hp, "t")
    prompt_rows = templated(model, request, templates[:2], "subject_last", "t")
    acts = gather(model, prompt_rows, [site], 1)[site]
    torch.testing.assert_close(result.init[0], acts[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.mean[0], acts.mean(0), atol=1e-5, rtol=1e-5)
