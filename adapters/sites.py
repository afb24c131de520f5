"""Bind an architecture entry to one model: concrete hook sites and weight views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from .architectures import Architecture
from .config import ModelConfig
from .layouts import canonical_view
from .names import UnknownNameError


@dataclass(frozen=True)
class BoundSite:
    """A canonical hook point of one model: its native module and how to read/write it."""

    name: str
    layer: int | None
    order: int  # rank in execution order, used by backends that must visit hooks in order
    module: str
    port: str
    inplace: bool
    heads: int  # split the last dim into this many heads (0: no split)


def execution_order(templates: list[str], n_layers: int) -> list[tuple[str, int | None]]:
    """Expand templates listed in execution order into (template, layer) pairs.

    Templates before the first ``blocks.{i}`` one run before the blocks, the others after them.
    """
    block = [t for t in templates if t.startswith("blocks.{i}.")]
    first = templates.index(block[0]) if block else len(templates)
    before = [t for t in templates[:first] if t not in block]
    after = [t for t in templates[first:] if t not in block]
    return (
        [(t, None) for t in before]
        + [(t, i) for i in range(n_layers) for t in block]
        + [(t, None) for t in after]
    )


class HookTable:
    """Canonical hook names of one model, in execution order, with their native sites."""

    def __init__(self, arch: Architecture, hf_config: Any, cfg: ModelConfig):
        n_layers = cfg.n_layers
        templates = [
            t
            for t in arch.hooks
            if t not in arch.hook_conditions or arch.hook_conditions[t](hf_config)
        ]
        ordered = execution_order(templates, n_layers)
        self._sites: dict[str, BoundSite] = {}
        for rank, (template, layer) in enumerate(ordered):
            site = arch.hooks[template]
            name = template if layer is None else template.format(i=layer)
            module = site.module if layer is None else site.module.format(i=layer)
            self._sites[name] = BoundSite(
                name, layer, rank, module, site.port, site.inplace, cfg.n_heads if site.heads else 0
            )

    def names(self) -> list[str]:
        return list(self._sites)

    def __getitem__(self, name: str) -> BoundSite:
        try:
            return self._sites[name]
        except KeyError:
            raise UnknownNameError("hook", name, self._sites) from None

    def __contains__(self, name: object) -> bool:
        return name in self._sites


class WeightTable:
    """Canonical weight names of one model and their live, canonically oriented views."""

    def __init__(self, arch: Architecture, root: nn.Module, cfg: ModelConfig):
        # remove_duplicate=False keeps tied parameters (lm_head.weight) under every name.
        params = dict(root.named_parameters(remove_duplicate=False))
        self._cfg = cfg
        self._specs: dict[str, tuple[Tensor, tuple[str, ...], str]] = {}
        for template, layer in execution_order(list(arch.weights), cfg.n_layers):
            spec = arch.weights[template]
            layer_name = template if layer is None else template.format(i=layer)
            param_path = spec.param if layer is None else spec.param.format(i=layer)
            if param_path not in params:
                if spec.optional:
                    continue
                raise KeyError(
                    f"Architecture {arch.name!r} maps {layer_name!r} to {param_path!r}, "
                    "which this model does not have; the table entry is wrong for it."
                )
            self._specs[layer_name] = (params[param_path], spec.layout, param_path)

    def names(self) -> list[str]:
        return list(self._specs)

    def _spec(self, name: str) -> tuple[Tensor, tuple[str, ...], str]:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownNameError("weight", name, self._specs) from None

    def view(self, name: str) -> Tensor:
        param, layout, _ = self._spec(name)
        return canonical_view(param, layout, self._cfg)

    def native(self, name: str) -> tuple[str, Tensor]:
        """The native parameter path and parameter behind a canonical weight."""
        param, _, path = self._spec(name)
        return path, param

    def __contains__(self, name: object) -> bool:
        return name in self._specs
