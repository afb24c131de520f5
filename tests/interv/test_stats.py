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


def test_statistics_of_an_edited_model_are_kept_apart(fresh_tiny, corpus_file, tmp_path):
    from interv.patch import PatchSet, WeightPatch

    model = fresh_tiny("llama")
    cache, weight = StatsCache(tmp_path / "s"), "blocks.1.mlp.W_out"
    run = partial(
        layer_stats,
        model,
        [weight],
        corpus_file,
        n_tokens=200,
        seq_len=32,
        cache=cache,
        progress=False,
    )
    clean = run()[weight]
    below = "blocks.0.mlp.W_out"  # changes the keys of block 1
    patch = PatchSet([WeightPatch(below, delta=5 * torch.randn(model.weight_shape(below)))])
    with patch.applied(model):
        assert model.patches.digest()
        edited = run()[weight]
        assert cache.folder(model, weight) != StatsCache(tmp_path / "s").folder(
            fresh_tiny("llama"), weight
        )
    assert not torch.allclose(edited.mom2, clean.mom2)
    assert model.patches.digest() == ""
    torch.testing.assert_close(run()[weight].mom2, clean.mom2)  # the clean entry, not the edited
    patch.merge_into(model)  # merged for good: a third state, never the clean entry
    assert model.patches.digest()
    torch.testing.assert_close(run()[weight].mom2, edited.mom2, rtol=1e-4, atol=1e-5)


def _damage(path, how):
    from interv.files import write_tagged
    from interv.stats import CACHE_VERSION, STATS_FORMAT

    if how == "truncated":  # what a killed writer without a rename would leave
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return
    if how == "untagged":  # a safetensors file that is not an interv cache entry
        from safetensors.torch import save_file

        save_file({"mom2": torch.zeros(64, 64), "mean": torch.zeros(64)}, str(path))
        return
    meta = {"weight": "blocks.0.mlp.W_out", "complete": True, "count": 256, "dtype": "float32"}
    tensors = {"mom2": torch.zeros(64, 64), "mean": torch.zeros(64)}
    if how == "other_shape":
        tensors["mom2"] = torch.zeros(32, 32)
    elif how == "other_weight":
        meta["weight"] = "blocks.1.mlp.W_out"
    elif how == "incomplete":
        meta["complete"] = False
    elif how == "nan":
        tensors["mom2"] = torch.full((64, 64), float("nan"))
    elif how == "other_dtype":
        tensors = {k: v.double() for k, v in tensors.items()}
    write_tagged(path, tensors, STATS_FORMAT, CACHE_VERSION, meta)


@pytest.mark.parametrize(
    "how",
    ["truncated", "untagged", "other_shape", "other_weight", "incomplete", "nan", "other_dtype"],
)
def test_a_damaged_cache_entry_is_recomputed_with_a_warning(
    tiny_models, corpus_file, tmp_path, caplog, how
):
    model = tiny_models("llama")
    cache = StatsCache(tmp_path / "s")
    weight = "blocks.0.mlp.W_out"
    run = partial(layer_stats, model, [weight], corpus_file, n_tokens=256, cache=cache)
    good = run(progress=False)[weight]
    (path,) = cache.root.rglob("*.safetensors")
    _damage(path, how)
    again = run(progress=False)[weight]
    assert "Ignoring" in caplog.text and str(path) in caplog.text and "recomputing" in caplog.text
    assert torch.equal(again.mom2, good.mom2) and again.count == 256
    caplog.clear()
    run(progress=False)  # the recomputed entry replaced the damaged one and is trusted
    assert "Ignoring" not in caplog.text


def test_writers_of_one_entry_never_share_a_temporary_file(tmp_path):
    """Two processes computing the same statistics each write a temporary file of their own
    beside the entry and rename it over the entry: the entry is always one whole file."""
    from interv.files import atomic_path

    target = tmp_path / "entry.safetensors"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_bytes(b"first")
        second.write_bytes(b"second")
        assert not target.exists()  # nothing is visible before a writer finishes
    assert target.read_bytes() == b"first"  # the last rename wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["entry.safetensors"]
    with pytest.raises(RuntimeError), atomic_path(target) as failed:
        failed.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"first" and len(list(tmp_path.iterdir())) == 1


def test_the_null_space_cache_is_checked_before_use(tiny_models, tmp_path, caplog):
    model = tiny_models("llama")
    X = torch.randn(200, 64, generator=torch.Generator().manual_seed(0))
    moment, cache = X.T @ X / 200, StatsCache(tmp_path)
    P, rank = null_space(model, "blocks.0.mlp.W_out", moment, 0.5, cache)
    (path,) = tmp_path.rglob("nullspace-*.safetensors")
    path.write_bytes(path.read_bytes()[:100])
    P2, rank2 = null_space(model, "blocks.0.mlp.W_out", moment, 0.5, cache)
    assert "Ignoring unreadable projector" in caplog.text
    assert rank2 == rank and torch.equal(P, P2)
