"""Hyperparameter dataclasses: one per method, YAML/dict round trips implemented once.

A method declares ``@dataclass(kw_only=True) class ROMEHParams(HParams)`` with typed fields and
defaults for the default model, and validates values in ``__post_init__`` with ``ConfigError``
(a ``ValueError``). Unknown keys are rejected with the closest valid key named (a typo must
fail), except through ``from_dict(strict=False)``, which the EasyEdit-compatible facade uses to
warn about keys interv does not need. The steering workflow's top-level config
(``interv.steer.workflow.config.SteerConfig``) is one of these too.

Every field is checked against its annotation when the object is built (``ROMEHParams(...)``,
``from_dict``, ``from_yaml``, ``replace``), before the method's own range checks:

* ``int``: an int (not a bool, not 2.7); ``float``: a finite int or float (not a bool, NaN or
  infinity, unless the field's metadata says ``{"allow_nonfinite": True}``); ``bool``: true or
  false; ``str``: a string, and a non-blank one when the default is non-blank (metadata
  ``{"allow_empty": True}`` opts out); ``list[X]`` / ``tuple``: a list whose items are each
  an ``X`` (a bare ``5`` for ``list[int]`` is refused: write ``[5]``); ``dict[K, V]``; unions
  (``X | None``) and ``Literal[...]`` choices. A wrong value is one ``ConfigError`` naming the
  class (or file), the field, the value, the expected type and the fix.
* ``from_dict`` (files, mappings) first reads what YAML leaves as text: ``1e-3`` (a string in
  PyYAML) for a float, ``'7'`` or ``1e5`` for an int, and a whole float (``20.0``) for an int,
  which is exact. The constructor converts nothing: Python callers pass the declared types.

So that no subclass has to remember ``super().__post_init__()`` (20 of 28 define a
``__post_init__``, 5 call super), ``HParams.__init_subclass__`` wraps each subclass's own
``__post_init__``: the type check runs first, in the outermost call only; a subclass without
one inherits the base's, which checks.

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
    >>> Toy(layers=5)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    interv.errors.ConfigError: Toy: layers must be a list of ints, got 5 (int); write a list,
    e.g. [5].
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import sys
import types
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml

from .errors import ConfigError, UnknownKeyError
from .files import read_yaml, write_text

H = TypeVar("H", bound="HParams")


@dataclasses.dataclass(kw_only=True)
class HParams:
    """Base class of every method's hyperparameters."""

    method: ClassVar[str] = ""  # the registry id; recipes carry it as `method: rome`

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "_types_first", False):
            cls.__post_init__ = _types_first(own)  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        if type(self).__post_init__ is HParams.__post_init__:  # not when called through super()
            check_fields(self)

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
        hints = field_hints(cls)
        values = {k: _coerce(hints.get(k), v) for k, v in data.items() if k in known}
        # checked here too so that the error names the file, not only the class
        _check_values(cls, values, f"{source} ({cls.__name__})" if source else cls.__name__)
        try:
            return cls(**values)
        except ConfigError as err:  # a range check of __post_init__: name the file as well
            message = err.args[0] if err.args else ""
            if source and isinstance(message, str) and source not in message:
                err.args = (f"{source}: {message}", *err.args[1:])
            raise

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
            write_text(path, text)  # atomic: a temporary file renamed into place
        return text

    def replace(self: H, **changes: Any) -> H:
        return dataclasses.replace(self, **changes)


def _types_first(post_init: Callable[[Any], None]) -> Callable[[Any], None]:
    """``post_init`` preceded by the type check, when it is the outermost ``__post_init__``."""

    @functools.wraps(post_init)
    def wrapped(self: Any) -> None:
        if type(self).__post_init__ is wrapped:
            check_fields(self)
        post_init(self)

    wrapped._types_first = True  # type: ignore[attr-defined]
    return wrapped


def check_fields(obj: HParams) -> None:
    """Check every field of ``obj`` against its annotation (ints made plain ints, tuples lists)."""
    cls = type(obj)
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)}
    for name, value in _check_values(cls, values, cls.__name__).items():
        if value is not values[name]:
            object.__setattr__(obj, name, value)


