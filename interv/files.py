"""interv's files: how every file is written and read, in one place.

* Writes are atomic: ``atomic_path`` hands out a uniquely named temporary file beside the target
  and renames it over the target only when writing finished, so a killed run never leaves half a
  file and two processes writing the same file never share a temporary one. ``write_text``,
  ``write_json``, ``write_bytes`` and ``write_tagged`` go through it.
* Artefact files (patches, steering vectors...) are one safetensors file whose header names its
  format and version and holds JSON metadata; ``read_tagged`` checks all of it before trusting it.
* Text, JSON, JSONL and YAML are read as UTF-8 with errors naming the file, line and column.
* Output folders (``--out``) and files are claimed before work starts: an existing output is
  refused unless ``overwrite`` is given, and ``output_folder`` marks a folder ``INCOMPLETE``
  while it is written, so a killed run is recognisable.

Also the provenance every saved artefact records (when it was made, by which interv).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jaxtyping import Shaped
from torch import Tensor

from ._version import version
from .errors import ArtefactError, ConfigError, DataError, IntervError, MissingFileError

INCOMPLETE = "INCOMPLETE"  # present while an output folder is written; a killed run leaves it
MANIFEST = "interv-output.json"  # the files a finished run wrote (--overwrite removes them)


# ----------------------------------------------------------------------------------- reading
def decode_text(
    raw: bytes, path: str | Path, kind: str, error: type[IntervError] = DataError
) -> str:
    """``raw`` as UTF-8; other bytes raise ``error`` naming the file, line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise error(
            f"{path} is not UTF-8 text: byte {raw[err.start]:#04x} at line {line}, column "
            f"{column}; save the {kind} as UTF-8."
        ) from None


def read_text(path: str | Path, kind: str, error: type[IntervError] = DataError) -> str:
    """A UTF-8 text file; a missing file raises ``MissingFileError``."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; give the path of a {kind}.")
    return decode_text(path.read_bytes(), path, kind, error)


def parse_json(text: str, where: str, kind: str, error: type[IntervError] = DataError) -> Any:
    """JSON text; a syntax error raises ``error`` naming ``where``, the line and the column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(
            f"{where} is not valid JSON at line {err.lineno}, column {err.colno} ({err.msg}); "
            f"fix the {kind} there."
        ) from None


def read_json(path: str | Path, kind: str, error: type[IntervError] = DataError) -> Any:
    """The value a UTF-8 JSON file holds."""
    return parse_json(read_text(path, kind, error), str(path), kind, error)


def read_jsonl(path: str | Path, kind: str, error: type[IntervError] = DataError) -> list[Any]:
    """One JSON value per non-blank line; errors name the file and the line."""
    rows = []
    for number, line in enumerate(read_text(path, kind, error).splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise error(
                    f"{path} is not valid JSON Lines at line {number}, column {err.colno} "
                    f"({err.msg}); each line of a {kind} holds one JSON value."
                ) from None
    return rows


def read_yaml(
    path: str | Path, kind: str = "YAML config", error: type[IntervError] = ConfigError
) -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file is ``{}``); a missing file raises
    ``MissingFileError``, bad YAML (with its line and column) or a non-mapping raises ``error``
    naming ``kind``."""
    import yaml

    path = Path(path)
    text = read_text(path, kind, error)
    try:
        loader = _unique_key_loader()(text)  # a SafeLoader that refuses repeated keys
        try:
            data = loader.get_single_data() or {}
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise error(f"{path} is not valid YAML{at} ({problem}); fix the {kind} there.") from None
    if not isinstance(data, dict):
        raise error(f"{path} must hold a mapping of keys (a {kind}), not {type(data).__name__}.")
    return data


def _unique_key_loader() -> type:
    """PyYAML's SafeLoader, refusing a key given twice in one mapping (it keeps the last one
    silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, (str, int, float, bool)) and key in seen and key != "<<":
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key {key!r} is given twice (first on line {seen[key]})",
                        key_node.start_mark,
                    )
                if isinstance(key, (str, int, float, bool)):
                    seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


# ----------------------------------------------------------------------------------- writing
def _file_mode() -> int:
    """The permissions a plain ``open(path, "w")`` would give (``mkstemp`` gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A new, uniquely named temporary file beside ``path`` to write into; it replaces ``path``
    when the block ends, and is removed instead if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, _file_mode())
        os.replace(temporary, path)  # atomic on one file system: readers see old or new
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def staged_files(folder: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``folder`` for a writer that makes several files itself
    (sae-lens); when the block ends each file moves into ``folder`` by an atomic rename."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        yield staging
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = folder / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path, _file_mode())
            os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any, indent: int | None = 2, **options: Any) -> Path:
    """``data`` as JSON (``options`` go to ``json.dumps``: ``default=str``, ``ensure_ascii``)."""
    return write_text(path, json.dumps(data, indent=indent, **options))


def now() -> str:
    """The current UTC time, to the second, as saved artefacts record it."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance() -> dict[str, str]:
    """Creation date and interv version, for the metadata of any saved artefact."""
    return {"created": now(), "interv_version": version()}


# ------------------------------------------------------------------------- tagged artefacts
def write_tagged(
    path: str | Path,
    tensors: dict[str, Shaped[Tensor, "..."]],
    fmt: str,
    version: int,
    meta: dict[str, Any],
) -> Path:
    """Save ``tensors`` (made contiguous, on CPU) with ``{format, version, meta}`` in the header."""
    from safetensors.torch import save_file

    header = {"format": fmt, "version": str(version), "meta": json.dumps(meta, default=str)}
    plain = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as temporary:
        save_file(plain, str(temporary), metadata=header)
    return Path(path)


