"""Bind an architecture entry to one model: concrete hook sites and weight views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from interv.errors import ConfigError, UnknownNameError, UnsupportedArchitectureError

from .architectures import Architecture
from .config import ModelConfig
from .layouts import canonical_view
from .names import template_of

# Feature dimensions of each hook's activation ``[batch, pos, *features]``; d_model unless listed.
_FEATURES: dict[str, tuple[str, ...]] = {
    "blocks.{i}.attn.hook_z": ("n_heads", "d_head"),
    "blocks.{i}.mlp.hook_pre": ("d_mlp",),
    "blocks.{i}.mlp.hook_pre_linear": ("d_mlp",),
    "blocks.{i}.mlp.hook_post": ("d_mlp",),
}


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
        self._cfg = cfg
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

    def shape(self, name: str) -> tuple[int, ...]:
        """Feature dimensions of the activation at ``name`` (after batch and position)."""
        self[name]  # unknown names fail here
        dims = _FEATURES.get(template_of(name)[0], ("d_model",))
        return tuple(int(getattr(self._cfg, d)) for d in dims)


class WeightTable:
    """Canonical weight names of one model and their live, canonically oriented views."""

    def __init__(self, arch: Architecture, root: nn.Module, cfg: ModelConfig):
        # remove_duplicate=False keeps tied parameters (lm_head.weight) under every name.
        params = dict(root.named_parameters(remove_duplicate=False))
        self._cfg = cfg
        self._root = root
        self._specs: dict[str, tuple[Tensor, tuple[str, ...], str]] = {}
        # Absent optional weights the model may grow as zeros: name -> (param path, dims, layout)
        self._creatable: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
        self._created: set[str] = set()
        for template, layer in execution_order(list(arch.weights), cfg.n_layers):
            spec = arch.weights[template]
            layer_name = template if layer is None else template.format(i=layer)
            param_path = spec.param if layer is None else spec.param.format(i=layer)
            if param_path not in params:
                if spec.zeros:
                    self._creatable[layer_name] = (param_path, spec.zeros, spec.layout)
                if spec.optional:
                    continue
                raise UnsupportedArchitectureError(
                    f"Architecture {arch.name!r} maps {layer_name!r} to {param_path!r}, "
                    "which this model does not have; the table entry is wrong for it (fix it "
                    f"in adapters/architectures/, or mark the weight optional)."
                )
            self._specs[layer_name] = (params[param_path], spec.layout, param_path)

    def names(self) -> list[str]:
        return list(self._specs)

    def _spec(self, name: str) -> tuple[Tensor, tuple[str, ...], str]:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownNameError("weight", name, self._specs) from None

    def view(self, name: str) -> Float[Tensor, "..."]:
        param, layout, _ = self._spec(name)
        return canonical_view(param, layout, self._cfg)

    def native(self, name: str) -> tuple[str, Float[Tensor, "..."]]:
        """The native parameter path and parameter behind a canonical weight."""
        param, _, path = self._spec(name)
        return path, param

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def shape(self, name: str) -> tuple[int, ...]:
        """Canonical shape of a weight, also of one that does not exist yet but can be created."""
        if name in self._creatable and name not in self._specs:
            return tuple(int(getattr(self._cfg, d)) for d in self._creatable[name][1])
        return tuple(self.view(name).shape)

    def ensure(self, name: str) -> bool:
        """Create an absent optional weight as zeros; True if it was created now."""
        if name in self._specs:
            return False
        if name not in self._creatable:
            raise UnknownNameError("weight", name, [*self._specs, *self._creatable])
        path, _, layout = self._creatable[name]
        module_path, _, attr = path.rpartition(".")
        module = self._root.get_submodule(module_path)
        like = next(module.parameters())
        param = nn.Parameter(torch.zeros(self.shape(name), dtype=like.dtype, device=like.device))
        param.requires_grad_(like.requires_grad)
        setattr(module, attr, param)
        self._specs[name] = (param, layout, path)
        self._created.add(name)
        return True

    def remove(self, name: str) -> None:
        """Remove a weight ``ensure`` created, restoring the module as it was loaded."""
        if name not in self._created:
            raise ConfigError(f"{name!r} was not created by interv, so it cannot be removed.")
        path = self._specs.pop(name)[2]
        module_path, _, attr = path.rpartition(".")
        setattr(self._root.get_submodule(module_path), attr, None)
        self._created.discard(name)

    def creatable(self) -> list[str]:
        return [n for n in self._creatable if n not in self._specs]
