"""Each node type changes the activation the way its docstring says, and strength scales it."""

from __future__ import annotations

import pytest
import torch

from interv.errors import SAEError
from interv.graph import (
    Ablate,
    Add,
    Clamp,
    Function,
    Graph,
    GraphError,
    ProjectOut,
    Replace,
    SAEFeature,
    Scale,
    Transform,
)
from tests.graph.conftest import PROMPTS, assert_close, trace, vector

HOOK = "blocks.1.hook_resid_pre"


def _one(model, node):
    (forward,) = trace(model, node.hooks[0], Graph([node]))
    return forward.before, forward.after


def test_add_adds_scaled_vector(tiny_models):
    model = tiny_models("llama")
    v = vector(model.cfg.d_model)
    before, after = _one(model, Add(HOOK, v, scale=3.0))
    torch.testing.assert_close(after, before + 3.0 * v)


def test_scale_ablate_project_clamp(tiny_models):
    model = tiny_models("llama")
    d = vector(model.cfg.d_model, seed=1)
    u = d / d.norm()
    before, after = _one(model, Scale(HOOK, 0.25))
    torch.testing.assert_close(after, before * 0.25)
    before, after = _one(model, Ablate(HOOK))
    assert after.abs().max() == 0
    mean = vector(model.cfg.d_model, seed=2)
    before, after = _one(model, Ablate(HOOK, mode="mean", mean=mean))
    torch.testing.assert_close(after, mean.expand_as(after))
    before, after = _one(model, ProjectOut(HOOK, d))
    assert (after @ u).abs().max() < 1e-4
    torch.testing.assert_close(after, before - (before @ u).unsqueeze(-1) * u)
    before, after = _one(model, Clamp(HOOK, d, 2.5))
    torch.testing.assert_close(after @ u, torch.full(after.shape[:2], 2.5), atol=1e-4, rtol=0)
    rest = lambda x: x - (x @ u).unsqueeze(-1) * u  # noqa: E731
    torch.testing.assert_close(rest(after), rest(before), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "node_factory",
    [
        lambda d: Add(HOOK, vector(d), scale=2.0),
        lambda d: Scale(HOOK, 3.0),
        lambda d: Ablate(HOOK),
        lambda d: ProjectOut(HOOK, vector(d)),
        lambda d: Clamp(HOOK, vector(d), -1.0),
        lambda d: Transform(HOOK, vector((d, d)) / d**0.5, vector(d, 3)),
        lambda d: Function(HOOK, lambda act, ctx: act.flip(-1)),
    ],
)
def test_strength_interpolates_the_effect(tiny_models, node_factory):
    """new = act + strength * (full - act): 0 is exactly a no-op, 0.5 is half the change."""
    model = tiny_models("llama")
    node = node_factory(model.cfg.d_model)
    before, full = _one(model, node)
    _, half = _one(model, node.replace(strength=0.5))
    _, none = _one(model, node.replace(strength=0.0))
    torch.testing.assert_close(half, before + 0.5 * (full - before), atol=1e-5, rtol=1e-5)
    assert torch.equal(none, before)


def test_replace_patches_activations_from_another_run(tiny_models):
    model = tiny_models("gpt2")
    clean, corrupt = ["Hello world"], ["Jello world"]
    with torch.no_grad():
        _, cache = model.run_with_cache(clean, [HOOK, "blocks.1.hook_attn_out"])
        expected = model.forward(clean)
        patched = model.forward(corrupt, graph=Graph([Replace(HOOK, cache)]))
    torch.testing.assert_close(patched, expected, atol=1e-5, rtol=1e-5)
    # A source covering only the first positions leaves the others alone.
    before, after = _one(model, Replace(HOOK, cache[HOOK][:, :2].expand(2, -1, -1)))
    assert torch.equal(after[:, :2], cache[HOOK][:, :2].expand(2, -1, -1))
    assert torch.equal(after[:, 2:], before[:, 2:])
    with pytest.raises(GraphError, match="no activation for"):
        Replace(["blocks.0.hook_resid_post", HOOK], {HOOK: cache[HOOK]})


def test_replace_rejects_a_batch_of_the_wrong_size(tiny_models):
    model = tiny_models("llama")
    _, cache = model.run_with_cache(["a", "b", "c"], HOOK)
    with pytest.raises(GraphError, match="3 rows; the batch has 2"):
        model.forward(["ab", "cd"], graph=Graph([Replace(HOOK, cache[HOOK])]))


def test_transform_identity_and_residual(tiny_models):
    model = tiny_models("qwen2")
    d = model.cfg.d_model
    before, after = _one(model, Transform(HOOK, torch.eye(d)))
    torch.testing.assert_close(after, before)
    W = vector((d, d), seed=4) * 0.01
    before, after = _one(model, Transform(HOOK, W, residual=True, strength=2.0))
    torch.testing.assert_close(after, before + 2.0 * before @ W)


