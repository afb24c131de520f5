"""The value half of locate-then-edit: which activation makes the model say the new target.

For each request a vector ``delta`` is added to one hook's activation at the lookup token (ROME:
``blocks.L.hook_mlp_out``; MEMIT: ``blocks.L.hook_resid_post``) and optimised with Adam so that
the prompt, in every context template, continues with ``target_new`` (with ``subject_prompts``,
some templates hold a relation-free text about the subject instead); a KL term keeps the
subject's next-token distribution on ``"{subject} is a"`` close to the original, a weight decay
keeps ``delta`` small, and ``delta`` is clamped to ``clamp_norm_factor`` times the original
activation's mean norm over those rows. A request stops as soon as every row gives the
target a (geometric-mean per-token) probability of at least ``v_stop_prob``; the rest keep
optimising. With a rank-one write (``writes``), a row whose key the write does not reach
(``k·u`` under ``_rows.MIN_SHARE``) does not count: no step could change it.
Requests are optimised together in chunks (one forward per step for the whole chunk).

The tokens before the lookup token, which ``delta`` cannot affect, are run once: each step
runs only the rest of each row (see ``Runner``). (Optimising on the bare prompt first and on
the templates afterwards was tried and saves nothing: a delta fitted to the bare prompt falls
to probability ~0.1 in the templates and needs 4-7 more steps.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..adapters.frozen import frozen
from ..requests import EditRequest
from ..tokens import Encoded, answer_ids, encode
from ._hparams import LocateHParams
from ._keys import gather, templated
from ._rows import Problem, Runner
from ._templates import fill, subject_slots

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


def kl_prompt(model: HookedModel, request: EditRequest, fact_token: str, method: str) -> Encoded:
    """The KL term's text, ``"{subject} is a"``, encoded with its lookup token."""
    subject = request.require_subject(method)
    return encode(model, f"{subject} is a", (0, len(subject)), fact_token)


def value_prompts(
    model: HookedModel,
    request: EditRequest,
    templates: Sequence[str],
    hp: LocateHParams,
    method: str,
) -> list[Encoded]:
    """The texts whose continuation is optimised: in each context template, the edit prompt
    or a subject prompt (``_templates.subject_slots``)."""
    subject_prompts = hp.value_subject_prompts()
    slots = subject_slots(len(templates), len(subject_prompts))
    subject = request.require_subject(method)
    rows = []
    for template, slot in zip(templates, slots, strict=True):
        asked = request
        if slot is not None:
            asked = replace(request, prompt=fill(subject_prompts[slot], subject))
        rows += templated(model, asked, [template], hp.fact_token, method)
    return rows


def _problem(
    model: HookedModel,
    request: EditRequest,
    templates: Sequence[str],
    hp: LocateHParams,
    method: str,
) -> Problem:
    target = answer_ids(model, request.target_new)
    rewrites = value_prompts(model, request, templates, hp, method)
    kl = kl_prompt(model, request, hp.fact_token, method)
    # the KL term reads the lookup token itself, so the KL row ends there
    rows = [e.ids + tuple(target[:-1]) for e in rewrites] + [kl.ids[: kl.lookup + 1]]
    return Problem(
        rows, [e.lookup for e in rewrites] + [kl.lookup], [len(e.ids) for e in rewrites], target
    )


# one request's (delta, init, mean, steps, probability), as ``ValueResult`` holds them
ValueItem = tuple[Float[Tensor, " d"], Float[Tensor, " d"], Float[Tensor, " d"], int, float]


