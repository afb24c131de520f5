"""ROME: its key-consistency variants, sequential requests, and edits on the default model."""

from __future__ import annotations

import pytest
import torch

from interv.data.editing import counterfact_sample
from interv.edit import EditRequest
from interv.edit._keys import gather, templated
from interv.edit._values import kl_prompt, optimise_values
from interv.edit.rome import ROME, SUBJECT_PROMPTS, ROMEHParams
from interv.eval.tokens import teacher_forced_batch, token_accuracy
from tests.edit.conftest import TINY

REQUEST = EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="Rome")
OTHER = EditRequest(prompt="The cat sat on the", subject="The cat", target_new="mat")
OLD_KEYS = {"key_gains": False, "start_key": False}  # ROME's and R-ROME's residuals


@pytest.mark.parametrize(
    "variant",
    [
        {"original_implementation": True},
        {"enable_prompt_keys": True, "enable_random_prefix_keys": False},
        OLD_KEYS,  # R-ROME: prefix-averaged keys on both sides
        {},  # R-ROME's key, optimised with the edit's gains (start_key needs a subject lookup)
    ],
)
def test_variants_write_the_fact(edit_tiny, stats_cache, variant):
    model = edit_tiny
    hp = ROMEHParams(**{**TINY, "layers": [1], **variant})
    patch = ROME(hp, stats_cache=stats_cache).compute(model, [REQUEST])
    (weight_patch,) = patch.patches
    assert weight_patch.weight == "blocks.1.mlp.W_out" and weight_patch.rank == 1
    with patch.applied(model):
        assert token_accuracy(model, [REQUEST.prompt], ["Rome"]) == [1.0]


@pytest.mark.parametrize(("original", "keys"), [(False, OLD_KEYS), (True, OLD_KEYS), (True, {})])
def test_the_key_the_update_is_solved_for_gets_the_optimised_value(
    edit_tiny, stats_cache, original, keys
):
    """R-ROME's fix: the prefix-averaged key maps to v*; ROME's code maps the bare prompt's key
    (original_implementation is ROME's code whatever key_gains and start_key say)."""
    model = edit_tiny
    hp = ROMEHParams(**{**TINY, "layers": [1], "original_implementation": original, **keys})
    method = ROME(hp, stats_cache=stats_cache)
    patch = method.compute(model, [REQUEST])
    templates = method.templates(model)
    values = optimise_values(model, [REQUEST], "blocks.1.hook_mlp_out", templates, hp, "rome")
    target = values.init[0] + values.delta[0]
    encoded = templated(model, REQUEST, templates, "last", "rome")
    with patch.applied(model):
        out = gather(model, encoded, ["blocks.1.hook_mlp_out"], 1)["blocks.1.hook_mlp_out"]
    reached = out[0] if original else out.mean(0)
    torch.testing.assert_close(reached, target, atol=1e-3 * float(target.norm()), rtol=0)


def _target_probs(runner, problem) -> torch.Tensor:
    """Per template: the target's (geometric-mean) probability after the prompt."""
    logp = runner([problem], [torch.zeros(runner.model.cfg.d_model)]).detach()
    n_t, n_rw = len(problem.target), len(problem.prompt_lens)
    picked = logp[: n_rw * n_t].view(n_rw, n_t, -1)
    return picked[:, torch.arange(n_t), torch.tensor(problem.target)].mean(1).exp()


