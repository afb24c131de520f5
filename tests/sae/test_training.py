"""Training an SAE with sae-lens's trainer through interv's hooks, on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from interv.sae import corpus
from interv.sae.metrics import evaluate
from interv.sae.training import REPORT_FILE, TrainConfig


def test_trained_sae_reconstructs_and_reports(tiny_sae_run):
    model, sae, report, folder = tiny_sae_run
    assert sae.hook_name == "blocks.1.hook_resid_post" and sae.d_in == 32 and sae.d_sae == 64
    heldout = report["heldout"]
    assert heldout["l0"] <= 4.0  # TopK k=4
    assert heldout["explained_variance"] > 0.5  # far above a random decoder (<= 0)
    assert 0.0 <= heldout["dead_share"] < 1.0
    saved = json.loads((folder / REPORT_FILE).read_text())
    assert saved["heldout"] == heldout and saved["config"]["features"] == 64
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["dtype"] == "float16" and cfg["metadata"]["hook_name"] == "blocks.1.hook_resid_post"


def test_report_matches_a_fresh_evaluation(tiny_sae_run, tmp_path):
    from interv.sae import activations

    model, sae, report, _ = tiny_sae_run
    _, heldout_docs = corpus.split(corpus.load_documents(report["config"]["corpus"]), 10)
    acts = activations.cached(
        model, sae.hook_name, heldout_docs, 500, progress=False, cache_dir=tmp_path
    )
    assert evaluate(sae, acts)["explained_variance"] == pytest.approx(
        report["heldout"]["explained_variance"], abs=1e-3
    )


def test_metrics_on_known_reconstructions():
    class Identity:
        def encode(self, x):
            return torch.relu(x)

        def decode(self, z):
            return z

    acts = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    result = evaluate(Identity(), acts)
    assert (
        result["explained_variance"] == 1.0 and result["l0"] == 1.0 and result["dead_share"] == 0.0
    )
    result = evaluate(Identity(), -acts)  # nothing fires: reconstruction 0
    assert result["l0"] == 0.0 and result["dead_share"] == 1.0 and result["explained_variance"] < 0


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="architecture must be one of"):
        TrainConfig(architecture="relu")
    with pytest.raises(ValueError, match="k=99 exceeds features=8"):
        TrainConfig(features=8, k=99)
    with pytest.raises(
        ValueError, match="TrainConfig: unknown key 'featurs'. Did you mean 'features'"
    ):
        TrainConfig.from_dict({"featurs": 3})


def test_unknown_hook_fails_before_reading(tiny_models, tmp_path):
    from interv.adapters import UnknownNameError
    from interv.sae.training import train

    cfg = TrainConfig(hook="blocks.9.hook_resid_post", corpus=str(tmp_path / "none.txt"))
    with pytest.raises(UnknownNameError, match="blocks.9.hook_resid_post"):
        train(tiny_models("llama"), cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_jumprelu_trains(tiny_models, tmp_path):
    from interv.sae.training import train
    from tests.sae.conftest import tiny_corpus

    cfg = TrainConfig(
        hook="blocks.0.hook_resid_post",
        features=32,
        architecture="jumprelu",
        k=6,
        tokens=3_000,
        distinct_tokens=0,
        corpus=str(tiny_corpus(tmp_path / "c.txt", 40)),
        heldout_percent=10,
        heldout_tokens=200,
        batch_size=256,
        save_dtype="float32",
    )
    sae, report = train(
        tiny_models("llama"), cfg, tmp_path / "jr", progress=False, cache_dir=tmp_path / "cache"
    )
    assert sae.architecture == "jumprelu" and sae.hook_name == "blocks.0.hook_resid_post"
    assert 0 < report["heldout"]["l0"] <= 32


def test_corpus_files_and_split(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one two"}\n{"body": "three four"}\n')
    assert corpus.load_documents(tmp_path / "a.jsonl") == ["one two", "three four"]
    (tmp_path / "b.json").write_text('[{"t": "x y"}, "z"]')
    assert corpus.load_documents(tmp_path / "b.json", text_field=None) == ["x y", "z"]
    (tmp_path / "c.txt").write_text("first doc\nline two\n\nsecond   doc\n")
    assert corpus.load_documents(tmp_path / "c.txt") == ["first doc line two", "second doc"]
    with pytest.raises(FileNotFoundError, match="is not a file"):
        corpus.load_documents(tmp_path / "missing.txt")
    docs = [f"document {i}" for i in range(200)]
    train, heldout = corpus.split(docs, 10)
    assert sorted(train + heldout) == sorted(docs) and 5 <= len(heldout) <= 40
    assert corpus.split(list(reversed(docs)), 10)[1] == list(reversed(heldout))  # order-free


def test_without_outliers_drops_the_largest_norms():
    from interv.sae.metrics import without_outliers

    acts = torch.ones(100, 4)
    acts[7] = 1000.0
    kept = without_outliers(acts, 0.98)
    assert kept.shape == (99, 4) and float(kept.max()) == 1.0