def test_function_sees_the_context(tiny_models):
    model = tiny_models("llama")
    seen = []

    def fn(act, ctx):
        seen.append((ctx.name, ctx.run.prompt_length))
        return None  # None keeps the activation

    before, after = _one(model, Function(HOOK, fn))
    assert torch.equal(before, after)
    assert seen == [(HOOK, model.to_batch(PROMPTS).input_ids.shape[1])]


def test_heads_at_hook_z(tiny_models):
    model = tiny_models("llama")
    hook = "blocks.0.attn.hook_z"
    v = vector(model.cfg.d_head)
    (forward,) = trace(model, hook, Graph([Add(hook, v, heads=[1, 3])]))
    diff = forward.after - forward.before
    torch.testing.assert_close(diff[:, :, [1, 3]], v.expand_as(diff[:, :, [1, 3]]))
    assert diff[:, :, [0, 2]].abs().max() == 0
    per_head = vector((model.cfg.n_heads, model.cfg.d_head), seed=5)
    (forward,) = trace(model, hook, Graph([Add(hook, per_head)]))
    torch.testing.assert_close(forward.after - forward.before, per_head.expand_as(diff))


def test_layers_expand_a_template(tiny_models):
    model = tiny_models("llama")
    v = vector(model.cfg.d_model)
    node = Add("blocks.{i}.hook_resid_post", v, layers=[0, 1])
    assert node.hooks == ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")
    two = Graph([Add("blocks.0.hook_resid_post", v), Add("blocks.1.hook_resid_post", v)])
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward(PROMPTS, graph=Graph([node])), model.forward(PROMPTS, graph=two)
        )
    with pytest.raises(GraphError, match="pass layers"):
        Add("blocks.{i}.hook_resid_post", v)


# ---------------------------------------------------------------------------- SAE features
def test_sae_add_equals_adding_decoder_directions(tiny_models, tiny_sae):
    model = tiny_models("llama")
    sae = tiny_sae(model)
    node = SAEFeature(sae, [3, 7], values=[2.0, -1.0])
    assert node.hook == HOOK  # taken from the SAE
    direction = 2.0 * sae.W_dec[3] - sae.W_dec[7]
    with torch.no_grad():
        got = model.forward(PROMPTS, graph=Graph([node]))
        expected = model.forward(PROMPTS, graph=Graph([Add(HOOK, direction.detach())]))
    assert_close(got, expected, "sae add")


def test_sae_clamp_to_own_value_is_a_no_op(tiny_models, tiny_sae):
    model = tiny_models("llama")
    sae = tiny_sae(model)
    with torch.no_grad():
        baseline = model.forward(["Hello"])
        _, cache = model.run_with_cache(["Hello"], HOOK)
        z = sae.encode(cache[HOOK])
    feature = int(z[0, -1].argmax())
    value = float(z[0, -1, feature])
    node = SAEFeature(sae, [feature], mode="clamp", values=value, positions=_last())
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward(["Hello"], graph=Graph([node])), baseline, atol=0, rtol=0
        )
        lossy = model.forward(["Hello"], graph=Graph([node.replace(keep_error=False)]))
    assert not torch.allclose(lossy, baseline, atol=1e-4)


def test_sae_clamp_and_scale_change_only_the_feature(tiny_models, tiny_sae):
    """new = act + decode(z') - decode(z), z' = z with feature 5 clamped / scaled."""
    model = tiny_models("llama")
    sae = tiny_sae(model)
    for mode, value in (("clamp", 5.0), ("scale", 3.0)):
        for keep_error in (True, False):
            node = SAEFeature(sae, [5], mode=mode, values=value, keep_error=keep_error)
            (forward,) = trace(model, HOOK, Graph([node]))
            with torch.no_grad():
                z = sae.encode(forward.before)
                changed = z.clone()
                changed[..., 5] = 5.0 if mode == "clamp" else 3.0 * z[..., 5]
                decoded = sae.decode(changed)
                expected = forward.before + decoded - sae.decode(z) if keep_error else decoded
            torch.testing.assert_close(
                forward.after, expected, msg=f"{mode}, keep_error={keep_error}"
            )


def test_sae_errors(tiny_models, tiny_sae):
    model = tiny_models("llama")
    sae = tiny_sae(model)
    with pytest.raises(GraphError, match="index \\[48\\] out of range; the SAE has 48 features"):
        SAEFeature(sae, [48])
    with pytest.raises(GraphError, match="trained on 'blocks.1.hook_resid_pre'"):
        SAEFeature(sae, [1], hook="blocks.0.hook_resid_pre")
    wide = tiny_sae(model, hook="blocks.0.mlp.hook_post")
    wide.hook_name = HOOK  # claims the residual stream but has d_mlp inputs
    with pytest.raises(  # an SAE that does not fit is the SAE's error, found before any forward
        SAEError, match="d_in=64, but activations at 'blocks.1.hook_resid_pre' have 32"
    ):
        model.forward(PROMPTS, graph=Graph([SAEFeature(wide, [0])]))


def _last():
    from interv.graph import positions

    return positions.last_prompt_token()
