"""Layer statistics: exact second moments, one pass for several weights, a cache keyed right."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch

from interv.data.corpus import load_corpus
from interv.stats import StatsCache, key_hook, layer_stats, null_space, token_rows


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.jsonl"
    lines = [
        json.dumps({"id": i, "text": f"Sentence number {i} says something about topic {i % 7}."})
        for i in range(300)
    ]
    path.write_text("\n".join(lines))
    return path


def test_second_moment_matches_a_direct_computation(tiny_models, corpus_file, tmp_path):
    model = tiny_models("llama")
    weight = "blocks.1.mlp.W_out"
    stats = layer_stats(
        model,
        [weight],
        corpus_file,
        n_tokens=600,
        seq_len=64,
        batch_size=3,
        cache=StatsCache(tmp_path / "s"),
        progress=False,
    )[weight]
    rows = token_rows(model, load_corpus(corpus_file), 600, 64)
    keys = torch.cat(
        [
            model.run_with_cache(torch.tensor([r]), ["blocks.1.mlp.hook_post"])[1][
                "blocks.1.mlp.hook_post"
            ][0]
            for r in rows
        ]
    )
    assert stats.count == keys.shape[0] == 600
    torch.testing.assert_close(stats.mom2, keys.T @ keys / 600, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(stats.mean, keys.mean(0), atol=1e-5, rtol=1e-4)


def test_several_weights_share_one_pass_and_the_cache_is_reused(
    tiny_models, corpus_file, tmp_path, monkeypatch
):
    model = tiny_models("gpt2")
    cache = StatsCache(tmp_path / "s")
    calls = []
    original = model.run_with_cache

    def counting(*args, **kwargs):
        calls.append(kwargs.get("stop_at_layer"))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "run_with_cache", counting)
    weights = ["blocks.0.mlp.W_out", "blocks.1.mlp.W_out", "blocks.0.attn.W_O", "blocks.1.mlp.W_in"]
    run = partial(layer_stats, model, weights, corpus_file, n_tokens=512, seq_len=64, batch_size=4)
    first = run(cache=cache, progress=False)
    assert calls == [1, 1]  # 8 rows of 64 in batches of 4, stopped after the deepest layer
    assert first["blocks.0.attn.W_O"].mom2.shape == (32, 32)
    calls.clear()
    again = run(cache=cache, progress=False)
    assert calls == []  # read from disk
    for w in weights:
        assert torch.equal(first[w].mom2, again[w].mom2)
    files = sorted(p.name for p in cache.root.rglob("*.safetensors"))
    assert len(files) == 4 and all(f.endswith("-n512-ctx64-float32.safetensors") for f in files)


def test_changing_the_sample_count_or_the_corpus_recomputes(tiny_models, corpus_file, tmp_path):
    model = tiny_models("llama")
    cache = StatsCache(tmp_path / "s")
    weight = "blocks.0.mlp.W_out"
    a = layer_stats(model, [weight], corpus_file, n_tokens=256, cache=cache, progress=False)[weight]
    b = layer_stats(model, [weight], corpus_file, n_tokens=384, cache=cache, progress=False)[weight]
    other = tmp_path / "other.txt"
    other.write_text(
        "A completely different text.\n\nWith two paragraphs of words, and more words. " * 30
    )
    c = layer_stats(model, [weight], other, n_tokens=256, cache=cache, progress=False)[weight]
    assert (a.count, b.count, c.count) == (256, 384, 256)
    assert not torch.allclose(a.mom2, c.mom2)
    assert len(list(cache.root.rglob("*.safetensors"))) == 3


def test_corrupt_cache_file_is_recomputed(tiny_models, corpus_file, tmp_path, caplog):
    model = tiny_models("llama")
    cache = StatsCache(tmp_path / "s")
    weight = "blocks.0.mlp.W_out"
    good = layer_stats(model, [weight], corpus_file, n_tokens=256, cache=cache, progress=False)[
        weight
    ]
    (path,) = cache.root.rglob("*.safetensors")
    path.write_bytes(b"not a safetensors file")
    again = layer_stats(model, [weight], corpus_file, n_tokens=256, cache=cache, progress=False)[
        weight
    ]
    assert "unreadable statistics" in caplog.text
    torch.testing.assert_close(again.mom2, good.mom2)


def test_bad_requests_fail_clearly(tiny_models, corpus_file, tmp_path):
    model = tiny_models("llama")
    with pytest.raises(ValueError, match="only .* tokens"):
        layer_stats(
            model,
            ["blocks.0.mlp.W_out"],
            corpus_file,
            n_tokens=10**7,
            cache=StatsCache(tmp_path),
            progress=False,
        )
    with pytest.raises(ValueError, match="No input statistics for weight 'embed.W_E'"):
        key_hook(model, "embed.W_E")
    with pytest.raises(Exception, match="blocks.9.mlp.W_out"):
        key_hook(model, "blocks.9.mlp.W_out")
    with pytest.raises(FileNotFoundError, match="not a file"):
        layer_stats(
            model, ["blocks.0.mlp.W_out"], tmp_path / "missing.txt", cache=StatsCache(tmp_path)
        )


def test_null_space_projector_is_cached(tiny_models, tmp_path):
    model = tiny_models("llama")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 64, generator=g)
    moment = X.T @ X / 200
    cache = StatsCache(tmp_path)
    P, rank = null_space(model, "blocks.0.mlp.W_out", moment, 0.5, cache)
    assert 0 < rank < 64 and len(list(tmp_path.rglob("nullspace-*.safetensors"))) == 1
    P2, rank2 = null_space(model, "blocks.0.mlp.W_out", moment, 0.5, cache)
    assert rank2 == rank and torch.equal(P, P2)
