"""The value half of locate-then-edit: which activation makes the model say the new target.

For each request a vector ``delta`` is added to one hook's activation at the lookup token (ROME:
``blocks.L.hook_mlp_out``; MEMIT: ``blocks.L.hook_resid_post``) and optimised with Adam so that
the prompt, in every context template, continues with ``target_new``; a KL term keeps the
subject's next-token distribution on ``"{subject} is a"`` close to the original, a weight decay
keeps ``delta`` small, and ``delta`` is clamped to ``clamp_norm_factor`` times the norm of the
original activation. A request stops as soon as every template gives the target a
(geometric-mean per-token) probability of at least ``v_stop_prob``; the rest keep optimising.
Requests are optimised together in chunks (one forward per step for the whole chunk).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookContext, HookedModel
from ..adapters.backends import Batch, StopForward
from ..eval.tokens import answer_ids
from .base import EditRequest
from ._hparams import LocateHParams
from ._keys import Encoded, encode, gather, left_pad, subject_span, templated

log = logging.getLogger(__name__)


@dataclass
class ValueResult:
    """Per request: the optimised ``delta``, the original activation at the bare prompt
    (``init``) and its mean over the templates (``mean``), steps taken, final probability."""

    delta: Float[Tensor, "n d"]
    init: Float[Tensor, "n d"]
    mean: Float[Tensor, "n d"]
    steps: list[int]
    probs: list[float]


@dataclass
class _Problem:
    rows: list[tuple[int, ...]]  # rewriting rows (prompt + target[:-1]), then the KL row
    lookups: list[int]
    prompt_lens: list[int]  # for rewriting rows
    target: list[int]


@contextmanager
def frozen(model: HookedModel) -> Iterator[None]:
    """No parameter gradients while optimising an activation (saves the weight backward)."""
    params = list(model.hf_model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _problem(model: HookedModel, request: EditRequest, templates: Sequence[str], hp: LocateHParams,
             method: str) -> _Problem:
    target = answer_ids(model, request.target_new)
    rewrites = templated(model, request, templates, hp.fact_token, method)
    subject = request.require_subject(method)
    kl = encode(model, f"{subject} is a", (0, len(subject)), hp.fact_token)
    rows = [e.ids + tuple(target[:-1]) for e in rewrites] + [kl.ids]
    return _Problem(rows, [e.lookup for e in rewrites] + [kl.lookup], [len(e.ids) for e in rewrites], target)


class ValueCache:
    """Optimised values kept for reuse by methods that share the value objective (MEMIT,
    AlphaEdit and EMMET with the same z layer and value hyperparameters all optimise the same
    ``z``). Only used while no patch is applied, so a cached value always belongs to the
    model's original weights."""

    FIELDS = ("fact_token", "v_num_grad_steps", "v_lr", "v_weight_decay", "clamp_norm_factor",
              "kl_factor", "v_stop_prob")

    def __init__(self) -> None:
        self._store: dict[tuple, tuple[Tensor, Tensor, Tensor, int, float]] = {}
        self.hits = 0

    def key(self, model: HookedModel, request: EditRequest, site: str, templates: Sequence[str],
            hp: LocateHParams) -> tuple | None:
        if model.state.get("patch_stack"):
            return None
        settings = tuple(getattr(hp, f) for f in self.FIELDS)
        return (model.fingerprint(), site, tuple(templates), settings, request.prompt,
                request.subject, request.target_new)

    def get(self, key: tuple | None) -> tuple[Tensor, Tensor, Tensor, int, float] | None:
        found = self._store.get(key) if key is not None else None
        self.hits += found is not None
        return found

    def put(self, key: tuple | None, item: tuple[Tensor, Tensor, Tensor, int, float]) -> None:
        if key is not None:
            self._store[key] = item


