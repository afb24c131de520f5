"""Steering vectors from CAA, mean difference, RepE and merging, on tiny models."""

from __future__ import annotations

import pytest
import torch

from interv.data.steering import ABItem, ContrastPair
from interv.record import ModelRecord
from interv.steer.base import STEER_METHODS
from interv.steer.caa import CAAHParams
from interv.steer.merge import MergeHParams, merge_tensors
from interv.steer.repe import RepEHParams, first_component
from interv.steer.vector import SteeringVector

AB = [
    ABItem(f"Question {i}?\n(A) yes\n(B) no", "(A)" if i % 2 else "(B)", "(B)" if i % 2 else "(A)")
    for i in range(6)
]
PAIRS = [ContrastPair("good great fine", "bad awful poor", prompt=f"Item {i}:") for i in range(4)]


def test_registry_lists_the_methods():
    assert {"caa", "mean_diff", "repe", "merge"} <= set(STEER_METHODS.names())


def test_caa_ab_equals_manual_mean_difference(tiny_models):
    model = tiny_models("llama")
    vector = STEER_METHODS.get("caa")(CAAHParams(layers=[0, 1])).fit(model, AB)
    hook = "blocks.1.hook_resid_post"
    from interv.prompts import ab_prompt

    diffs = []
    for item in AB:
        acts = []
        for letter in (item.matching, item.not_matching):
            text = ab_prompt(model.tokenizer, item.question) + letter.strip("()")
            ids = torch.tensor([model.tokenizer(text, add_special_tokens=False)["input_ids"]])
            _, cache = model.run_with_cache(ids, [hook])
            acts.append(cache[hook][0, -1])
        diffs.append(acts[0] - acts[1])
    torch.testing.assert_close(
        vector.directions[hook], torch.stack(diffs).mean(0), atol=1e-4, rtol=1e-4
    )
    assert vector.model is not None and vector.model.fingerprint == model.fingerprint()


def test_balanced_answers_cancel_the_letter_difference(tiny_models):
    """One question asked four times, matching with A three times and with B once: there is
    no behaviour to find, only the letter. The plain mean keeps half the letter difference;
    the balanced mean (the default) is zero."""
    model = tiny_models("llama")
    same = "Same question?\n(A) yes\n(B) no"
    items = [ABItem(same, "(A)", "(B)")] * 3 + [ABItem(same, "(B)", "(A)")]
    hook = "blocks.1.hook_resid_post"
    caa = STEER_METHODS.get("caa")
    balanced = caa(CAAHParams(layers=[1])).fit(model, items).directions[hook]
    plain = caa(CAAHParams(layers=[1], balance_answers=False)).fit(model, items).directions[hook]
    letter = (
        caa(CAAHParams(layers=[1], balance_answers=False)).fit(model, items[:1]).directions[hook]
    )
    assert balanced.abs().max() < 1e-5 * letter.abs().max()
    torch.testing.assert_close(plain, 0.5 * letter, atol=1e-5 * float(letter.abs().max()), rtol=0)


def test_caa_read_at_answer_averages_each_choice_text_after_the_bare_question(tiny_models):
    """``read_at: answer``: per item, the mean activation over the matching choice's text minus
    the other's, both after the question without its choices; no letter to balance."""
    model = tiny_models("llama")
    tok = model.tokenizer
    items = [
        ABItem("Shall we?\n\nChoices:\n (A) Yes, gladly\n (B) No", "(A)", "(B)"),
        ABItem("Stop now?\n(A) Never ever\n(B) Sure", "(B)", "(A)"),
    ]
    hook = "blocks.1.hook_resid_post"
    vector = STEER_METHODS.get("caa")(CAAHParams(layers=[1], read_at="answer")).fit(model, items)
    diffs = []
    for item in items:
        stem, texts = item.options()
        text_a, text_b = texts["A"], texts["B"]
        prompt = tok(
            tok.apply_chat_template(
                [{"role": "user", "content": stem}], tokenize=False, add_generation_prompt=True
            ),
            add_special_tokens=False,
        )["input_ids"]
        means = {}
        for letter, text in (("A", text_a), ("B", text_b)):
            answer = tok(text, add_special_tokens=False)["input_ids"]
            _, cache = model.run_with_cache(torch.tensor([prompt + answer]), [hook])
            means[letter] = cache[hook][0, len(prompt) :].mean(0)
        diffs.append(means[item.matching_letter] - means[item.not_matching_letter])
    torch.testing.assert_close(
        vector.directions[hook], torch.stack(diffs).mean(0), atol=1e-4, rtol=1e-4
    )
    with pytest.raises(ValueError, match="`read_at` must be one of letter, answer"):
        CAAHParams(layers=[1], read_at="token")


