"""A tiny SAE trained in-session (seconds) on a tiny Llama, with its corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = (
    "the cat sat on the mat and the dog ran to the park while birds sang loudly "
    "good great happy awful bad sad numbers one two three four five"
).split()


def tiny_corpus(path: Path, n_docs: int = 120) -> Path:
    import random

    rng = random.Random(0)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))) for _ in range(n_docs)]
    path.write_text("\n\n".join(docs))
    return path


@pytest.fixture(scope="session")
def tiny_sae_run(tiny_models, tmp_path_factory: pytest.TempPathFactory):
    """``(model, sae, report, folder)``: a TopK SAE on blocks.1.hook_resid_post, trained with
    interv's trainer on a small text corpus."""
    from interv.sae.training import TrainConfig, train

    root = tmp_path_factory.mktemp("sae")
    model = tiny_models("llama")
    cfg = TrainConfig(
        hook="blocks.1.hook_resid_post",
        features=64,
        k=4,
        tokens=12_000,
        distinct_tokens=0,
        corpus=str(tiny_corpus(root / "corpus.txt")),
        heldout_percent=10,
        heldout_tokens=500,
        batch_size=256,
        lr=3e-3,
        lr_warm_up_steps=5,
        dead_feature_window=20,
    )
    sae, report = train(model, cfg, root / "tiny_sae", progress=False, cache_dir=root / "cache")
    return model, sae, report, root / "tiny_sae"
