"""Inspecting SAE features: top contexts, logit lens, histogram, features per token, views."""

from __future__ import annotations

import pytest
import torch

from interv.sae import SAEError
from interv.sae.features import direction_logits, feature_report, histogram, logit_lens, text_report

DOCS = ["the cat sat on the mat", "good great happy day", "one two three four five six"]


def _busiest_feature(model, sae) -> int:
    from interv.sae.activations import iter_activations, windows

    acts = torch.cat([a for _, a in iter_activations(model, sae.hook_name, windows(model, DOCS))])
    return int((sae.encode(acts) > 0).sum(0).argmax())


def test_feature_report_contexts_are_the_top_activations(tiny_sae_run):
    model, sae, _, _ = tiny_sae_run
    feature = _busiest_feature(model, sae)
    report = feature_report(model, sae, feature, DOCS, k=2, window=4, logits=3)
    assert 1 <= len(report.contexts) <= 2
    peaks = [c.activation for c in report.contexts]
    assert peaks == sorted(peaks, reverse=True)
    assert peaks[0] == pytest.approx(float(report.activations.max()), rel=1e-5)
    for context in report.contexts:
        assert context.values[context.peak] == pytest.approx(context.activation)
        assert len(context.tokens) == len(context.values)
    assert 0 < report.frequency <= 1 and report.tokens_seen > 0
    assert len(report.top_logits) == 3 and report.top_logits[0][1] >= report.top_logits[-1][1]
    text = report.to_text()
    assert f"Feature {feature}" in text and "[[" in text and "histogram" in text
    page = report.to_html()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page


def test_logit_lens_matches_manual_unembedding(tiny_sae_run):
    model, sae, _, _ = tiny_sae_run
    direction = sae.W_dec[5].detach().float()
    manual = (direction * model.weight("ln_final.w").float()) @ model.weight("unembed.W_U").float()
    torch.testing.assert_close(direction_logits(model, direction), manual)
    top, bottom = logit_lens(model, sae, 5, k=4)
    expected = model.tokenizer.convert_ids_to_tokens(manual.topk(4).indices.tolist())
    assert [t for t, _ in top] == expected and bottom[0][1] == pytest.approx(float(manual.min()))
    with pytest.raises(SAEError, match="out of range"):
        logit_lens(model, sae, 64)


def test_text_report_lists_active_features_per_token(tiny_sae_run):
    model, sae, _, _ = tiny_sae_run
    report = text_report(model, sae, "the cat sat", k=3)
    ids = model.tokenizer("the cat sat")["input_ids"]
    assert len(report.tokens) == len(report.top) == len(ids)
    _, cache = model.run_with_cache(torch.tensor([ids]), [sae.hook_name])
    z = sae.encode(cache[sae.hook_name][0])
    for position, top in enumerate(report.top):
        assert len(top) <= 3 and all(v > 0 for _, v in top)
        if top:
            assert top[0][0] == int(z[position].argmax())
    assert "Top features per token" in report.to_text() and "<span" in report.to_html()


def test_histogram_and_png():
    from interv.sae.views import histogram_png

    counts, edges = histogram(torch.tensor([0.5, 1.0, 1.0, 2.0]), bins=3)
    assert sum(counts) == 4 and len(edges) == 4
    assert histogram(torch.empty(0)) == ([], [])
    assert histogram_png(torch.tensor([0.5, 1.0])).startswith(b"\x89PNG")
