"""``HookedModel``: one interface, TransformerLens-style names, any backend.

Every adapted model exposes the same hook points (``blocks.3.hook_resid_post``...) and weights
(``blocks.3.mlp.W_out``...), whether it runs on plain ``transformers`` (``backend="hf"``), on
TransformerLens's ``TransformerBridge`` or inside an nnsight trace.

Example:
    >>> import interv
    >>> model = interv.load()  # doctest: +SKIP
    >>> logits, cache = model.run_with_cache("The capital of France is",
    ...                                      ["blocks.10.hook_resid_post"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from threading import RLock
from typing import Any, Protocol, runtime_checkable

import torch
from jaxtyping import Float
from torch import Tensor, nn

from . import identity
from .active import ActiveHooks
from .applied import AppliedPatches
from .architectures import architecture_for
from .backends import Backend, Batch, HookPlan, Prefix, build_backend, canonical_backend
from .bounds import check_length, continuation, fit_prompt, stop_hook
from .cache import ActivationCache
from .config import read_config
from .generation import generation_config
from .routing import route_batch
from .run import HookContext, HookFn, RunTracker
from .sites import HookTable, WeightTable
from .text import Inputs, decode_new, ensure_pad_token, prompt_texts, to_batch

HookSpec = Mapping[str, HookFn] | Iterable[tuple[str, HookFn]]


@runtime_checkable
class HookSource(Protocol):
    """Anything that compiles itself to hook functions for a model (``interv.graph.Graph``).

    ``hook_fns`` validates against the model (names, widths...) and raises before any forward.
    """

    def hook_fns(self, model: HookedModel) -> Sequence[tuple[str, HookFn]]: ...


class HookedModel:
    """A language model with canonical hook points and weight names on a chosen backend."""

    def __init__(self, hf_model: nn.Module, tokenizer: Any, *, backend: str = "hf", name: str = ""):
        hf_config = hf_model.config
        arch = architecture_for(hf_config.model_type)
        self.tokenizer = tokenizer
        ensure_pad_token(tokenizer)
        self.cfg = read_config(
            hf_config, arch.name, name or hf_config.name_or_path, arch.parallel_attn_mlp(hf_config)
        )
        self.backend_name = canonical_backend(backend)
        hf_model.eval()
        # Tables are built from the untouched module tree: the TransformerLens bridge rewraps
        # modules, but the parameters stay the same objects.
        self._hooks = HookTable(arch, hf_config, self.cfg)
        self._weights = WeightTable(arch, hf_model, self.cfg)
        # Native names of every saved tensor, for save_pretrained on backends that rewrap modules.
        self._native_state = hf_model.state_dict(keep_vars=True)
        self._tracker = RunTracker()
        self._backend: Backend = build_backend(
            self.backend_name, hf_model, tokenizer, arch, self._tracker
        )
        self._active = ActiveHooks()
        # The weights' identity as loaded, before any patch changes them.
        self._sample = identity.sample_values(self.weight("embed.W_E"))
        self._fingerprint = identity.fingerprint(self.cfg, self._sample)
        self._legacy_fingerprint = identity.legacy_fingerprint(self.cfg, self.weight("embed.W_E"))
        self.patches = AppliedPatches()  # weight patches applied to this model, oldest first
        self._resets: list[Callable[[], None]] = []

    # ----------------------------------------------------------------- names and weights
    @property
    def hf_model(self) -> nn.Module:
        """The underlying ``transformers`` model (its parameters are the live weights)."""
        return self._backend.hf_model

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def device(self) -> torch.device:
        return next(self.hf_model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.hf_model.parameters()).dtype

    def hook_names(self) -> list[str]:
        """Canonical hook points, in execution order."""
        return self._hooks.names()

    def weight_names(self) -> list[str]:
        return self._weights.names()

    def weight(self, name: str) -> Float[Tensor, "..."]:
        """The live weight in canonical orientation (see ``interv.adapters.layouts``).

        The tensor is a view of the model's parameter: writing into it changes the model. With
        tied embeddings ``unembed.W_U`` is a transposed view of ``embed.W_E``.
        """
        return self._weights.view(name)

    def native_weight(self, name: str) -> tuple[str, Float[Tensor, "..."]]:
        """The native parameter path and parameter behind a canonical weight name."""
        return self._weights.native(name)

    def weight_shape(self, name: str) -> tuple[int, ...]:
        """Canonical shape of a weight, including optional biases not created yet."""
        return self._weights.shape(name)

    def ensure_weight(self, name: str) -> bool:
        """Create an optional bias the model lacks (e.g. Llama's ``mlp.b_out``) as zeros.

        Returns True when it was created now; weight patches use this and remove the bias again
        on revert (``drop_weight``), so the model ends up exactly as loaded.
        """
        return self._weights.ensure(name)

    def drop_weight(self, name: str) -> None:
        """Remove a weight that ``ensure_weight`` created."""
        self._weights.remove(name)

    def hook_shape(self, name: str) -> tuple[int, ...]:
        """Feature dims of the activation at a hook: ``(d_model,)``, ``(n_heads, d_head)``..."""
        return self._hooks.shape(name)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Save the live weights as a normal ``transformers`` checkpoint (config, safetensors,
        tokenizer).

        Works on every backend: tensors are saved under the native names the model had when it
        was loaded (the TransformerLens bridge renames wrapped modules), tied embeddings once.
        """
        folder = Path(folder)
        state = {name: tensor.detach() for name, tensor in self._native_state.items()}
        self.hf_model.save_pretrained(folder, state_dict=state)
        self.tokenizer.save_pretrained(folder)
        return folder

    def fingerprint(self) -> str:
        """Identifies the model's weights as loaded, the same for every dtype and device that
        holds them at float32 or bfloat16 precision (see ``interv.adapters.identity``)."""
        return self._fingerprint

    def weight_sample(self) -> tuple[Float[Tensor, " n"], str]:
        """The weight values that identify this model (read when it was loaded) and the dtype
        they were read at; ``interv.record.ModelRecord`` compares them."""
        return self._sample.clone(), identity.dtype_name(self.dtype)

    def legacy_fingerprint(self) -> str:
        """The fingerprint files written before interv 0.2 carry (dtype-specific)."""
        return self._legacy_fingerprint

    def to(self, device: str | torch.device) -> HookedModel:
        self._backend.to(torch.device(device))
        return self

    # ----------------------------------------------------------------------- hooks
    @property
    def lock(self) -> RLock:
        """Held by every forward, prefill and generation, and by applying or reverting a patch:
        calls from several threads run one at a time (see ``interv.adapters.active``)."""
        return self._active.lock

    def active_hooks(self) -> list[tuple[str, HookFn]]:
        """Hook functions of the ``model.hooks``/``model.intervene`` blocks open in this
        thread or asyncio task, oldest first."""
        return self._active.pairs()

    def _plan(self, hooks: HookSpec | None) -> HookPlan:
        pairs = self._active.pairs() + _pairs(hooks)
        plan: dict[str, tuple[Any, list[HookFn]]] = {}
        for name, fn in pairs:
            site = self._hooks[name]  # unknown names fail here, before any forward
            plan.setdefault(name, (site, []))[1].append(fn)
        return plan

    def _with_graph(
        self, graph: HookSource | None, hooks: HookSpec | None
    ) -> list[tuple[str, Any]]:
        self._active.refuse_active(graph)
        pairs = list(graph.hook_fns(self)) if graph is not None else []
        return pairs + _pairs(hooks)

    @contextmanager
    def intervene(self, graph: HookSource) -> Iterator[HookedModel]:
        """Keep an intervention graph active for every forward and generation inside the block.

        Example:
            >>> with model.intervene(graph):  # doctest: +SKIP
            ...     model.generate("Tell me about your day.")
        """
        pairs = list(graph.hook_fns(self))
        self._plan(pairs)
        with self._active.block(pairs, graph):  # refuses a graph already active here
            yield self

    @contextmanager
    def hooks(self, fwd_hooks: HookSpec) -> Iterator[HookedModel]:
        """Keep hook functions active for every forward and generation inside the block."""
        pairs = _pairs(fwd_hooks)
        self._plan(pairs)  # validate names now
        with self._active.block(pairs):
            yield self

    def on_reset(self, clear: Callable[[], None]) -> None:
        """Have ``reset_all`` call ``clear`` (a workflow applier forgets its steering)."""
        if clear not in self._resets:
            self._resets.append(clear)

    def reset_all(self) -> None:
        """EasyEdit2's ``model.reset_all()``: clear the steering that ``BaseVectorApplier``
        set for this model. Weight patches and adaptors stay applied (revert them), and the
        hooks of an open ``with model.hooks(...)`` block stay until the block ends."""
        for clear in self._resets:
            clear()

    # --------------------------------------------------------------------- running
    def to_batch(self, inputs: Inputs) -> Batch:
        return to_batch(self.tokenizer, inputs, self.device)

    def forward(
        self,
        inputs: Inputs,
        *,
        hooks: HookSpec | None = None,
        graph: HookSource | None = None,
        past: Prefix | None = None,
    ) -> Float[Tensor, "batch pos d_vocab"]:
        """Logits for a prompt, a list of prompts (left-padded), token ids or an encoding.

        ``graph`` (an intervention graph) runs before ``hooks`` at the same hook point. With
        ``past`` (from ``prefill``) the inputs continue those prefixes: right-padded token ids,
        one row per prefix row; the logits cover the continuation only.
        """
        plan = self._plan(self._with_graph(graph, hooks))
        with self.lock:
            batch, shift = self._routed(inputs, past)
            logits = self._backend.forward(batch, plan)
        assert logits is not None  # only stop_at_layer ends a forward early
        return logits[:, shift:]

    __call__ = forward

    def prefill(
        self, inputs: Inputs, *, hooks: HookSpec | None = None, stop_at_layer: int | None = None
    ) -> Prefix:
        """Run left-padded prefixes once and keep every layer's keys and values, so that later
        ``forward(..., past=prefix)`` calls only pay for the tokens after them.

        With ``stop_at_layer=L`` only blocks ``0..L`` run and keep keys and values; such a
        prefix serves ``run_with_cache(..., past=prefix, stop_at_layer=L' <= L)`` only.
        Raises ``NotImplementedError`` on backends or caches that cannot (nnsight, sliding-window
        attention); callers fall back to full forwards. ``prefix.select(rows)`` keeps some rows
        (to continue a subset without prefilling again).
        """
        extra = [] if stop_at_layer is None else [stop_hook(self.cfg, stop_at_layer)]
        plan = self._plan(self._with_graph(None, hooks) + extra)
        with self.lock:
            return self._backend.prefill(self._routed(inputs, None)[0], plan)

    def _routed(
        self, inputs: Inputs, past: Prefix | None, stop_at_layer: int | None = None
    ) -> tuple[Batch, int]:
        """The batch with routed contexts put in, its column shift, checked against n_ctx."""
        batch, shift = route_batch(self, self._batch(inputs, past, stop_at_layer))
        held = 0 if batch.past is None else batch.past.attention_mask.shape[1]
        check_length(self.cfg, held + batch.input_ids.shape[1])
        return batch, shift

    def _batch(
        self, inputs: Inputs, past: Prefix | None, stop_at_layer: int | None = None
    ) -> Batch:
        batch = self.to_batch(inputs)
        return batch if past is None else continuation(self.cfg, batch, past, stop_at_layer)

    def run_with_hooks(
        self, inputs: Inputs, fwd_hooks: HookSpec
    ) -> Float[Tensor, "batch pos d_vocab"]:
        return self.forward(inputs, hooks=fwd_hooks)

    def run_with_cache(
        self,
        inputs: Inputs,
        names: Sequence[str] | str | None = None,
        *,
        hooks: HookSpec | None = None,
        stop_at_layer: int | None = None,
        graph: HookSource | None = None,
        past: Prefix | None = None,
    ) -> tuple[Float[Tensor, "batch pos d_vocab"] | None, ActivationCache]:
        """Run and record activations at ``names`` (all hooks when None).

        With ``stop_at_layer=L`` the forward ends after block ``L`` and the logits are None,
        which saves the cost of the layers above the deepest one you need. With a ``graph`` the
        cache holds the activations after the graph's interventions at each hook.
        """
        wanted = (
            self.hook_names()
            if names is None
            else [names]
            if isinstance(names, str)
            else list(names)
        )
        store: dict[str, Tensor] = {}

        def record(act: Float[Tensor, "batch pos *features"], ctx: HookContext) -> None:
            store[ctx.name] = act[:, shift:].detach().clone()

        extra: list[tuple[str, HookFn]] = [(n, record) for n in wanted]
        if stop_at_layer is not None:
            extra.append(stop_hook(self.cfg, stop_at_layer))
        plan = self._plan(self._with_graph(graph, hooks) + extra)
        with self.lock:
            batch, shift = self._routed(inputs, past, stop_at_layer)
            logits = self._backend.forward(batch, plan)
        logits = None if logits is None else logits[:, shift:]
        order = {n: i for i, n in enumerate(self.hook_names())}
        return logits, ActivationCache(dict(sorted(store.items(), key=lambda kv: order[kv[0]])))

    def generate(
        self,
        prompts: str | Sequence[str],
        *,
        max_new_tokens: int = 40,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int | None = None,
        chat_template: bool = False,
        system_prompt: str | None = None,
        seed: int | None = None,
        hooks: HookSpec | None = None,
        graph: HookSource | None = None,
        truncate: bool = False,
        **generation_kwargs: Any,
    ) -> list[str]:
        """Batched, left-padded generation; returns the new text of each prompt.

        ``chat_template`` wraps each prompt as a user turn (after ``system_prompt``). Extra
        keyword arguments are ``transformers.GenerationConfig`` fields (``repetition_penalty``,
        ``num_beams``, ``max_time`` in seconds...); unknown ones are an error. ``graph`` steers
        every step. A prompt plus ``max_new_tokens`` beyond the context window is refused, or,
        with ``truncate=True``, the prompts keep their last tokens that fit (with a warning).
        """
        plan = self._plan(self._with_graph(graph, hooks))  # graph errors come before any work
        texts = prompt_texts(self.tokenizer, prompts, chat_template, system_prompt)
        config = generation_config(
            self.tokenizer,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            extra=generation_kwargs,
            seed=seed,
        )
        prompt = to_batch(self.tokenizer, texts, self.device, templated=chat_template)
        prompt = fit_prompt(self.cfg, prompt, max_new_tokens, truncate)
        with self.lock, torch.no_grad():
            if seed is not None:  # under the lock: another thread's sampling cannot draw first
                torch.manual_seed(seed)
            batch, _ = route_batch(self, prompt)
            check_length(self.cfg, batch.input_ids.shape[1], max_new_tokens)
            ids = self._backend.generate(batch, plan, {"generation_config": config})
        return decode_new(self.tokenizer, ids, batch.input_ids.shape[1])

    def __repr__(self) -> str:
        c = self.cfg
        return (
            f"HookedModel({c.name!r}, backend={self.backend_name!r}, arch={c.architecture}, "
            f"n_layers={c.n_layers}, d_model={c.d_model})"
        )


def _pairs(hooks: HookSpec | None) -> list[tuple[str, HookFn]]:
    if hooks is None:
        return []
    return list(hooks.items()) if isinstance(hooks, Mapping) else list(hooks)
