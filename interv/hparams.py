"""Hyperparameter dataclasses: one per method, YAML/dict round trips implemented once.

A method declares ``@dataclass(kw_only=True) class ROMEHParams(HParams)`` with typed fields and
defaults for the default model, and validates values in ``__post_init__`` with ``ValueError``.
Unknown keys are rejected (a typo must fail), except through ``from_dict(strict=False)``, which
the EasyEdit-compatible facade uses to warn about keys interv does not need.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

H = TypeVar("H", bound="HParams")


@dataclasses.dataclass(kw_only=True)
class HParams:
    """Base class of every method's hyperparameters."""

    method: ClassVar[str] = ""  # the registry id; recipes carry it as `method: rome`

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[H], data: dict[str, Any], *, strict: bool = True) -> H:
        data = dict(data)
        declared = data.pop("method", None) or data.pop("alg_name", None)
        if declared and cls.method and str(declared).lower() != cls.method:
            raise ValueError(
                f"These hyperparameters are for method {declared!r}, not {cls.method!r}."
            )
        known = set(cls.field_names())
        unknown = sorted(set(data) - known)
        if unknown:
            message = (
                f"Unknown {cls.__name__} key(s): {', '.join(unknown)}. "
                f"Valid keys: {', '.join(sorted(known))}."
            )
            if strict:
                raise ValueError(message)
            warnings.warn(message + " They are ignored.", stacklevel=2)
        hints = typing.get_type_hints(cls)
        values = {k: _coerce(hints.get(k), v) for k, v in data.items() if k in known}
        return cls(**values)

    @classmethod
    def from_yaml(cls: type[H], path: str | Path, *, strict: bool = True) -> H:
        with open(path) as handle:
            data = yaml.safe_load(handle) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a mapping of hyperparameters.")
        return cls.from_dict(data, strict=strict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method} if self.method else {}
        out.update(dataclasses.asdict(self))
        return out

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def replace(self: H, **changes: Any) -> H:
        return dataclasses.replace(self, **changes)


def _coerce(hint: Any, value: Any) -> Any:
    """YAML writes 1e-3 as a string and lists as lists; convert to the declared field type."""
    if hint is None or value is None:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value)
            except (TypeError, ValueError):
                continue
        return value
    if hint is float and isinstance(value, (str, int)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, str):
        return int(value)
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        inner = args[0] if args else None
        converted = [_coerce(inner, v) for v in value]
        return tuple(converted) if origin is tuple else converted
    return value
