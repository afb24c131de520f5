"""One forward over the rows of several value problems, with each problem's ``delta`` added at
its lookup tokens: the engine of the value optimisation in ``_values``.

The tokens before a row's lookup token cannot see ``delta``, so their keys and values are
computed once (``HookedModel.prefill``) and every step runs only the rest of each row; when some
problems finish, the others continue the same prefix (``Prefix.select``). The rows' rests are
packed into one sequence per problem (``Batch.segments``), as they are of very different lengths
(ROME's subject prompts end after one to three tokens, the edit prompt runs several words), so
right-padding them to the longest would spend much of each step on padding. (One sequence per
problem, not one for all: a single sequence would attend over every problem's prefixes.)
Logits are read only at the positions the losses need (``Readout``).
"""

from __future__ import annotations

import itertools
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from ..adapters import HookContext, HookedModel
from ..adapters.backends import Batch, Prefix, StopForward
from ..adapters.text import packed_ids
from ..errors import EditError
from ._keys import left_pad

log = logging.getLogger(__name__)


@dataclass
class Problem:
    rows: list[tuple[int, ...]]  # rewriting rows (prompt + target[:-1]), then the KL row
    lookups: list[int]
    prompt_lens: list[int]  # for rewriting rows
    target: list[int]
    write: Tensor | None = None  # u of a rank-one edit u deltaᵀ that delta enters through

    def tokens(self) -> int:
        """How many tokens a step runs for this problem (its rows from their lookup on)."""
        return sum(len(row) - lookup for row, lookup in zip(self.rows, self.lookups, strict=True))


@dataclass
class _Layout:
    """One forward over some problems' rows: the batch (whole rows left-padded, or, after a
    packed prefix of the tokens before each lookup, the rows from their lookup token on,
    packed into one sequence per problem), where each row's lookup token sits (``delta_rows``,
    ``delta_cols``), the positions whose logits the losses read, and which rows belong to
    each problem (``spans``: ``(start, stop)``)."""

    batch: Batch
    owner: Tensor  # row -> index of its problem
    writes: Tensor | None  # row -> its problem's u (rank-one writes only)
    delta_rows: Tensor
    delta_cols: Tensor
    read_rows: Tensor
    read_cols: Tensor
    spans: list[tuple[int, int]]


def _spans(sizes: Sequence[int]) -> list[tuple[int, int]]:
    ends = list(itertools.accumulate(sizes))
    return [(end - size, end) for size, end in zip(sizes, ends, strict=True)]


def _layout(
    model: HookedModel, problems: Sequence[Problem], split: bool, past: Prefix | None = None
) -> _Layout:
    """Whole rows left-padded, or (``split``) the tokens from each lookup on, packed, after the
    tokens before it, prefilled (or ``past``: those rows of an earlier prefill)."""
    rows = [row for p in problems for row in p.rows]
    owner = torch.tensor([j for j, p in enumerate(problems) for _ in p.rows])
    writes = None if problems[0].write is None else torch.stack([p.write for p in problems])[owner]
    lookups = [lookup for p in problems for lookup in p.lookups]
    if split:  # tokens before the lookup do not see delta: their keys and values are computed once
        # one batch row per problem: a row attends to its own problem's prefixes only
        sizes = [len(p.rows) for p in problems]
        heads = [r[:lk] for r, lk in zip(rows, lookups, strict=True)]
        tails = [r[lk:] for r, lk in zip(rows, lookups, strict=True)]
        batch, starts = packed_ids(tails, model.device, sizes)
        if past is None and any(heads):
            past = model.prefill(packed_ids(heads, model.device, sizes)[0])
        batch.past = past
        where = [b for b, _ in starts]
        shifts = [col - lk for (_, col), lk in zip(starts, lookups, strict=True)]
    else:
        (batch, shifts), where = left_pad(model, rows), list(range(len(rows)))
    read_r, read_c, r = [], [], 0
    for p in problems:  # each rewriting row's target predictions, then the KL row's lookup
        for k, length in enumerate(p.prompt_lens):
            start = shifts[r + k] + length - 1
            read_r += [where[r + k]] * len(p.target)
            read_c += list(range(start, start + len(p.target)))
        kl_row = r + len(p.prompt_lens)
        read_r.append(where[kl_row])
        read_c.append(shifts[kl_row] + p.lookups[-1])
        r += len(p.rows)
    delta_cols = torch.tensor([s + lk for s, lk in zip(shifts, lookups, strict=True)])
    return _Layout(
        batch,
        owner,
        writes,
        torch.tensor(where),
        delta_cols,
        torch.tensor(read_r),
        torch.tensor(read_c),
        _spans([len(p.rows) for p in problems]),
    )


# a row whose key gets less than this share of a rank-one write cannot be written by it (ROME's
# bare prompt when a start key was too costly to write: k·u = 0.0); it does not hold up stopping
MIN_SHARE = 0.25

# per model: whether reusing prefix keys/values reproduced whole-row logits (checked once)
_CHECKED: weakref.WeakKeyDictionary[HookedModel, bool] = weakref.WeakKeyDictionary()