def tagged_format(path: str | Path) -> str | None:
    """The ``format`` a ``write_tagged`` file declares (None for anything unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format")
    except Exception:  # a missing or corrupt file: the loader that is tried next says which
        return None


def read_tagged(
    path: str | Path,
    fmt: str,
    version: int,
    kind: str,
    error: type[IntervError] = ArtefactError,
    *,
    tensors: bool = True,
    required: Sequence[str] = (),
    listed: str | None = None,
) -> tuple[dict[str, Any], dict[str, Shaped[Tensor, "..."]]]:
    """``(meta, tensors)`` of a file written by ``write_tagged`` with format ``fmt``; a missing
    file raises ``MissingFileError``, anything else wrong raises ``error`` naming ``kind``.
    ``required`` are metadata keys the file must have; ``listed`` is a metadata key listing
    tensor names the file must hold (a vector's hooks)."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise MissingFileError(f"{path} does not exist; give the path of a saved {kind}.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            keys = set(handle.keys())
            loaded = {key: handle.get_tensor(key) for key in keys} if tensors else {}
    except Exception as err:  # safetensors raises its own error types for bad bytes
        raise error(f"{path} is corrupt or not a safetensors {kind} file ({err}).") from err
    if header.get("format") != fmt:
        raise error(
            f"{path} is a safetensors file but not an interv {kind}: its header says format "
            f"{header.get('format')!r}, expected {fmt!r}."
        )
    if not str(header.get("version", "0")).isdigit() or int(header.get("version", "0")) > version:
        raise error(f"{path} uses {kind} format {header['version']}; upgrade interv to read it.")
    try:
        meta = json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError) as err:
        raise error(f"{path} has no readable {kind} metadata (corrupt).") from err
    if not isinstance(meta, dict):
        raise error(f"{path} has no readable {kind} metadata (corrupt).")
    absent = [key for key in (*required, *([listed] if listed else [])) if key not in meta]
    if absent:
        raise error(
            f"{path}: its {kind} metadata has no {absent[0]!r} (it has "
            f"{', '.join(sorted(meta)) or 'none'}); the file is corrupt: save it again."
        )
    if listed is not None:
        names = meta.get(listed)
        missing = [n for n in names if n not in keys] if isinstance(names, list) else [names]
        if missing:
            raise error(
                f"{path}: its metadata lists {listed} {missing[0]!r}, which the file holds no "
                f"tensor for (it holds {', '.join(sorted(keys)) or 'none'}); the {kind} is "
                "corrupt: save it again."
            )
    return meta, loaded


# ---------------------------------------------------------------------------------- outputs
def check_output_file(path: str | Path, overwrite: bool, option: str = "--overwrite") -> Path:
    """Refuse to replace an existing file unless ``overwrite``; call before any work."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the path of a file to write.")
    if path.exists() and not overwrite:
        raise ConfigError(
            f"{path} already exists; pass {option} to replace it, or write somewhere else."
        )
    return path


def check_output_folder(folder: str | Path, overwrite: bool, option: str = "--overwrite") -> Path:
    """Refuse an existing non-empty output folder unless ``overwrite``; call before any work."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file; give a folder to write the outputs into.")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        held = sorted(p.name for p in folder.iterdir())
        shown = ", ".join(held[:5]) + (", ..." if len(held) > 5 else "")
        state = " (an unfinished run: it holds INCOMPLETE)" if INCOMPLETE in held else ""
        raise ConfigError(
            f"{folder} already holds files{state}: {shown}. Pass {option} to replace that "
            "run's outputs, or choose another output folder."
        )
    return folder


def file_stamp(path: Path) -> tuple[int, int] | None:
    """``(mtime in ns, size)`` of a file, to tell whether it was written since (None: absent)."""
    return (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None


def _stamps(folder: Path) -> dict[str, tuple[int, int] | None]:
    return {str(p.relative_to(folder)): file_stamp(p) for p in folder.rglob("*") if p.is_file()}


@contextmanager
def output_folder(
    folder: str | Path, overwrite: bool = False, *, resume: bool = False
) -> Iterator[Path]:
    """Write a run's outputs into ``folder``: checked as ``check_output_folder`` does, marked
    ``INCOMPLETE`` while the block runs; with ``overwrite`` the files a previous run listed in
    its manifest are removed first, so old and new outputs never mix. When the block ends
    without error the marker is replaced by ``interv-output.json`` listing the files written.
    If the block raises, the marker stays: the folder is recognisably incomplete.
    ``resume`` continues the run already in the folder (a training checkpoint): nothing is
    refused or removed."""
    folder = check_output_folder(folder, overwrite or resume)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / INCOMPLETE, f"interv {version()} started writing here at {now()}\n")
    previous = folder / MANIFEST
    if previous.is_file() and not resume:
        try:
            listed = json.loads(previous.read_text()).get("files", [])
        except (ValueError, AttributeError):
            listed = []  # a broken manifest lists nothing to remove
        for name in listed:
            if Path(name).name not in (INCOMPLETE, MANIFEST):
                (folder / name).unlink(missing_ok=True)
        previous.unlink()
    before = _stamps(folder)
    yield folder
    after = _stamps(folder)
    written = sorted(
        name for name, stamp in after.items() if before.get(name) != stamp and name != INCOMPLETE
    )
    write_json(folder / MANIFEST, {"created": now(), "interv_version": version(), "files": written})
    (folder / INCOMPLETE).unlink()
