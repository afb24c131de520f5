"""The activations a ``run_with_cache`` call recorded, keyed by canonical hook name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from jaxtyping import Float
from torch import Tensor

from .names import UnknownNameError


class ActivationCache(Mapping[str, Tensor]):
    """A read-only mapping ``hook name -> activation`` with helpful errors for unknown names."""

    def __init__(self, activations: dict[str, Tensor]):
        self._acts = activations

    def __getitem__(self, name: str) -> Tensor:
        try:
            return self._acts[name]
        except KeyError:
            raise UnknownNameError("cached hook", name, self._acts) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._acts)

    def __len__(self) -> int:
        return len(self._acts)

    def stack(self, template: str) -> Float[Tensor, "layer batch pos *features"]:
        """Stack a per-layer hook over the cached layers: ``stack("blocks.{i}.hook_resid_post")``
        gives ``[n_cached_layers, batch, pos, ...]`` in layer order."""
        names = [n for n in self._acts if _matches(template, n)]
        if not names:
            raise UnknownNameError("cached hook", template.format(i=0), self._acts)
        names.sort(key=lambda n: int(n.split(".")[1]))
        return torch.stack([self._acts[n] for n in names])

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} hooks: {', '.join(list(self._acts)[:4])}, ...)"


def _matches(template: str, name: str) -> bool:
    prefix, _, suffix = template.partition("{i}")
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return False
    middle = name[len(prefix) : len(name) - len(suffix)]
    return middle.isdigit()
