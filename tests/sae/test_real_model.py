"""The shipped SAE on the default model: fits, reconstructs held-out text, steers losslessly."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def shipped(real_models):
    from interv.sae import DEFAULT_SAE, load

    model = real_models("hf")
    return model, load(DEFAULT_SAE, model=model)


def test_shipped_sae_reconstructs_heldout_text(shipped):
    from interv.sae import activations, corpus
    from interv.sae.metrics import evaluate, without_outliers

    model, sae = shipped
    assert sae.hook_name == "blocks.12.hook_resid_post" and sae.d_in == model.cfg.d_model
    _, heldout = corpus.split(corpus.load_documents())
    acts = activations.collect(
        model, sae.hook_name, activations.windows(model, heldout[:12]), 600, progress=False
    )
    quality = evaluate(sae, without_outliers(acts))
    assert quality["l0"] <= 64 and quality["explained_variance"] >= 0.7


def test_clamping_features_to_their_own_values_leaves_logits_equal(shipped):
    from interv.graph import Graph, SAEFeature, positions

    model, sae = shipped
    ids = torch.tensor([model.tokenizer("The movie was wonderful and I loved it")["input_ids"]])
    _, cache = model.run_with_cache(ids, [sae.hook_name], stop_at_layer=12)
    z = sae.encode(cache[sae.hook_name][0, -1])
    active = (z > 0).nonzero().flatten()[:3].tolist()
    node = SAEFeature(
        sae,
        active,
        mode="clamp",
        values=[float(z[f]) for f in active],
        positions=positions.last_prompt_token(),
    )
    plain = model.forward(ids)
    torch.testing.assert_close(model.forward(ids, graph=Graph([node])), plain, atol=1e-3, rtol=1e-4)
    boosted = SAEFeature(
        sae,
        active,
        mode="clamp",
        values=[float(z[f]) + 20 for f in active],
        positions=positions.last_prompt_token(),
    )
    assert not torch.allclose(model.forward(ids, graph=Graph([boosted])), plain, atol=1e-2)