def optimise_values(
    model: HookedModel,
    requests: Sequence[EditRequest],
    site: str,
    templates: Sequence[str],
    hp: LocateHParams,
    method: str,
    cache: ValueCache | None = None,
) -> ValueResult:
    """Optimise one ``delta`` per request at hook ``site`` (see the module docstring)."""
    keys = [cache.key(model, r, site, templates, hp) if cache else None for r in requests]
    found = [cache.get(k) if cache else None for k in keys]
    todo = [i for i, f in enumerate(found) if f is None]
    if todo:
        fresh = _optimise(model, [requests[i] for i in todo], site, templates, hp, method)
        for pos, i in enumerate(todo):
            found[i] = (fresh.delta[pos], fresh.init[pos], fresh.mean[pos], fresh.steps[pos], fresh.probs[pos])
            if cache:
                cache.put(keys[i], found[i])
    items = [f for f in found if f is not None]
    return ValueResult(torch.stack([f[0] for f in items]), torch.stack([f[1] for f in items]),
                       torch.stack([f[2] for f in items]), [f[3] for f in items], [f[4] for f in items])


def _optimise(model, requests, site, templates, hp, method) -> ValueResult:
    problems = [_problem(model, r, templates, hp, method) for r in requests]
    encoded = [Encoded(p.rows[i][: p.prompt_lens[i]], p.lookups[i]) for p in problems for i in range(len(templates))]
    layer = int(site.split(".")[1])
    acts = gather(model, encoded, [site], stop_at_layer=layer)[site].view(len(requests), len(templates), -1)
    init, mean = acts[:, 0], acts.mean(1)
    deltas = [torch.zeros_like(init[i], requires_grad=True) for i in range(len(requests))]
    steps, probs = [0] * len(requests), [0.0] * len(requests)
    with frozen(model):
        for begin in range(0, len(requests), hp.v_chunk_size):
            idx = list(range(begin, min(begin + hp.v_chunk_size, len(requests))))
            _optimise_chunk(model, [problems[i] for i in idx], [deltas[i] for i in idx],
                            init[idx], site, hp, steps, probs, idx)
    for i, request in enumerate(requests):
        if probs[i] < 0.5:
            log.warning("%s: %r -> %r reached probability %.2f only after %d steps; raise "
                        "v_num_grad_steps or v_lr, or pick another layer.", method, request.prompt,
                        request.target_new, probs[i], steps[i])
    delta = torch.stack([d.detach() for d in deltas])
    return ValueResult(delta, init, mean, steps, probs)


def _optimise_chunk(model, problems, deltas, init, site, hp, steps, probs, idx) -> None:
    opt = torch.optim.Adam(deltas, lr=hp.v_lr)
    readout = _Readout(model)
    active = list(range(len(problems)))
    kl_init: dict[int, Tensor] = {}
    max_norms = [hp.clamp_norm_factor * float(init[j].norm()) for j in range(len(problems))]
    for step in range(hp.v_num_grad_steps):
        opt.zero_grad(set_to_none=True)
        losses, row_probs = _forward_losses(model, readout, [problems[j] for j in active],
                                            [deltas[j] for j in active], site, hp,
                                            [init[j] for j in active], [kl_init.get(j) for j in active])
        for pos, j in enumerate(list(active)):
            kl_init.setdefault(j, row_probs[pos][1])
            probs[idx[j]], steps[idx[j]] = float(row_probs[pos][0].min()), step + 1
        done = {j for pos, j in enumerate(active) if probs[idx[j]] >= hp.v_stop_prob}
        if step == hp.v_num_grad_steps - 1 or len(done) == len(active):
            break
        keep = [pos for pos, j in enumerate(active) if j not in done]
        torch.stack([losses[pos] for pos in keep]).sum().backward()
        for j in done:  # finished requests keep their delta: no gradient, so Adam skips them
            deltas[j].grad = None
        opt.step()
        with torch.no_grad():
            for pos in keep:
                j = active[pos]
                norm = float(deltas[j].norm())
                if norm > max_norms[j]:
                    deltas[j].mul_(max_norms[j] / norm)
        active = [j for j in active if j not in done]


