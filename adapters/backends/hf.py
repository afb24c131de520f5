"""The ``hf`` backend: plain ``transformers`` modules with torch forward hooks (the fast
default)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import nn

from ..run import HookFn, RunTracker
from ..sites import BoundSite
from .base import HookPlan, ModuleRunner, run_site


class HFBackend(ModuleRunner):
    name = "hf"

    def __init__(self, hf_model: nn.Module, tracker: RunTracker):
        self.hf_model = hf_model
        self._tracker = tracker
        self._modules = dict(hf_model.named_modules())
        self._root_handle = tracker.attach(hf_model)

    @contextmanager
    def installed(self, plan: HookPlan) -> Iterator[None]:
        """Torch hooks for the plan, removed on exit whatever happens inside."""
        handles: list[torch.utils.hooks.RemovableHandle] = []
        try:
            for site, fns in plan.values():
                module = self._modules[site.module]
                if site.port == "out":
                    hook = partial(self._on_output, site, fns)
                    handles.append(module.register_forward_hook(hook))
                else:
                    hook = partial(self._on_input, site, fns)
                    handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _on_output(
        self, site: BoundSite, fns: list[HookFn], module: nn.Module, args: Any, output: Any
    ) -> Any:
        primary = output[0] if isinstance(output, tuple) else output
        new = run_site(site, fns, self._tracker, primary)
        if new is primary:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    def _on_input(
        self,
        site: BoundSite,
        fns: list[HookFn],
        module: nn.Module,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        key = None if args else next(iter(kwargs))
        x = args[0] if args else kwargs[key]
        new = run_site(site, fns, self._tracker, x)
        if new is x:
            return None
        if site.inplace:
            x.copy_(new)
            return None
        if key is None:
            return (new, *args[1:]), kwargs
        return args, {**kwargs, key: new}

    def to(self, device: Any) -> None:
        self.hf_model.to(device)
