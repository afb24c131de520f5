"""The value half of locate-then-edit: which activation makes the model say the new target.

For each request a vector ``delta`` is added to one hook's activation at the lookup token (ROME:
``blocks.L.hook_mlp_out``; MEMIT: ``blocks.L.hook_resid_post``) and optimised with Adam so that
the prompt, in every context template, continues with ``target_new``; a KL term keeps the
subject's next-token distribution on ``"{subject} is a"`` close to the original, a weight decay
keeps ``delta`` small, and ``delta`` is clamped to ``clamp_norm_factor`` times the original
activation's mean norm over the templates. A request stops as soon as every template gives the
target a (geometric-mean per-token) probability of at least ``v_stop_prob``; the rest keep
optimising.
Requests are optimised together in chunks (one forward per step for the whole chunk).

The tokens before the lookup token, which ``delta`` cannot affect, are run once: each step
runs only the rest of each row (see ``_Runner``). (Optimising on the bare prompt first and on
the templates afterwards was tried and saves nothing: a delta fitted to the bare prompt falls
to probability ~0.1 in the templates and needs 4-7 more steps.)
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookContext, HookedModel
from ..adapters.backends import Batch, StopForward
from ..adapters.text import right_pad_ids
from ..eval.tokens import answer_ids
from ._hparams import LocateHParams
from ._keys import Encoded, encode, gather, left_pad, subject_span, templated
from .base import EditRequest

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
    write: Tensor | None = None  # u of a rank-one edit u deltaᵀ that delta enters through


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


def kl_prompt(model: HookedModel, request: EditRequest, fact_token: str, method: str) -> Encoded:
    """The KL term's text, ``"{subject} is a"``, encoded with its lookup token."""
    subject = request.require_subject(method)
    return encode(model, f"{subject} is a", (0, len(subject)), fact_token)


def _problem(model: HookedModel, request: EditRequest, templates: Sequence[str], hp: LocateHParams,
             method: str) -> _Problem:
    target = answer_ids(model, request.target_new)
    rewrites = templated(model, request, templates, hp.fact_token, method)
    kl = kl_prompt(model, request, hp.fact_token, method)
    # the KL term reads the lookup token itself, so the KL row ends there
    rows = [e.ids + tuple(target[:-1]) for e in rewrites] + [kl.ids[: kl.lookup + 1]]
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
    writes: tuple[str, Sequence[Float[Tensor, " d_in"]]] | None = None,
) -> ValueResult:
    """Optimise one ``delta`` per request at hook ``site`` (see the module docstring).

    ``writes = (key_hook, us)``: ``delta`` enters the way the rank-one edit ``W + u deltaᵀ``
    of the weight from ``key_hook`` to ``site`` adds it at the lookup token, ``(k·u) delta``
    for the row's key ``k`` there, so the edit gives each row what was optimised for it.
    (Adding ``(k·u) delta`` at every later position too, as the edit also does, was tried:
    the optimiser then leans on the keys of the words after the subject, which every prompt
    shares: CounterFact, 50 records, locality 0.95 -> 0.91, rephrase 0.55 -> 0.50.) Such
    values are not cached.
    """
    use_cache = cache is not None and writes is None
    keys = [cache.key(model, r, site, templates, hp) if use_cache else None for r in requests]
    found = [cache.get(k) if use_cache else None for k in keys]
    todo = [i for i, f in enumerate(found) if f is None]
    if todo:
        fresh = _optimise(model, [requests[i] for i in todo], site, templates, hp, method,
                          None if writes is None else (writes[0], [writes[1][i] for i in todo]))
        for pos, i in enumerate(todo):
            found[i] = (fresh.delta[pos], fresh.init[pos], fresh.mean[pos], fresh.steps[pos], fresh.probs[pos])
            if use_cache:
                cache.put(keys[i], found[i])
    items = [f for f in found if f is not None]
    return ValueResult(torch.stack([f[0] for f in items]), torch.stack([f[1] for f in items]),
                       torch.stack([f[2] for f in items]), [f[3] for f in items], [f[4] for f in items])


