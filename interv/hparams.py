"""Hyperparameter dataclasses: one per method, YAML/dict round trips implemented once.

A method declares ``@dataclass(kw_only=True) class ROMEHParams(HParams)`` with typed fields and
defaults for the default model, and validates values in ``__post_init__`` with ``ConfigError``
(a ``ValueError``). Unknown keys are rejected with the closest valid key named (a typo must
fail), except through ``from_dict(strict=False)``, which the EasyEdit-compatible facade uses to
warn about keys interv does not need. The steering workflow's top-level config
(``interv.steer.workflow.config.SteerConfig``) is one of these too.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(kw_only=True)
    ... class Toy(HParams):
    ...     layers: list[int] = None
    >>> Toy.from_dict({"layerz": [1]})  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    interv.errors.UnknownKeyError: Toy: unknown key 'layerz'. Did you mean 'layers'?
    Valid keys: layers.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from .errors import ConfigError, UnknownKeyError
from .files import read_yaml

H = TypeVar("H", bound="HParams")


@dataclasses.dataclass(kw_only=True)
class HParams:
    """Base class of every method's hyperparameters."""

    method: ClassVar[str] = ""  # the registry id; recipes carry it as `method: rome`

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(
        cls: type[H], data: dict[str, Any], *, strict: bool = True, source: str = ""
    ) -> H:
        """Validated hyperparameters from a mapping; ``source`` (a file name) prefixes errors."""
        data = dict(data)
        where = source or cls.__name__
        if cls.method:  # a method's file may name it; a config's keys may be called "method"
            declared = data.pop("method", None) or data.pop("alg_name", None)
            if declared and str(declared).lower() != cls.method:
                raise ConfigError(
                    f"{where}: these hyperparameters are for method {declared!r}, "
                    f"not {cls.method!r}."
                )
        known = set(cls.field_names())
        unknown = sorted(set(data) - known)
        if unknown and strict:
            raise UnknownKeyError(where, unknown[0], known)
        if unknown:
            warnings.warn(
                f"{where}: unknown key(s) {', '.join(unknown)}, ignored. Valid keys: "
                f"{', '.join(sorted(known))}.",
                stacklevel=2,
            )
        hints = typing.get_type_hints(cls)
        values = {k: _coerce(hints.get(k), v) for k, v in data.items() if k in known}
        return cls(**values)

    @classmethod
    def from_yaml(cls: type[H], path: str | Path, *, strict: bool = True) -> H:
        data = read_yaml(path, "hyperparameter YAML file")
        return cls.from_dict(data, strict=strict, source=str(path))

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
