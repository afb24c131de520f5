"""ROME: Rank-One Model Editing (Meng et al., 2022, https://arxiv.org/abs/2202.05262).

Causal tracing shows that a subject's attributes are recalled by mid-layer MLPs at the subject's
last token. ROME treats one MLP output weight ``W_out`` as a linear key-value memory: the key
``k*`` is the weight's input at the subject's last token (averaged over a few context prefixes),
the value ``v*`` is an output that makes the model say the new target (found by gradient descent
with a KL term that protects the subject's other properties), and the edit is the rank-one
update that maps ``k*`` to ``v*`` while disturbing other keys least, measured by the keys'
second moment ``C``: ``ΔW = C⁻¹k* rᵀ / (k*ᵀ C⁻¹ k*)``.

R-ROME (Gupta et al., 2024, https://arxiv.org/abs/2403.07175) found that the original code
computes the update direction from prefix-averaged keys but the value from the bare prompt's
key, an inconsistency that collapses models under sequential editing. interv uses consistent
prefix-averaged keys by default (``enable_random_prefix_keys``); ``enable_prompt_keys`` uses the
bare prompt's key on both sides, and ``original_implementation: true`` restores ROME's code.

Two interv refinements, both on by default (and off under ``original_implementation``).
``key_gains``: the rank-one edit ``u rᵀ`` adds ``(k·u) r`` to the output of a key ``k``, not
``r``, and the prompt's key in a template or alone differs from the averaged key, so interv
optimises the value with exactly that share at every row's lookup token and writes
``r = delta``: what the optimiser saw is what the edit does.
``start_key``: a subject that opens a text (most CounterFact prompts, many rephrasings, the KL
prompt) has no tokens before it; on a model without a BOS token its first token is the
attention sink and its key at the last subject token is its own, so the averaged key's
direction gives it only part of the edit. ``u`` is then the direction of least ``uᵀCu`` with
``k·u = 1`` for both the averaged key and that start key, unless that raises the edit's cost
``uᵀCu`` (the mean squared share other keys receive) more than ``start_key_max_cost`` times: a
short subject whose start key is small and generic would need an edit that reaches ordinary
words of other prompts; its bare prompt then gets no share and does not hold up the value
optimisation's stop test.

``subject_prompts``: the value is optimised on the edit prompt's own wording, so it learns to
answer that question, and paraphrases of the relation ("Arun Nehru is known for" after "The
profession of Arun Nehru is") often still give the old answer. interv's ROME puts relation-free
texts about the subject ("{}:", "Q: {}? A:", "{} is associated with") in the place of the edit
prompt in all context templates but the first two, so the value must make the subject itself
point to the new target, whatever is asked after it. None of these texts is one of
CounterFact's paraphrase templates. More rows must then reach the stop probability, so each
edit takes longer. Off with ``subject_prompts: []`` (and under ``original_implementation``).
docs/results.md measures each refinement (the commands to rerun them are there).

Example:
    >>> import interv
    >>> from interv.edit import EditRequest
    >>> from interv.edit.rome import ROME
    >>> model = interv.load()  # doctest: +SKIP
    >>> request = EditRequest(prompt="The Eiffel Tower is located in the city of",
    ...                       subject="Eiffel Tower", target_new="Rome")
    >>> with ROME().compute(model, [request]).applied(model):  # doctest: +SKIP
    ...     print(model.generate(request.prompt, max_new_tokens=5))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..adapters import HookedModel, names
from ..errors import ConfigError
from ..linalg import inverse_times, rank_one_update, shared_key_direction
from ..patch import PatchSet, WeightPatch
from ..requests import EditRequest
from ._keys import gather, templated
from ._values import kl_prompt
from .base import EDIT_METHODS
from .locate import LocateHParams, LocateMethod, ValueResult, optimise_values

log = logging.getLogger(__name__)

# relation-free texts about the subject (none of them is a CounterFact paraphrase template)
SUBJECT_PROMPTS = ("{}:", "Q: {}? A:", "{} is associated with")


def _cost(u: Tensor, moment: Tensor | None) -> Tensor:
    """``uᵀCu``: the mean squared share of the edit other keys receive."""
    if moment is None:
        return u @ u
    u = u.to(moment.dtype)  # a ratio of two costs is all that is read: C's own precision will do
    return u @ (moment @ u)


@dataclass(kw_only=True)
class ROMEHParams(LocateHParams):
    method = "rome"

    layers: list[int] | str = field(default_factory=lambda: [4])
    # ROME averages over more prefixes than MEMIT: on CounterFact (12 records, SmolLM2) adding
    # five 10-token prefixes to five 5-token ones raised locality from 0.92 to 1.0 and rephrase
    # from 0.38 to 0.46 at the same rewrite (1.0).
    context_template_length_params: list[list[int]] = field(
        default_factory=lambda: [[5, 5], [10, 5]]
    )
    # ROME's own value: its delta is one MLP's output, a few times smaller than the residual
    clamp_norm_factor: float = 4.0
    mom2_adjustment: bool = True
    original_implementation: bool = False
    enable_prompt_keys: bool = False
    enable_random_prefix_keys: bool = True
    # optimise the value with the edit's own gain on every row (module docstring; not under
    # original_implementation); off: ROME's and R-ROME's residuals, which assume every row's
    # key equals the edited key
    key_gains: bool = True
    # also write the subject's key at the start of a text (see the module docstring); needs
    # key_gains, and a subject lookup (fact_token subject_last or subject_first)
    start_key: bool = True
    # ...unless that raises the edit's cost uᵀCu more than this factor (module docstring)
    start_key_max_cost: float = 4.0
    # the subject in relation-free texts must continue with the target too (module docstring)
    subject_prompts: list[str] = field(default_factory=lambda: list(SUBJECT_PROMPTS))

    def value_subject_prompts(self) -> list[str]:
        return [] if self.original_implementation else super().value_subject_prompts()

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.layers, list) and len(self.layers) != 1:
            raise ConfigError(
                f"ROME edits one layer; got layers={self.layers}. Use MEMIT for several."
            )
        if (
            not self.original_implementation
            and self.enable_prompt_keys == self.enable_random_prefix_keys
        ):
            raise ConfigError(
                "Set exactly one of enable_prompt_keys and enable_random_prefix_keys "
                "(or original_implementation: true)."
            )
        if self.start_key_max_cost < 1:
            raise ConfigError(f"start_key_max_cost must be >= 1, got {self.start_key_max_cost}.")
        if self.start_key and not self.key_gains:
            raise ConfigError("start_key: true needs key_gains: true (set start_key: false).")


@EDIT_METHODS.register("rome")
class ROME(LocateMethod):
    """Rank-one edit of ``blocks.{L}.mlp.W_out``; several requests are edited one after another."""

    name = "rome"
    hparams_class = ROMEHParams
    batchable = False
    hparams: ROMEHParams

    def compute(self, model: HookedModel, requests: Sequence[EditRequest]) -> PatchSet:
        self.check(model, requests)
        layer, moment = self._layer(model, requests)
        patches: list[WeightPatch] = []
        applied: list[PatchSet] = []
        try:
            for i, request in enumerate(requests):
                direction = self._direction(model, request, layer, moment)
                values = self._values(model, [request], layer, [direction])
                patches.append(self._patch(layer, direction, values, 0))
                if i < len(requests) - 1:  # later requests are computed on top of earlier ones
                    applied.append(PatchSet([patches[-1]]).apply(model))
        finally:
            for done in reversed(applied):
                done.revert(model)
        return self.patch_set(model, requests, patches)

    def compute_each(self, model: HookedModel, requests: Sequence[EditRequest]) -> list[PatchSet]:
        """Independent edits, each the patch ``compute(model, [request])`` makes: the values
        are optimised together, ``v_chunk_size`` requests per forward, so the weights each step
        reads serve several edits."""
        self.check(model, requests)
        layer, moment = self._layer(model, requests)
        directions = [self._direction(model, request, layer, moment) for request in requests]
        values = self._values(model, requests, layer, directions)
        return [
            self.patch_set(model, [request], [self._patch(layer, direction, values, i)])
            for i, (request, direction) in enumerate(zip(requests, directions, strict=True))
        ]

    @property
    def independent_group(self) -> int:
        return self.hparams.v_chunk_size

    def _layer(
        self, model: HookedModel, requests: Sequence[EditRequest]
    ) -> tuple[int, Tensor | None]:
        layer = self.resolve_layers(model, requests, 1)[0]
        moment = self.second_moment(model, [layer])[layer] if self.hparams.mom2_adjustment else None
        return layer, moment

    def _direction(
        self, model: HookedModel, request: EditRequest, layer: int, moment: Tensor | None
    ) -> _Direction:
        hp = self.hparams
        templates = self.templates(model)
        post = names.hook("mlp.hook_post", layer)
        rows = templated(model, request, templates, hp.fact_token, self.name)
        rows.append(kl_prompt(model, request, hp.fact_token, self.name))
        keys = gather(model, rows, [post], layer)[post]  # the templates', then the KL prompt's
        key_avg, key_prompt = keys[:-1].mean(0), keys[0]
        prompt_keys = not hp.original_implementation and hp.enable_prompt_keys
        key = key_prompt if hp.original_implementation or prompt_keys else key_avg
        if not hp.key_gains or hp.original_implementation:
            u = key_prompt if prompt_keys else key_avg
            if moment is not None:
                u = inverse_times(moment, u[None])[0]
            return _Direction(u / u.norm(), key, gains=False)
        # ΔW = u rᵀ adds (k·u) r to the output of any key k: each row gets (k·u) delta at its
        # lookup token while optimising, and r = delta. With start_key, u is the least-C-norm
        # direction with k·u = 1 for the averaged key and the subject's key at the start of a
        # text (the KL prompt's)
        u = shared_key_direction(key[None], moment)
        if hp.start_key and hp.fact_token != "last":  # "last": the KL key is not the subject's
            both = shared_key_direction(torch.stack([key, keys[-1]]), moment)
            cost = float(_cost(both, moment) / _cost(u, moment))
            if cost <= hp.start_key_max_cost:
                u = both
            else:
                log.info(
                    "rome: %r: writing the key at the start of a text would cost %.1fx; "
                    "edited in context only",
                    request.subject,
                    cost,
                )
        return _Direction(u.to(keys.dtype), key, gains=True)

    def _values(
        self,
        model: HookedModel,
        requests: Sequence[EditRequest],
        layer: int,
        directions: Sequence[_Direction],
    ) -> ValueResult:
        writes = None
        if directions[0].gains:
            writes = (names.hook("mlp.hook_post", layer), [d.u for d in directions])
        values = optimise_values(
            model,
            requests,
            names.hook("mlp_out", layer),
            self.templates(model),
            self.hparams,
            self.name,
            self.value_cache,
            writes,
            progress=self.report,
        )
        self.last_values = values
        return values

    def _patch(self, layer: int, direction: _Direction, values: ValueResult, i: int) -> WeightPatch:
        hp = self.hparams
        delta, init, mean = values.delta[i], values.init[i], values.mean[i]
        if direction.gains or hp.original_implementation or hp.enable_prompt_keys:
            residual = delta  # target = output(key) + delta
        else:  # R-ROME: the averaged key must produce output(prompt) + delta
            residual = init + delta - mean
        U, V = rank_one_update(direction.u, direction.key, residual)
        return WeightPatch(names.weight("mlp.W_out", layer), U=U.float(), V=V.to(torch.float32))


@dataclass
class _Direction:
    """One request's edit direction ``u`` (``ΔW = u rᵀ``), the key it is computed for, and
    whether the value is optimised with each row's share ``k·u`` (``key_gains``)."""

    u: Tensor
    key: Tensor
    gains: bool
