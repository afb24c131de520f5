"""interv's errors: one base, ``IntervError``, and one subclass per kind of problem.

Every error interv raises derives from ``IntervError``, so ``except IntervError`` catches
whatever interv refuses, and nothing else. Each subclass also derives from the built-in
exception its callers would expect (``ValueError`` for bad values, ``KeyError`` for unknown
names, ``FileNotFoundError`` for missing files...), so code written against those keeps
working. Messages name the field or input that is wrong and say how to fix it; when interv
raises, the model it was given is unchanged.

This module imports nothing of interv: every package, ``interv.adapters`` included, may raise
these.

Example:
    >>> from interv.errors import ConfigError, IntervError
    >>> issubclass(ConfigError, IntervError) and issubclass(ConfigError, ValueError)
    True
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class IntervError(Exception):
    """The base of every error interv raises."""


class ConfigError(IntervError, ValueError):
    """Hyperparameters, a recipe, a workflow config or an argument with a wrong value."""


class UnknownKeyError(ConfigError):
    """A configuration key that does not exist; the message names the closest valid keys."""

    def __init__(self, where: str, key: str, valid: Iterable[str]):
        valid = sorted(valid)
        close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        super().__init__(f"{where}: unknown key {key!r}.{hint} Valid keys: {', '.join(valid)}.")
        self.key = key
        self.suggestions = close


class UnknownNameError(IntervError, KeyError):
    """A name (hook, weight, method, dataset...) that does not exist; the message lists the
    closest valid names."""

    def __init__(
        self, kind: str, name: str, valid: Iterable[str], *, listing: str = "", noun: str = "name"
    ):
        valid = list(valid)
        close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
        if not close:
            suffix = name.rsplit(".", 1)[-1]
            close = [v for v in valid if v.endswith("." + suffix) or v == suffix][:5]
        hint = f" Closest valid names: {', '.join(close)}." if close else ""
        where = listing or f"See model.{kind}_names() for all of them."
        what = f"{kind} {noun}" if noun else kind
        super().__init__(f"Unknown {what} {name!r}.{hint} {where}".rstrip())
        self.kind = kind
        self.name = name
        self.suggestions = close

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class UnsupportedArchitectureError(IntervError, ValueError):
    """A model family without an entry in interv's architecture table."""


class UnsupportedError(IntervError, NotImplementedError):
    """A capability a backend or model does not have (callers may fall back)."""


class ModelMismatchError(IntervError, ValueError):
    """An artefact (patch, vector, graph, SAE) made for another model."""


class PatchError(IntervError, ValueError):
    """A weight patch that cannot be built, applied, reverted or read."""


class GraphError(IntervError, ValueError):
    """An intervention graph that cannot be built, compiled, folded, saved or loaded."""


class SteeringError(IntervError, ValueError):
    """Steering data, a steering artefact or an apply spec that cannot be used."""


class SAEError(IntervError, ValueError):
    """A sparse autoencoder that cannot be loaded, trained or used as asked."""


class RequestError(IntervError, ValueError):
    """An edit request that cannot be carried out (an empty target, a subject not in the
    prompt...)."""


class EditError(IntervError, ValueError):
    """An edit that cannot be computed with these hyperparameters on this model."""


class DataError(IntervError, ValueError):
    """A dataset or record in the wrong shape, or an unknown dataset name."""


class ArtefactError(IntervError, ValueError):
    """A saved file (patch, vector, graph, statistics) that is corrupt or of another format."""


class MissingFileError(IntervError, FileNotFoundError):
    """A file or folder interv was pointed at that does not exist."""


class CacheError(IntervError, RuntimeError):
    """A model cache folder that is missing files or does not match its checksums."""


class ProvisionError(IntervError, OSError):
    """A model that could not be provisioned or loaded."""


class UnavailableError(IntervError, ImportError):
    """Something interv cannot provide here: a package that is not installed, or an EasyEdit
    class for a method interv does not have."""


class MissingAttributeError(IntervError, AttributeError):
    """An attribute that does not exist (interv's lazy modules and EasyEdit facades)."""


class WrongTypeError(IntervError, TypeError):
    """An argument of the wrong type (e.g. hyperparameters of another method)."""


class HookError(IntervError, ValueError):
    """A hook function that returned something other than None or a tensor of the
    activation's shape."""


class StopForward(IntervError):
    """Not an error: raised by a hook to end a forward early (``stop_at_layer``); the backend
    catches it."""


__all__ = [
    "ArtefactError",
    "CacheError",
    "ConfigError",
    "DataError",
    "EditError",
    "GraphError",
    "HookError",
    "IntervError",
    "MissingAttributeError",
    "MissingFileError",
    "ModelMismatchError",
    "PatchError",
    "ProvisionError",
    "RequestError",
    "SAEError",
    "SteeringError",
    "StopForward",
    "UnavailableError",
    "UnknownKeyError",
    "UnknownNameError",
    "UnsupportedArchitectureError",
    "UnsupportedError",
    "WrongTypeError",
]