def field_hints(cls: type) -> dict[str, Any]:
    """Each field's annotation, resolved; one that cannot be (a name local to a function) is
    left out, and so unchecked."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):
        namespace = vars(sys.modules.get(cls.__module__, typing))
    hints: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        try:
            hints[f.name] = eval(f.type, namespace) if isinstance(f.type, str) else f.type
        except Exception:  # an unresolvable annotation: nothing to check against
            continue
    return hints


def _check_values(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """The values, conformed to the fields' annotations; ``ConfigError`` on the first misfit."""
    hints = field_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = dict(values)
    for name, value in values.items():
        field = fields.get(name)
        if name not in hints or field is None or value is field.default:
            continue  # the class's own default is the author's choice (e.g. None for a list)
        finite = not field.metadata.get("allow_nonfinite", False)
        fits, conformed = _fit(hints[name], value, finite)
        if not fits:
            raise ConfigError(_misfit(where, field, hints[name], value))
        if (
            isinstance(conformed, str)
            and not conformed.strip()
            and isinstance(field.default, str)
            and field.default.strip()
            and not field.metadata.get("allow_empty", False)
        ):
            raise ConfigError(
                f"{where}: {name} is empty; give a value such as {field.default!r}, or leave "
                "the key out for that default."
            )
        out[name] = conformed
    return out


def _fit(hint: Any, value: Any, finite: bool = True) -> tuple[bool, Any]:
    """Whether ``value`` is a ``hint``, and the value made plain (numpy ints -> int, tuples for
    ``list`` -> lists); an annotation this does not know (a class, a Protocol) fits by
    ``isinstance`` when it can, else anything fits."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return True, value
    if hint is None or hint is type(None):
        return value is None, value
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            fits, out = _fit(arm, value, finite)
            if fits:
                return True, out
        return False, value
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args), value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        fits = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return fits, int(value) if fits and type(value) is not int else value
    if hint is float:
        fits = isinstance(value, numbers.Real) and not isinstance(value, bool)
        fits = fits and (not finite or math.isfinite(value))
        return fits, float(value) if fits and not isinstance(value, (int, float)) else value
    if hint is str:
        return isinstance(value, str), value
    if origin in (list, tuple) or hint in (list, tuple):
        return _fit_sequence(origin or hint, args, value, finite)
    if origin is dict or hint is dict:
        return _fit_mapping(args, value, finite)
    if isinstance(hint, type) and not getattr(hint, "_is_protocol", False):
        return isinstance(value, hint), value
    return True, value


def _fit_sequence(kind: type, args: tuple[Any, ...], value: Any, finite: bool) -> tuple[bool, Any]:
    if not isinstance(value, (list, tuple)):
        return False, value
    fitted = [_fit(args[0] if args else Any, item, finite) for item in value]
    if not all(fits for fits, _ in fitted):
        return False, value
    items = [item for _, item in fitted]
    if type(value) is kind and all(a is b for a, b in zip(items, value, strict=True)):
        return True, value
    return True, kind(items)


def _fit_mapping(args: tuple[Any, ...], value: Any, finite: bool) -> tuple[bool, Any]:
    if not isinstance(value, dict):
        return False, value
    key_hint, value_hint = args if len(args) == 2 else (Any, Any)
    out = {}
    for key, item in value.items():
        fits, out[key] = _fit(value_hint, item, finite)
        if not fits or not _fit(key_hint, key, finite)[0]:
            return False, value
    return True, out if any(out[k] is not v for k, v in value.items()) else value


def _coerce(hint: Any, value: Any) -> Any:
    """What YAML leaves as text, read as the declared type: ``1e-3`` (a string in PyYAML) for
    a float, ``'7'``/``1e5`` or a whole float (``20.0``) for an int. Anything else is returned
    as it is, for the type check to accept or refuse."""
    if hint is None or value is None or _fit(hint, value, False)[0]:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            converted = _coerce(arm, value)
            if converted is not value and _fit(arm, converted, False)[0]:
                return converted
        return value
    if hint is float and isinstance(value, str):
        return _float(value)
    if hint is int and isinstance(value, (str, float)) and not isinstance(value, bool):
        return _whole(value)
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        inner = args[0] if args and origin is list else None
        return type(value)(_coerce(inner, v) for v in value)
    return value


def _whole(value: str | float) -> Any:
    """``'7'`` -> 7, ``'1e5'`` -> 100000, ``20.0`` -> 20; else as it is (refused later)."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            value = _float(value)
    exact = isinstance(value, float) and math.isfinite(value) and value.is_integer()
    return int(value) if exact else value