def _optimise(model, requests, site, templates, hp, method, writes) -> ValueResult:
    problems = [_problem(model, r, templates, hp, method) for r in requests]
    if writes is not None:
        for p, u in zip(problems, writes[1], strict=True):
            p.write = u.detach().float()
    encoded = [Encoded(p.rows[i][: p.prompt_lens[i]], p.lookups[i]) for p in problems for i in range(len(templates))]
    layer = int(site.split(".")[1])
    acts = gather(model, encoded, [site], stop_at_layer=layer)[site].view(len(requests), len(templates), -1)
    init, mean = acts[:, 0], acts.mean(1)
    # the clamp and the decay are relative to the activation's usual size at the lookup token;
    # the bare prompt alone can mislead (a subject at the start of the prompt sits next to the
    # attention sink, where activations are a few times smaller than in any template)
    scale = acts.norm(dim=-1).mean(1)
    deltas = [torch.zeros_like(init[i], requires_grad=True) for i in range(len(requests))]
    steps, probs = [0] * len(requests), [0.0] * len(requests)
    with frozen(model):
        for begin in range(0, len(requests), hp.v_chunk_size):
            idx = list(range(begin, min(begin + hp.v_chunk_size, len(requests))))
            _optimise_chunk(model, [problems[i] for i in idx], [deltas[i] for i in idx],
                            scale[idx], (site, writes[0] if writes else None), hp, steps, probs, idx)
    for i, request in enumerate(requests):
        if probs[i] < 0.5:
            log.warning("%s: %r -> %r reached probability %.2f only after %d steps; raise "
                        "v_num_grad_steps or v_lr, or pick another layer.", method, request.prompt,
                        request.target_new, probs[i], steps[i])
    delta = torch.stack([d.detach() for d in deltas])
    return ValueResult(delta, init, mean, steps, probs)


def _optimise_chunk(model, problems, deltas, scale, sites, hp, steps, probs, idx) -> None:
    opt = torch.optim.Adam(deltas, lr=hp.v_lr)
    runner = _Runner(model, *sites)
    active = list(range(len(problems)))
    kl_init: dict[int, Tensor] = {}
    max_norms = [hp.clamp_norm_factor * float(scale[j]) for j in range(len(problems))]
    for step in range(hp.v_num_grad_steps):
        opt.zero_grad(set_to_none=True)
        current = [problems[j] for j in active]
        losses, row_probs = _losses(runner(current, [deltas[j] for j in active]), current,
                                    [deltas[j] for j in active], hp, [scale[j] for j in active],
                                    [kl_init.get(j) for j in active])
        for pos, j in enumerate(active):
            kl_init.setdefault(j, row_probs[pos][1])
            probs[idx[j]], steps[idx[j]] = float(row_probs[pos][0].min()), step + 1
        done = {j for j in active if probs[idx[j]] >= hp.v_stop_prob}
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


@dataclass
class _Layout:
    """One forward over some problems' rows: the batch (whole rows left-padded, or, after a
    ``past`` prefix, the rows from their lookup token on, right-padded), the column of each
    row's lookup token, and the positions whose logits the losses read."""

    batch: Batch
    owner: Tensor  # row -> index of its problem
    writes: Tensor | None  # row -> its problem's u (rank-one writes only)
    delta_cols: Tensor
    read_rows: Tensor
    read_cols: Tensor


def _layout(model: HookedModel, problems: Sequence[_Problem], split: bool) -> _Layout:
    rows = [row for p in problems for row in p.rows]
    owner = torch.tensor([j for j, p in enumerate(problems) for _ in p.rows])
    writes = torch.stack([p.write for p in problems])[owner] if problems[0].write is not None else None
    lookups = [lookup for p in problems for lookup in p.lookups]
    if split:  # tokens before the lookup do not see delta: their keys and values are computed once
        past = model.prefill(left_pad(model, [r[:lk] for r, lk in zip(rows, lookups)])[0])
        batch = right_pad_ids([r[lk:] for r, lk in zip(rows, lookups)], model.tokenizer.pad_token_id,
                              model.device)
        batch.past = past
        shifts = [-lk for lk in lookups]
    else:
        batch, shifts = left_pad(model, rows)
    read_r, read_c, r = [], [], 0
    for p in problems:  # each rewriting row's target predictions, then the KL row's lookup
        for k, length in enumerate(p.prompt_lens):
            start = shifts[r + k] + length - 1
            read_r += [r + k] * len(p.target)
            read_c += list(range(start, start + len(p.target)))
        kl_row = r + len(p.prompt_lens)
        read_r.append(kl_row)
        read_c.append(shifts[kl_row] + p.lookups[-1])
        r += len(p.rows)
    return _Layout(batch, owner, writes, torch.tensor([s + lk for s, lk in zip(shifts, lookups)]),
                   torch.tensor(read_r), torch.tensor(read_c))


