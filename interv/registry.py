"""Name -> implementation registries for editing and steering methods.

Built-in methods register themselves with a decorator in their own file; the registry imports
every module of its package the first time it is asked for a name, so adding a method touches
only its own file (plus its test and recipe). Third-party packages can register through the
``interv.<kind>`` entry-point group.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Methods of one kind (``"edit"``, ``"steer"``), looked up by lowercase id."""

    def __init__(self, kind: str, package: str):
        self.kind = kind
        self._package = package
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@EDIT_METHODS.register("rome")``."""

        def add(obj: T) -> T:
            key = name.lower()
            if key in self._items and self._items[key] is not obj:
                raise ConfigError(
                    f"{self.kind} method {key!r} is already registered; pick another name."
                )
            self._items[key] = obj
            return obj

        return add

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self._package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self._package}.{info.name}")
        for entry in importlib.metadata.entry_points(group=f"interv.{self.kind}"):
            self.register(entry.name)(entry.load())

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name.lower()]
        except KeyError:
            raise UnknownNameError(
                f"{self.kind} method",
                name,
                self.names(),
                noun="",
                listing=f"Known methods: {', '.join(self.names())}.",
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.names()