@pytest.mark.parametrize(
    ("start_key", "max_cost", "written"),
    [(False, 4.0, False), (True, 4.0, True), (True, 1.0, False)],
)  # 1.0: too costly, left out
def test_with_key_gains_each_row_gets_the_share_of_delta_it_was_optimised_with(
    edit_tiny, stats_cache, start_key, max_cost, written
):
    """The rank-one edit ``u deltaᵀ`` adds ``(k·u) delta`` at each row's lookup token, the share
    the optimiser gave that row; the averaged key, and with start_key the subject opening a text
    (the KL prompt's key), get the whole delta."""
    model = edit_tiny
    hp = ROMEHParams(
        **{
            **TINY,
            "layers": [1],
            "fact_token": "subject_last",
            "kl_factor": 0.1,
            "v_num_grad_steps": 6,
            "start_key": start_key,
            "start_key_max_cost": max_cost,
        }
    )
    method = ROME(hp, stats_cache=stats_cache)
    patch = method.compute(model, [REQUEST])
    (weight_patch,) = patch.patches
    delta = method.last_values.delta[0]
    torch.testing.assert_close(weight_patch.V[:, 0], delta, rtol=1e-3, atol=1e-4)  # r = delta
    templates = method.templates(model)
    rows = [
        *templated(model, REQUEST, templates, "subject_last", "rome"),
        kl_prompt(model, REQUEST, "subject_last", "rome"),
    ]
    sites = ["blocks.1.mlp.hook_post", "blocks.1.hook_mlp_out"]
    before = gather(model, rows, sites, 1)
    gains = before[sites[0]] @ weight_patch.U[:, 0]
    assert float(gains[:-1].mean()) == pytest.approx(1.0, abs=1e-3)  # the averaged key
    assert (float(gains[-1]) == pytest.approx(1.0, abs=1e-3)) == written
    with patch.applied(model):
        after = gather(model, rows, sites[1:], 1)[sites[1]]
    torch.testing.assert_close(
        after - before[sites[1]], gains[:, None] * delta[None], atol=1e-3, rtol=1e-3
    )


def test_several_requests_are_edited_one_after_another(edit_tiny, stats_cache):
    model = edit_tiny
    patch = ROME(ROMEHParams(**{**TINY, "layers": [1]}), stats_cache=stats_cache).compute(
        model, [REQUEST, OTHER]
    )
    assert len(patch.patches) == 2 and len(patch.requests) == 2
    with patch.applied(model):
        assert token_accuracy(model, [REQUEST.prompt, OTHER.prompt], ["Rome", "mat"]) == [1.0, 1.0]


def test_each_value_step_is_reported(edit_tiny, stats_cache):
    method = ROME(ROMEHParams(**{**TINY, "layers": [1]}), stats_cache=stats_cache)
    notes: list[str] = []
    method.on_step = notes.append
    method.compute_each(edit_tiny, [REQUEST, OTHER])
    assert notes and all(n.startswith("value step ") for n in notes)
    assert notes[0] == f"value step 1/{TINY['v_num_grad_steps']}, 2 of 2 requests optimising"


@pytest.mark.parametrize("variant", [{}, OLD_KEYS])  # with and without the edit's gains
def test_independent_edits_computed_together_equal_each_computed_alone(
    edit_tiny, stats_cache, variant
):
    """compute_each optimises the values of several requests in one forward per step; each
    patch is the one compute() makes for its request alone, on the unedited model."""
    model = edit_tiny
    third = EditRequest(prompt="A red fox ran", subject="A red fox", target_new=" far away")
    requests = [REQUEST, OTHER, third]
    hp = ROMEHParams(**{**TINY, "layers": [1], "v_chunk_size": 2, **variant})
    method = ROME(hp, stats_cache=stats_cache)
    together = method.compute_each(model, requests)
    assert method.independent_group == 2
    for request, patch in zip(requests, together, strict=True):
        (alone,) = method.compute(model, [request]).patches
        (got,) = patch.patches
        assert patch.requests == [request.to_dict()] and got.weight == alone.weight
        expected = alone.dense()
        assert float((got.dense() - expected).norm()) <= 1e-4 * float(expected.norm())


def test_hparams_validation():
    with pytest.raises(ValueError, match="ROME edits one layer"):
        ROMEHParams(layers=[3, 4])
    with pytest.raises(ValueError, match="exactly one of enable_prompt_keys"):
        ROMEHParams(enable_prompt_keys=True, enable_random_prefix_keys=True)
    with pytest.raises(ValueError, match="start_key_max_cost must be >= 1"):
        ROMEHParams(start_key_max_cost=0.5)
    with pytest.raises(ValueError, match="start_key: true needs key_gains"):
        ROMEHParams(key_gains=False)
    with pytest.raises(ValueError, match="layers must be a list of layer indices or 'auto'"):
        ROMEHParams(layers="all")
    assert ROMEHParams(layers="auto").layers == "auto"