# per model: whether reusing prefix keys/values reproduced whole-row logits (checked once)
_CHECKED: weakref.WeakKeyDictionary[HookedModel, bool] = weakref.WeakKeyDictionary()


class _Runner:
    """Log-probabilities at the read positions of the active problems' rows with their deltas
    added at ``site``.

    Since delta enters at the lookup token, the tokens before it are the same at every step;
    their keys and values are computed once per set of active problems (``HookedModel.prefill``)
    and each step runs only the tokens from the lookup on, about a third of each row. The first
    layout is checked against a whole-row forward; on a mismatch or a backend without
    ``prefill`` every step runs whole rows.
    """

    def __init__(self, model: HookedModel, site: str, key_site: str | None = None):
        self.model, self.site, self.key_site = model, site, key_site
        self.readout = _Readout(model)
        self.split: bool | None = _CHECKED.get(model)
        self._active: tuple[int, ...] | None = None  # ids of the problems laid out
        self._layout: _Layout | None = None

    def __call__(self, problems: Sequence[_Problem], deltas: Sequence[Tensor]) -> Tensor:
        key = tuple(id(p) for p in problems)
        if self._layout is None or self._active != key:
            if self.split is None:
                self.split = _CHECKED[self.model] = self._check(problems)
            self._active, self._layout = key, _layout(self.model, problems, self.split)
        return self._run(self._layout, deltas)

    def _run(self, layout: _Layout, deltas: Sequence[Tensor], readout: _Readout | None = None) -> Tensor:
        """Deltas enter at each row's lookup token (with rank-one writes: times ``k·u`` there)."""
        stacked = torch.stack(list(deltas))[layout.owner]
        rows = torch.arange(len(layout.owner))
        keys: list[Tensor] = []

        def add_delta(act: Tensor, ctx: HookContext) -> Tensor:
            added = stacked
            if layout.writes is not None:
                shares = (keys[0][rows, layout.delta_cols] * layout.writes).sum(-1, keepdim=True)
                added = stacked * shares
            return act + act.new_zeros(act.shape).index_put((rows, layout.delta_cols), added)

        hooks = {self.site: add_delta}
        if layout.writes is not None:
            if self.key_site is None:
                raise ValueError("Rank-one writes need the key hook (writes=(key_hook, us)).")
            hooks[self.key_site] = lambda act, ctx: keys.append(act)
        logits = (readout or self.readout)(layout.batch, hooks, layout.read_rows, layout.read_cols)
        return F.log_softmax(logits, -1)

    @torch.no_grad()
    def _check(self, problems: Sequence[_Problem]) -> bool:
        zeros = [torch.zeros(self.model.cfg.d_model) for _ in problems]
        try:
            split = self._run(_layout(self.model, problems, True), zeros, _Readout(self.model))
        except NotImplementedError as err:
            log.debug("value optimisation runs whole rows: %s", err)
            return False
        whole = self._run(_layout(self.model, problems, False), zeros, _Readout(self.model))
        same = torch.allclose(split.exp(), whole.exp(), atol=1e-4)
        if not same:
            log.warning("Reusing prefix keys/values changed the logits (max prob. difference %.2g); "
                        "the value optimisation runs whole rows.", float((split.exp() - whole.exp()).abs().max()))
        return same


_READOUT: weakref.WeakKeyDictionary[HookedModel, str] = weakref.WeakKeyDictionary()


class _Readout:
    """Logits at chosen positions only: the final norm's output times ``W_U``, which skips the
    unembedding of every other position. The first forward also computes the model's own logits
    and falls back to them for good if the two disagree (e.g. a final logit soft-cap)."""

    def __init__(self, model: HookedModel):
        self.model = model
        names = set(model.weight_names())
        self.W_U = model.weight("unembed.W_U") if "unembed.W_U" in names else None
        self.b_U = model.weight("unembed.b_U") if "unembed.b_U" in names else None
        usable = self.W_U is not None and "ln_final.hook_normalized" in model.hook_names()
        self.mode = _READOUT.get(model, "check") if usable else "full"

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
            self.mode = _READOUT[self.model] = "unembed" if same else "full"
            return full
        return mine


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
    encoded = [encode(model, r.prompt, subject_span(r, method), fact_token) for r in requests]
    layer = int(site.split(".")[1])
    return gather(model, encoded, [site], stop_at_layer=layer)[site]
