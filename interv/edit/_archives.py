"""The trained archives of learned editors (MEND, SERAC): shipped ones are found by the record
of the model they were trained on, not by its name, so a model loaded from any folder, in any
dtype, finds its archive."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from ..adapters import HookedModel
from ..errors import ConfigError
from ..files import read_tagged
from ..hparams import HParams
from ..record import ModelRecord
from .base import EditMethod

ArchiveT = TypeVar("ArchiveT")

ARCHIVES = "archives"  # package folder of the shipped archives


def shipped_archive(model: HookedModel, suffix: str, fmt: str, version: int = 1) -> Path | None:
    """The shipped ``*.<suffix>.safetensors`` archive trained on ``model``'s weights, or None."""
    folder = Path(str(files("interv.edit").joinpath(ARCHIVES)))
    for path in sorted(folder.glob(f"*.{suffix}.safetensors")):
        meta, _ = read_tagged(path, fmt, version, f"{suffix} archive", tensors=False)
        record = ModelRecord.from_dict(meta.get("model"))
        if record is not None and not record.differences(model):
            return path
    return None


def resolve_archive(
    model: HookedModel, archive: str | None, suffix: str, name: str, fmt: str
) -> Path:
    """``archive`` as a path, or the archive shipped for ``model``."""
    if archive:
        return Path(archive).expanduser()
    path = shipped_archive(model, suffix, fmt)
    if path is None:
        raise ConfigError(
            f"No {name} archive ships for {model.cfg.name}; train one with `interv train "
            f"{suffix} --out DIR` and set `archive: DIR/{suffix}.safetensors`."
        )
    return path


class TrainedEditor(EditMethod, Generic[ArchiveT]):
    """An editor that edits with a trained archive: the one given, ``hparams.archive``, or the
    one shipped for the model, loaded once (``archive_class.load``)."""

    archive_class: ClassVar[Any]
    archive_format: ClassVar[str]

    def __init__(self, hparams: HParams | None = None, archive: ArchiveT | None = None):
        super().__init__(hparams)
        self._archive = archive

    def archive(self, model: HookedModel) -> ArchiveT:
        if self._archive is None:
            path = resolve_archive(
                model, self.hparams.archive, self.name, self.name.upper(), self.archive_format
            )
            self._archive = self.archive_class.load(path)
        return self._archive