def test_repe_on_ab_data_does_not_follow_the_answer_letter():
    """Differences = +-letter + behaviour, the letter ten times larger: PCA on the raw
    differences finds the letter axis; with the letter taken out it finds the behaviour."""
    from interv.steer.caa import balance_answer_letters

    g = torch.Generator().manual_seed(0)
    letter, behaviour = torch.zeros(8), torch.zeros(8)
    letter[0], behaviour[1] = 10.0, 1.0
    groups = torch.tensor([True, True, True, False, False, True, False, True])
    signs = torch.where(groups, 1.0, -1.0)[:, None]
    diffs = signs * letter + behaviour + 0.05 * torch.randn(8, 8, generator=g)
    raw, _ = first_component(diffs, center=False)
    clean, projection = first_component(balance_answer_letters(diffs, groups), center=False)
    assert abs(raw[0]) > 0.99 and abs(clean[1]) > 0.99 and clean[1] > 0
    assert projection == pytest.approx(1.0, abs=0.1)


def test_free_form_pairs_and_batch_invariance(tiny_models):
    model = tiny_models("gpt2")
    a = STEER_METHODS.get("caa")(CAAHParams(layers=[1], batch_size=1)).fit(model, PAIRS)
    b = STEER_METHODS.get("caa")(CAAHParams(layers=[1], batch_size=8)).fit(model, PAIRS)
    torch.testing.assert_close(
        a.directions["blocks.1.hook_resid_post"],
        b.directions["blocks.1.hook_resid_post"],
        atol=1e-4,
        rtol=1e-4,
    )


def test_empty_and_bad_inputs(tiny_models):
    model = tiny_models("llama")
    caa = STEER_METHODS.get("caa")
    with pytest.raises(ValueError, match="dataset is empty"):
        caa(CAAHParams(layers=[1])).fit(model, [])
    with pytest.raises(ValueError, match=r"layer\(s\) \[7\] out of range"):
        caa(CAAHParams(layers=[7])).fit(model, AB)
    with pytest.raises(ValueError, match="empty side"):
        caa(CAAHParams(layers=[1])).fit(model, [ContrastPair("good", "  ", prompt="x")])
    with pytest.raises(KeyError, match="Unknown steer method 'cca'"):
        STEER_METHODS.get("cca")


def test_repe_sign_follows_the_data():
    g = torch.Generator().manual_seed(0)
    true = torch.randn(16, generator=g)
    diffs = true * torch.rand(20, 1, generator=g) + 0.05 * torch.randn(20, 16, generator=g)
    direction, mean_proj = first_component(diffs, center=False)
    assert torch.cosine_similarity(direction, true, dim=0) > 0.99
    assert mean_proj > 0
    negated, _ = first_component(-diffs, center=False)
    torch.testing.assert_close(negated, -direction)


def test_repe_on_a_model(tiny_models):
    model = tiny_models("llama")
    vector = STEER_METHODS.get("repe")(RepEHParams(layers=[1])).fit(model, AB)
    assert vector.meta["sign_agreement"]["blocks.1.hook_resid_post"] >= 0.5


def test_vector_algebra_and_round_trip(tmp_path, tiny_models):
    model = tiny_models("llama")
    from interv.steer.mean_diff import MeanDiffHParams

    v = STEER_METHODS.get("mean_diff")(MeanDiffHParams(layers=[0])).fit(model)
    w = STEER_METHODS.get("caa")(CAAHParams(layers=[1])).fit(model, AB)
    combined = 2 * v - w
    assert set(combined.hooks) == set(v.hooks) | set(w.hooks)
    torch.testing.assert_close(combined.directions[v.hooks[0]], 2 * v.directions[v.hooks[0]])
    loaded = SteeringVector.load(combined.save(tmp_path / "v.safetensors"))
    for hook in combined.hooks:
        assert torch.equal(loaded.directions[hook], combined.directions[hook])
    assert loaded.model == combined.model and loaded.method == combined.method
    with pytest.raises(ValueError, match="NaN"):
        SteeringVector({"blocks.0.hook_resid_pre": torch.tensor([float("nan")])})


