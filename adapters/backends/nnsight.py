"""The ``nnsight`` backend: interventions written inside an nnsight trace.

nnsight runs the intervention code interleaved with the model, so sites are visited in
execution order (``BoundSite.order``); the same hook functions run at every generation step.
"""

from __future__ import annotations

import warnings
from typing import Any

from jaxtyping import Float, Int
from torch import Tensor, nn

from interv.errors import StopForward, UnsupportedError

from ..run import HookFn, RunTracker
from ..sites import BoundSite
from .base import Batch, HookPlan, Prefix, run_site


class NNsightBackend:
    name = "nnsight"

    def __init__(self, hf_model: nn.Module, tokenizer: Any, tracker: RunTracker):
        from nnsight.modeling.transformers import TransformersModel

        self.hf_model = hf_model
        self._tracker = tracker
        self.envoy = TransformersModel(hf_model, tokenizer=tokenizer)
        self._root_handle = tracker.attach(hf_model)

    def _intervene(self, ordered: list[tuple[BoundSite, list[HookFn]]]) -> None:
        for site, fns in ordered:
            module = self.envoy.get(site.module)
            if site.port == "out":
                output = module.output
                primary = output[0] if isinstance(output, tuple) else output
                new = run_site(site, fns, self._tracker, primary)
                if new is not primary:
                    module.output = (new, *output[1:]) if isinstance(output, tuple) else new
            else:
                x = module.input
                new = run_site(site, fns, self._tracker, x)
                if new is x:
                    continue
                if site.inplace:
                    x.copy_(new)
                else:
                    module.input = new

    @staticmethod
    def _ordered(plan: HookPlan) -> list[tuple[BoundSite, list[HookFn]]]:
        return sorted(plan.values(), key=lambda item: item[0].order)

    def forward(self, batch: Batch, plan: HookPlan) -> Float[Tensor, "batch pos d_vocab"] | None:
        ordered = self._ordered(plan)
        try:
            with self.envoy.trace(batch.model_kwargs(self.hf_model.dtype), use_cache=False):
                self._intervene(ordered)
                logits = self.envoy.output.logits.save()
        except StopForward:
            return None
        return logits

    def generate(
        self, batch: Batch, plan: HookPlan, generation: dict[str, Any]
    ) -> Int[Tensor, "batch pos"]:
        ordered = self._ordered(plan)
        inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        with warnings.catch_warnings():
            # An open `tracer.iter[:]` loop ends when generation does; nnsight warns by design.
            warnings.filterwarnings("ignore", message=".*was never reached.*")
            with self.envoy.generate(**generation) as tracer:
                with tracer.invoke(inputs):
                    if ordered:
                        for _ in tracer.iter[:]:
                            self._intervene(ordered)
                with tracer.invoke():
                    ids = tracer.result.save()
        return ids

    def prefill(self, batch: Batch, plan: HookPlan) -> Prefix:
        raise UnsupportedError("The nnsight backend does not reuse prefix keys and values.")

    def to(self, device: Any) -> None:
        self.hf_model.to(device)