class Runner:
    """Log-probabilities at the read positions of the active problems' rows with their deltas
    added at ``site``.

    Since delta enters at the lookup token, the tokens before it are the same at every step;
    their keys and values are computed once (``HookedModel.prefill``) and each step runs only
    the tokens from the lookup on, about a third of each row, packed per problem. When
    some problems finish, the rest continue the rows of that prefix. The first layout is checked
    against a whole-row forward; on a mismatch or a backend without ``prefill`` (or without
    packed attention masks) every step runs whole rows.
    """

    def __init__(self, model: HookedModel, site: str, key_site: str | None = None):
        self.model, self.site, self.key_site = model, site, key_site
        self.readout = Readout(model)
        self.split: bool | None = _CHECKED.get(model)
        self._active: tuple[int, ...] | None = None  # ids of the problems laid out
        self._layout: _Layout | None = None
        self._prefilled: tuple[list[int], _Layout] | None = None  # a layout with its own prefix
        self.shares: Tensor | None = None  # rank-one writes: each row's k·u in the last forward

    def __call__(
        self, problems: Sequence[Problem], deltas: Sequence[Float[Tensor, " d_model"]]
    ) -> Float[Tensor, "n d_vocab"]:
        key = tuple(id(p) for p in problems)
        if self._layout is None or self._active != key:
            if self.split is None:
                self.split = _CHECKED[self.model] = self._check(problems)
            self._active, self._layout = key, self._lay_out(problems)
        return self._run(self._layout, deltas)

    def reachable(self, pos: int, n_rows: int) -> Bool[Tensor, " rows"] | None:
        """Which of the first ``n_rows`` rows of active problem ``pos`` a rank-one write
        reaches (``k·u`` at least ``MIN_SHARE``); None without rank-one writes."""
        if self.shares is None or self._layout is None:
            return None
        start = self._layout.spans[pos][0]
        return self.shares[start : start + n_rows] >= MIN_SHARE

    def _lay_out(self, problems: Sequence[Problem]) -> _Layout:
        ids = [id(p) for p in problems]
        if self.split and self._prefilled is not None and set(ids) <= set(self._prefilled[0]):
            laid, layout = self._prefilled  # continue those problems' rows of the same prefix
            past, keep = layout.batch.past, torch.tensor([laid.index(i) for i in ids])
            return _layout(self.model, problems, True, None if past is None else past.select(keep))
        layout = _layout(self.model, problems, bool(self.split))
        if self.split:
            self._prefilled = (ids, layout)
        return layout

    def _run(
        self, layout: _Layout, deltas: Sequence[Tensor], readout: Readout | None = None
    ) -> Tensor:
        """Deltas enter at each row's lookup token (with rank-one writes: times ``k·u`` there)."""
        stacked = torch.stack(list(deltas))[layout.owner]
        at = (layout.delta_rows, layout.delta_cols)
        keys: list[Tensor] = []

        def add_delta(
            act: Float[Tensor, "batch pos d_model"], ctx: HookContext
        ) -> Float[Tensor, "batch pos d_model"]:
            added = stacked
            if layout.writes is not None:
                shares = (keys[0][at] * layout.writes).sum(-1, keepdim=True)
                self.shares = shares.detach()[:, 0]
                added = stacked * shares
            return act + act.new_zeros(act.shape).index_put(at, added)

        hooks = {self.site: add_delta}
        if layout.writes is not None:
            if self.key_site is None:
                raise EditError("Rank-one writes need the key hook (writes=(key_hook, us)).")
            hooks[self.key_site] = lambda act, ctx: keys.append(act)
        logits = (readout or self.readout)(layout.batch, hooks, layout.read_rows, layout.read_cols)
        return F.log_softmax(logits, -1)

    @torch.no_grad()
    def _check(self, problems: Sequence[Problem]) -> bool:
        zeros = [torch.zeros(self.model.cfg.d_model) for _ in problems]
        try:
            layout = _layout(self.model, problems, True)
        except NotImplementedError as err:
            log.debug("value optimisation runs whole rows: %s", err)
            return False
        split = self._run(layout, zeros, Readout(self.model)).exp()
        whole = self._run(_layout(self.model, problems, False), zeros, Readout(self.model)).exp()
        if not torch.allclose(split, whole, atol=1e-4):
            log.warning(
                "Reusing prefix keys/values changed the logits (max prob. difference "
                "%.2g); the value optimisation runs whole rows.",
                float((split - whole).abs().max()),
            )
            return False
        self._prefilled = ([id(p) for p in problems], layout)
        return True


_READOUT: weakref.WeakKeyDictionary[HookedModel, str] = weakref.WeakKeyDictionary()


class Readout:
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

    def __call__(
        self, batch: Batch, hooks: dict, rows: Int[Tensor, " n"], cols: Int[Tensor, " n"]
    ) -> Float[Tensor, "n d_vocab"]:
        if self.mode == "full":
            return self.model.forward(batch, hooks=hooks)[rows, cols]
        captured: list[Tensor] = []

        def capture(act: Float[Tensor, "batch pos d_model"], ctx: HookContext) -> None:
            captured.append(act)
            if self.mode == "unembed":
                raise StopForward(ctx.name)

        hooks = {**hooks, "ln_final.hook_normalized": capture}
        logits = self.model.run_with_cache(batch, [], hooks=hooks)[0]
        mine = captured[0][rows, cols] @ self.W_U
        if self.b_U is not None:
            mine = mine + self.b_U
        if self.mode == "check":
            full = logits[rows, cols]
            scale = float(full.detach().abs().max())
            same = torch.allclose(mine.detach(), full.detach(), atol=1e-4 * scale, rtol=1e-4)
            log.debug("logit readout: %s", "chosen positions" if same else "full logits")
            self.mode = _READOUT[self.model] = "unembed" if same else "full"
            return full
        return mine