@pytest.mark.real_model
def test_rome_edit_sticks_on_the_default_model(real_models, real_stats):
    model = real_models("hf")
    request = EditRequest(
        prompt="The Eiffel Tower is located in the city of",
        subject="Eiffel Tower",
        target_new="Rome",
    )
    paraphrase = "Where is the Eiffel Tower? It is in"
    assert token_accuracy(model, [request.prompt, paraphrase], ["Rome", "Rome"]) == [0.0, 0.0]
    method = ROME(ROMEHParams(mom2_n_samples=real_stats.n_tokens), stats_cache=real_stats.cache)
    patch = method.compute(model, [request])
    with patch.applied(model):
        assert token_accuracy(model, [request.prompt, paraphrase], ["Rome", "Rome"]) == [1.0, 1.0]
        assert token_accuracy(model, ["The capital of France is"], ["Paris"]) == [1.0]
    assert token_accuracy(model, [request.prompt], ["Paris"]) == [1.0]


@pytest.mark.real_model
def test_a_subject_that_opens_the_prompt_is_edited_on_the_default_model(real_models, real_stats):
    """CounterFact's "Andrew Huxley passed away at": the subject's key at the start of a text is
    not the in-context average (its share of R-ROME's edit is 0.4), so the edit reached the
    optimised probability in every template but not in the prompt itself; start_key writes both."""
    model = real_models("hf")
    request = EditRequest(
        prompt="Andrew Huxley passed away at", subject="Andrew Huxley", target_new="Wellington"
    )
    assert token_accuracy(model, [request.prompt], ["Wellington"]) == [0.0]
    method = ROME(ROMEHParams(mom2_n_samples=real_stats.n_tokens), stats_cache=real_stats.cache)
    patch = method.compute(model, [request])
    with patch.applied(model):
        assert token_accuracy(model, [request.prompt], ["Wellington"]) == [1.0]
        assert token_accuracy(model, ["The capital of France is"], ["Paris"]) == [1.0]


@torch.no_grad()
def _answer_probability(model, prompts, answers) -> list[float]:
    """Each answer's per-token geometric-mean probability after its prompt (teacher-forced)."""
    batch, targets, starts = teacher_forced_batch(model, prompts, answers)
    logp = model.forward(batch).log_softmax(-1)
    return [
        float(logp[row, begin - 1 + torch.arange(len(t)), torch.tensor(t)].mean().exp())
        for row, (t, begin) in enumerate(zip(targets, starts, strict=True))
    ]


@pytest.mark.real_model
def test_subject_prompts_carry_the_new_fact_to_the_rephrasings_on_the_default_model(
    real_models, real_stats
):
    """Six shipped CounterFact records: optimised with relation-free texts about the subject as
    well as the edit prompt, the value makes the new target likelier after the records'
    rephrasings (none of which is among the subject prompts), and the edits still hold."""
    model = real_models("hf")
    requests = counterfact_sample()[:6]
    rephrasings = [r.rephrase_prompts[0] for r in requests]
    targets = [r.target_new for r in requests]
    mean = {}
    for prompts in ([], list(SUBJECT_PROMPTS)):
        method = ROME(
            ROMEHParams(mom2_n_samples=real_stats.n_tokens, subject_prompts=prompts),
            stats_cache=real_stats.cache,
        )
        probs = []
        for request, rephrasing, target in zip(requests, rephrasings, targets, strict=True):
            with method.compute(model, [request]).applied(model):
                assert token_accuracy(model, [request.prompt], [target]) == [1.0]
                probs += _answer_probability(model, [rephrasing], [target])
        mean[bool(prompts)] = sum(probs) / len(probs)
    assert mean[True] > 1.5 * mean[False], mean