class ValueCache:
    """Optimised values kept for reuse by methods that share the value objective (MEMIT,
    AlphaEdit and EMMET with the same z layer and value hyperparameters all optimise the same
    ``z``). Only used while no patch is applied, so a cached value always belongs to the
    model's original weights."""

    FIELDS = (
        "fact_token",
        "v_num_grad_steps",
        "v_lr",
        "v_weight_decay",
        "clamp_norm_factor",
        "kl_factor",
        "v_stop_prob",
    )

    def __init__(self) -> None:
        self._store: dict[tuple, ValueItem] = {}
        self.hits = 0

    def key(
        self,
        model: HookedModel,
        request: EditRequest,
        site: str,
        templates: Sequence[str],
        hp: LocateHParams,
    ) -> tuple | None:
        if model.patches:
            return None
        settings = tuple(getattr(hp, f) for f in self.FIELDS) + (tuple(hp.value_subject_prompts()),)
        return (
            model.fingerprint(),
            site,
            tuple(templates),
            settings,
            request.prompt,
            request.subject,
            request.target_new,
        )

    def get(self, key: tuple | None) -> ValueItem | None:
        found = self._store.get(key) if key is not None else None
        self.hits += found is not None
        return found

    def put(self, key: tuple | None, item: ValueItem) -> None:
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
    writes: tuple[str, Sequence[Float[Tensor, " d_in"]]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ValueResult:
    """Optimise one ``delta`` per request at hook ``site`` (see the module docstring).

    ``writes = (key_hook, us)``: ``delta`` enters the way the rank-one edit ``W + u deltaᵀ``
    of the weight from ``key_hook`` to ``site`` adds it at the lookup token, ``(k·u) delta``
    for the row's key ``k`` there, so the edit gives each row what was optimised for it.
    Only the lookup token gets it, not every later position as the edit also does: there the
    optimiser would lean on the keys of the words after the subject, which every prompt
    shares. Such values are not cached. ``progress`` is told about every optimisation step.
    """
    use_cache = cache is not None and writes is None
    keys = [cache.key(model, r, site, templates, hp) if use_cache else None for r in requests]
    found = [cache.get(k) if use_cache else None for k in keys]
    todo = [i for i, f in enumerate(found) if f is None]
    if todo:
        fresh = _optimise(
            model,
            [requests[i] for i in todo],
            site,
            templates,
            hp,
            method,
            None if writes is None else (writes[0], [writes[1][i] for i in todo]),
            progress,
        )
        for pos, i in enumerate(todo):
            found[i] = (
                fresh.delta[pos],
                fresh.init[pos],
                fresh.mean[pos],
                fresh.steps[pos],
                fresh.probs[pos],
            )
            if use_cache:
                cache.put(keys[i], found[i])
    items = [f for f in found if f is not None]
    return ValueResult(
        torch.stack([f[0] for f in items]),
        torch.stack([f[1] for f in items]),
        torch.stack([f[2] for f in items]),
        [f[3] for f in items],
        [f[4] for f in items],
    )


def _optimise(model, requests, site, templates, hp, method, writes, progress) -> ValueResult:
    problems = [_problem(model, r, templates, hp, method) for r in requests]
    if writes is not None:
        for p, u in zip(problems, writes[1], strict=True):
            p.write = u.detach().float()
    encoded = [
        Encoded(p.rows[i][: p.prompt_lens[i]], p.lookups[i])
        for p in problems
        for i in range(len(templates))
    ]
    layer = names.layer_of(site)
    acts = gather(model, encoded, [site], stop_at_layer=layer)[site].view(
        len(requests), len(templates), -1
    )
    slots = subject_slots(len(templates), len(hp.value_subject_prompts()))
    init, mean = acts[:, 0], acts[:, [s is None for s in slots]].mean(1)  # the edit prompt's rows
    # the clamp and the decay are relative to the activation's usual size at the lookup token;
    # the bare prompt alone can mislead (a subject at the start of the prompt sits next to the
    # attention sink, where activations are a few times smaller than in any template)
    scale = acts.norm(dim=-1).mean(1)
    deltas = [torch.zeros_like(init[i], requires_grad=True) for i in range(len(requests))]
    steps, probs = [0] * len(requests), [0.0] * len(requests)
    # each request's rows are one packed row of the forward, padded to the chunk's longest:
    # requests of similar lengths share a chunk
    order = sorted(range(len(requests)), key=lambda i: problems[i].tokens())
    with frozen(model):
        for begin in range(0, len(requests), hp.v_chunk_size):
            idx = order[begin : begin + hp.v_chunk_size]
            _optimise_chunk(
                model,
                [problems[i] for i in idx],
                [deltas[i] for i in idx],
                scale[idx],
                (site, writes[0] if writes else None),
                hp,
                steps,
                probs,
                idx,
                progress,
            )
    for i, request in enumerate(requests):
        if probs[i] < 0.5:
            log.warning(
                "%s: %r -> %r reached probability %.2f only after %d steps; raise "
                "v_num_grad_steps or v_lr, or pick another layer.",
                method,
                request.prompt,
                request.target_new,
                probs[i],
                steps[i],
            )
    delta = torch.stack([d.detach() for d in deltas])
    return ValueResult(delta, init, mean, steps, probs)


def _optimise_chunk(model, problems, deltas, scale, sites, hp, steps, probs, idx, progress) -> None:
    opt = torch.optim.Adam(deltas, lr=hp.v_lr)
    runner = Runner(model, *sites)
    active = list(range(len(problems)))
    kl_init: dict[int, Tensor] = {}
    max_norms = [hp.clamp_norm_factor * float(scale[j]) for j in range(len(problems))]
    for step in range(hp.v_num_grad_steps):
        opt.zero_grad(set_to_none=True)
        current = [problems[j] for j in active]
        losses, row_probs = _losses(
            runner(current, [deltas[j] for j in active]),
            current,
            [deltas[j] for j in active],
            hp,
            [scale[j] for j in active],
            [kl_init.get(j) for j in active],
        )
        for pos, j in enumerate(active):
            kl_init.setdefault(j, row_probs[pos][1])
            row_p = row_probs[pos][0]
            reach = runner.reachable(pos, len(row_p))
            if reach is not None and reach.any():  # rows the edit cannot write do not count
                row_p = row_p[reach]
            probs[idx[j]], steps[idx[j]] = float(row_p.min()), step + 1
        done = {j for j in active if probs[idx[j]] >= hp.v_stop_prob}
        if progress is not None:
            progress(
                f"value step {step + 1}/{hp.v_num_grad_steps}, "
                f"{len(active) - len(done)} of {len(problems)} requests optimising"
            )
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


def _losses(logp, problems, deltas, hp, scales, kl_inits):
    """Per-request losses and (per-row target probabilities, KL log-probs) from one forward."""
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
        decay = hp.v_weight_decay * deltas[j].norm() / scales[j].clamp_min(1e-8) ** 2
        losses.append(nll_t.mean() + hp.kl_factor * kl + decay)
        stats.append((torch.exp(-nll_t.detach()), base))
    return losses, stats


def lookup_activation(
    model: HookedModel, requests: Sequence[EditRequest], site: str, fact_token: str, method: str
) -> Float[Tensor, "n d"]:
    """The activation at ``site`` at each bare prompt's lookup token."""
    encoded = [encode(model, r.prompt, r.subject_span(method), fact_token) for r in requests]
    layer = names.layer_of(site)
    return gather(model, encoded, [site], stop_at_layer=layer)[site]