class _Readout:
    """Logits at chosen positions only: the final norm's output times ``W_U``, which skips the
    unembedding of every other position. The first forward also computes the model's own logits
    and falls back to them for good if the two disagree (e.g. a final logit soft-cap)."""

    def __init__(self, model: HookedModel):
        self.model = model
        names = set(model.weight_names())
        self.W_U = model.weight("unembed.W_U") if "unembed.W_U" in names else None
        self.b_U = model.weight("unembed.b_U") if "unembed.b_U" in names else None
        self.mode = "check" if self.W_U is not None and "ln_final.hook_normalized" in model.hook_names() else "full"

    def __call__(self, batch: Batch, hooks: dict, rows: Tensor, cols: Tensor) -> Tensor:
        if self.mode == "full":
            return self.model.forward(batch, hooks=hooks)[rows, cols]
        captured: list[Tensor] = []

        def capture(act: Tensor, ctx: HookContext) -> None:
            captured.append(act)
            if self.mode == "unembed":
                raise StopForward(ctx.name)

        logits = self.model.run_with_cache(batch, [], hooks={**hooks, "ln_final.hook_normalized": capture})[0]
        mine = captured[0][rows, cols] @ self.W_U
        if self.b_U is not None:
            mine = mine + self.b_U
        if self.mode == "check":
            full = logits[rows, cols]
            same = torch.allclose(mine.detach(), full.detach(), atol=1e-4 * float(full.detach().abs().max()), rtol=1e-4)
            log.debug("logit readout: %s", "unembedding chosen positions" if same else "full logits")
            self.mode = "unembed" if same else "full"
            return full
        return mine


def _forward_losses(model, readout, problems, deltas, site, hp, inits, kl_inits):
    """Per-request losses and (per-row target probabilities, KL log-probs) for one forward."""
    rows, lookups, owner = [], [], []
    for j, p in enumerate(problems):
        rows += p.rows
        lookups += p.lookups
        owner += [j] * len(p.rows)
    batch, offsets = left_pad(model, rows)
    row_idx = torch.arange(len(rows))
    col_idx = torch.tensor([o + lk for o, lk in zip(offsets, lookups)])
    stacked = torch.stack(deltas)[torch.tensor(owner)]

    def add_delta(act: Tensor, ctx: HookContext) -> Tensor:
        return act + act.new_zeros(act.shape).index_put((row_idx, col_idx), stacked)

    # positions to read: each rewriting row's target predictions, then each KL row's lookup
    read_r, read_c, r = [], [], 0
    for p in problems:
        for k, length in enumerate(p.prompt_lens):
            start = offsets[r + k] + length - 1
            read_r += [r + k] * len(p.target)
            read_c += list(range(start, start + len(p.target)))
        read_r.append(r + len(p.prompt_lens))
        read_c.append(offsets[r + len(p.prompt_lens)] + p.lookups[-1])
        r += len(p.rows)
    logp = F.log_softmax(readout(batch, {site: add_delta}, torch.tensor(read_r), torch.tensor(read_c)), -1)
    losses, stats, at = [], [], 0
    for j, p in enumerate(problems):
        n_rw, n_t = len(p.prompt_lens), len(p.target)
        picked = logp[at : at + n_rw * n_t].view(n_rw, n_t, -1)
        target = torch.tensor(p.target)
        nll_t = -picked[:, torch.arange(n_t), target].mean(1)
        kl_logp = logp[at + n_rw * n_t]
        at += n_rw * n_t + 1
        base = kl_inits[j] if kl_inits[j] is not None else kl_logp.detach()
        kl = F.kl_div(base, kl_logp, log_target=True, reduction="sum")
        decay = hp.v_weight_decay * deltas[j].norm() / inits[j].norm().clamp_min(1e-8) ** 2
        losses.append(nll_t.mean() + hp.kl_factor * kl + decay)
        stats.append((torch.exp(-nll_t.detach()), base))
    return losses, stats


def lookup_activation(
    model: HookedModel, requests: Sequence[EditRequest], site: str, fact_token: str, method: str
) -> Float[Tensor, "n d"]:
    """The activation at ``site`` at each bare prompt's lookup token."""
    encoded = [encode(model, r.prompt, subject_span(r, method), fact_token) for r in requests]
    layer = int(site.split(".")[1])
    return gather(model, encoded, [site], stop_at_layer=layer)[site]