def _float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


# ---------------------------------------------------------------------------------- messages
def describe(hint: Any, plural: bool = False) -> str:
    """An annotation in words: ``list[int] | str`` -> "a list of ints or a string"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a, plural) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple) or hint in (list, tuple):
        noun = "lists" if plural else "a list"
        inner = describe(args[0], plural=True) if args else "anything"
        return noun if inner == "anything" else f"{noun} of {inner}"
    if origin is dict or hint is dict:
        noun = "mappings" if plural else "a mapping"
        if not args or args == (Any, Any):
            return noun
        if args[1] is Any:
            return f"{noun} with {describe(args[0])} keys".replace("with a ", "with ")
        return f"{noun} of {describe(args[0], True)} to {describe(args[1], True)}"
    words = {
        int: ("an int", "ints"),
        float: ("a finite number", "finite numbers"),
        str: ("a string", "strings"),
        bool: ("true or false", "booleans"),
        type(None): ("null", "nulls"),
        Any: ("anything", "anything"),
    }
    if hint in words:
        return words[hint][plural]
    name = getattr(hint, "__name__", str(hint))
    return f"{name} objects" if plural else f"a {name}"


def _misfit(where: str, field: dataclasses.Field[Any], hint: Any, value: Any) -> str:
    got = f"got {value!r} ({type(value).__name__}{_bad_item(hint, value)})"
    return f"{where}: {field.name} must be {describe(hint)}, {got}; {_fix(hint, value, field)}."


def _bad_item(hint: Any, value: Any) -> str:
    """Which item of a list or mapping is of the wrong type (", item 1, 'a', is not an int")."""
    for arm in _arms(hint):
        origin, args = typing.get_origin(arm), typing.get_args(arm)
        if origin is list and args and isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if not _fit(args[0], item)[0]:
                    return f", whose item {i}, {item!r}, is not {describe(args[0])}"
        if origin is dict and len(args) == 2 and isinstance(value, dict):
            for key, item in value.items():
                if not _fit(args[0], key)[0] or not _fit(args[1], item)[0]:
                    return f", whose entry {key!r}: {item!r} is not {describe(args[1])}"
    return ""


def _fix(hint: Any, value: Any, field: dataclasses.Field[Any]) -> str:
    """How to write a value of this type (the field's default as the example)."""
    default = None if field.default is dataclasses.MISSING else field.default
    if field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    arms = [a for a in _arms(hint) if a is not type(None)]
    null = " (or null)" if len(arms) < len(_arms(hint)) else ""
    first = arms[0] if arms else hint
    if typing.get_origin(first) in (list, tuple) and isinstance(value, (int, float, str)):
        return f"write a list, e.g. [{value!r}]{null}"
    if first is int:
        example = default if type(default) is int else 1
        return f"write a whole number such as {example}{null}"
    if first is float:
        example = default if type(default) in (int, float) else 1.0
        nonfinite = isinstance(value, float) and not math.isfinite(value)
        lead = "NaN and infinity are not accepted; " if nonfinite else ""
        return f"{lead}write a number such as {example}{null}"
    if first is bool:
        return f"write true or false, unquoted{null}"
    if typing.get_origin(first) is dict or first is dict:
        return f"write a mapping (key: value lines in YAML){null}"
    if typing.get_origin(first) is Literal:
        return f"choose one of {', '.join(repr(a) for a in typing.get_args(first))}"
    if first is str:
        example = f" such as {default!r}" if isinstance(default, str) and default else ""
        return f"write text{example}, quoted in YAML when it looks like a number{null}"
    return f"write a value such as {default!r}{null}" if default else f"write {describe(hint)}"


def _arms(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)