def test_to_graph_names_every_node_apart_and_rechecks_the_vector(tiny_models):
    model = tiny_models("llama")
    vector = SteeringVector(
        {h: torch.ones(32) for h in ("blocks.1.hook_attn_out", "blocks.1.hook_resid_post")},
        method="caa",
        model=ModelRecord.of(model),
    )
    graph = vector.to_graph(2.0)  # two hooks of one layer: caa_L1 alone would name both
    assert graph.names() == ["caa_L1_hook_attn_out", "caa_L1_hook_resid_post"]
    assert graph.model == vector.model
    vector.check(model)
    vector.directions["blocks.1.hook_attn_out"][0] = float("nan")  # changed after it was made
    with pytest.raises(ValueError, match="'blocks.1.hook_attn_out' contains NaN"):
        vector.check(model)
    with pytest.raises(ValueError, match="recommended_scale must be a finite number"):
        SteeringVector({"blocks.1.hook_resid_post": torch.ones(32)}, recommended_scale=float("inf"))


def test_control_is_a_random_push_of_the_same_size(tmp_path):
    torch.manual_seed(0)
    v = SteeringVector(
        {
            "blocks.0.hook_resid_post": 3 * torch.randn(64),
            "blocks.2.hook_resid_post": torch.randn(64),
        },
        method="caa",
        recommended_scale=4.0,
        model=ModelRecord(name="m", fingerprint="f"),
    )
    c = v.control(seed=1)
    assert c.hooks == v.hooks and c.recommended_scale == 4.0 and c.model == v.model
    assert c.method == "control(caa)"
    assert c.meta["control"] == {"of": "caa", "seed": 1, "orthogonal": True}
    for hook in v.hooks:
        a, b = v.directions[hook], c.directions[hook]
        assert float(b.norm()) == pytest.approx(float(a.norm()), rel=1e-5)
        assert abs(float(torch.nn.functional.cosine_similarity(a, b, dim=0))) < 1e-5
    # the hooks get different draws, the same seed the same vector, another seed another one
    first, second = (c.directions[h] / c.directions[h].norm() for h in c.hooks)
    assert abs(float(first @ second)) < 0.9
    assert all(torch.equal(c.directions[h], v.control(seed=1).directions[h]) for h in v.hooks)
    assert not torch.equal(c.directions[v.hooks[0]], v.control(seed=2).directions[v.hooks[0]])
    # without orthogonality: the seeded Gaussian draw itself, rescaled to the vector's norm
    raw = v.control(seed=1, orthogonal=False).directions[v.hooks[0]]
    draw = torch.randn(64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(raw, (draw * v.directions[v.hooks[0]].norm() / draw.norm()).float())
    loaded = SteeringVector.load(c.save(tmp_path / "c.safetensors"))
    assert loaded.meta["control"]["seed"] == 1


def test_merging_modes():
    a, b = torch.tensor([1.0, -2.0, 3.0, 0.1]), torch.tensor([1.0, 2.0, -1.0, 0.2])
    linear = merge_tensors([a, b], MergeHParams(mode="linear", weights=[1.0, 0.5]))
    torch.testing.assert_close(linear, a + 0.5 * b)
    ties = merge_tensors([a, b], MergeHParams(mode="ties", density=0.75))
    # trimmed: a -> [1, -2, 3, 0], b -> [1, 2, -1, 0]; signs by mass: +, 0 -> tie, +, 0
    torch.testing.assert_close(ties, torch.tensor([1.0, 0.0, 3.0, 0.0]))
    dare = merge_tensors([a, b], MergeHParams(mode="dare_linear", density=1.0))
    torch.testing.assert_close(dare, a + b)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        MergeHParams(mode="slerp")
