"""The ``transformer_lens`` backend: TransformerLens 3's ``TransformerBridge`` hook points.

The bridge wraps the native ``transformers`` modules in place and exposes TransformerLens
hook points; canonical names map onto bridge hook names one to one except where an
architecture entry's ``tl_names`` says otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jaxtyping import Float
from torch import Tensor, nn

from ..architectures import Architecture
from ..names import template_of
from ..run import HookFn, RunTracker
from ..sites import BoundSite
from .base import HookPlan, ModuleRunner, run_site

log = logging.getLogger(__name__)

# The bridge's own ``hook_normalized`` is taken before a norm's weight (TransformerLens's RMSNorm
# convention); interv's canonical ``*.hook_normalized`` is the norm's output, what the next
# layer reads, which the bridge calls ``hook_out``.
_BRIDGE_NAMES = {
    "blocks.{i}.ln1.hook_normalized": "blocks.{i}.ln1.hook_out",
    "blocks.{i}.ln2.hook_normalized": "blocks.{i}.ln2.hook_out",
    "ln_final.hook_normalized": "ln_final.hook_out",
}


class TransformerLensBackend(ModuleRunner):
    name = "transformer_lens"

    def __init__(
        self, hf_model: nn.Module, tokenizer: Any, arch: Architecture, tracker: RunTracker
    ):
        from transformer_lens.model_bridge import TransformerBridge

        self.hf_model = hf_model
        self._arch = arch
        self._tracker = tracker
        param = next(hf_model.parameters())
        source = getattr(tokenizer, "name_or_path", None) or hf_model.config.name_or_path
        self.bridge = TransformerBridge.boot_transformers(
            source, hf_model=hf_model, tokenizer=tokenizer, device=param.device, dtype=param.dtype
        )
        self._root_handle = tracker.attach(hf_model)

    def bridge_name(self, site: BoundSite) -> str:
        template, layer = template_of(site.name)
        mapped = self._arch.tl_names.get(template) or _BRIDGE_NAMES.get(template, template)
        return mapped if layer is None else mapped.format(i=layer)

    def _hook(self, site: BoundSite, fns: list[HookFn]) -> Any:
        # The bridge already presents attn.hook_z per head.
        flat = dataclasses.replace(site, heads=0)

        def hook(
            act: Float[Tensor, "batch pos *features"], hook: Any
        ) -> Float[Tensor, "batch pos *features"]:
            new = run_site(flat, fns, self._tracker, act)
            if site.inplace and new is not act:
                act.copy_(new)
                return act
            return new

        return hook

    @contextmanager
    def installed(self, plan: HookPlan) -> Iterator[None]:
        hooks = [(self.bridge_name(site), self._hook(site, fns)) for site, fns in plan.values()]
        with self.bridge.hooks(fwd_hooks=hooks):
            yield

    def to(self, device: Any) -> None:
        self.bridge.to(device)
