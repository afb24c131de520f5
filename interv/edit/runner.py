"""Edit a list of requests and score every edit: the loop behind ``interv edit`` and the
EasyEdit facade.

Protocol (EasyEdit's, with PR #687's sequential fix):

1. ``pre`` metrics for every request, on the model as it is (batched, once).
2. Requests are edited one at a time (``batch_size=1``) or in chunks of ``batch_size`` for a
   batchable method; each chunk's patch is applied and the chunk is scored right after its
   own edit (``post``, locality against ``pre``). Independent single edits are computed a few
   at a time where the method can share work between them (``EditMethod.compute_each``); each
   patch is the one its request would get alone.
3. ``sequential=False``: the patch is reverted after scoring, so every edit is judged against
   the unedited model. ``sequential=True``: patches stay applied and later edits build on them.

The result holds every patch set computed, in order. After a sequential run they are still
applied to the model (revert any of them to undo it; the later ones are rebased); after a
non-sequential run the model is exactly as before, and ``PatchSet.combine(result.patches)`` is
the patch with all edits.
If anything fails mid-run, the patches applied by the run are reverted before the error
propagates, so the model is left unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..adapters import HookedModel
from ..adaptor import FORMATS, Adaptor
from ..errors import ConfigError, PatchError
from ..files import tagged_format
from ..patch import PatchSet
from ..requests import EditRequest
from .base import EDIT_METHODS, EditMethod

log = logging.getLogger(__name__)

Result = dict[str, Any]
Evaluator = Callable[..., list[Result]]  # (model, requests, reference=None) -> per-request dicts
Edit = PatchSet | Adaptor  # what an editing method computes


def combine_edits(parts: Sequence[Edit]) -> Edit:
    """One edit with the effect of ``parts``: a merged patch set, or one adaptor holding every
    part's edits (all parts of one kind)."""
    kinds = {type(p) for p in parts}
    if len(kinds) > 1:
        names = ", ".join(sorted(k.__name__ for k in kinds))
        raise PatchError(
            f"Cannot combine edits of different kinds ({names}); apply them one after another."
        )
    if parts and isinstance(parts[0], Adaptor):
        return type(parts[0]).combine(parts)
    return PatchSet.combine(parts)  # type: ignore[arg-type]


def load_edit(path: str | Path) -> Edit:
    """A saved edit: a weight patch, or an adaptor (a SERAC memory), by its file's format."""
    EDIT_METHODS.names()  # the method modules register their adaptors' formats
    adaptor = FORMATS.get(tagged_format(path) or "")
    return adaptor.load(path) if adaptor is not None else PatchSet.load(path)


def file_name(edit: Edit) -> str:
    """What ``interv edit`` calls the file of an edit."""
    return edit.file_name if isinstance(edit, Adaptor) else "patch.safetensors"


@dataclass
class RunResult:
    """Per-request records ``{"case_id", "requested_rewrite", "time", "pre", "post"}`` and
    patches."""

    records: list[Result]
    patches: list[Edit]
    sequential: bool
    seconds: dict[str, float] = field(default_factory=dict)

    def combined(self) -> Edit:
        return combine_edits(self.patches)


def run_edits(
    model: HookedModel,
    method: EditMethod,
    requests: Sequence[EditRequest],
    evaluate: Evaluator,
    *,
    sequential: bool = False,
    batch_size: int = 1,
    pre: Sequence[Result] | None = None,
    progress: bool = False,
) -> RunResult:
    """Edit ``requests`` with ``method`` and score each edit (see the module docstring)."""
    _check_run(method, len(requests), batch_size, pre)
    start = time.perf_counter()
    method.prepare(model)
    seconds = {"stats": time.perf_counter() - start}
    start = time.perf_counter()
    pre = list(pre) if pre is not None else evaluate(model, requests)
    seconds["eval_pre"] = time.perf_counter() - start
    records: list[Result] = []
    patches: list[Edit] = []
    applied: list[Edit] = []
    edit_total = eval_post = 0.0
    try:
        computed = _patches(model, method, requests, sequential, batch_size, progress)
        for chunk, patch, took in computed:
            edit_total += took
            applied.append(patch.apply(model))
            start = time.perf_counter()
            post = evaluate(model, [requests[i] for i in chunk], reference=[pre[i] for i in chunk])
            eval_post += time.perf_counter() - start
            if not sequential:
                applied.pop().revert(model)
            patches.append(patch)
            for k, i in enumerate(chunk):
                records.append(
                    {
                        "case_id": i,
                        "requested_rewrite": requested_rewrite(requests[i]),
                        "time": took,
                        "pre": pre[i],
                        "post": post[k],
                    }
                )
    except BaseException:
        for patch in reversed(applied):
            patch.revert(model)
        raise
    seconds.update(
        edit_total=edit_total, per_edit=edit_total / max(1, len(requests)), eval_post=eval_post
    )
    return RunResult(records, patches, sequential, seconds)


def _patches(
    model: HookedModel,
    method: EditMethod,
    requests: Sequence[EditRequest],
    sequential: bool,
    batch_size: int,
    progress: bool,
) -> Iterator[tuple[range, Edit, float]]:
    """Each chunk of requests with its patch and the seconds it took. Independent single edits
    (not ``sequential``) are computed ``method.independent_group`` at a time with
    ``compute_each``, each taking an equal share of the group's time; the next group is computed
    when the caller has reverted the last patch, so every edit still starts from the unedited
    model."""
    group = 1 if sequential or batch_size > 1 else max(1, method.independent_group)
    size = batch_size * group
    bar = tqdm(total=len(requests), desc=f"{method.name} edits", disable=not progress)
    if progress:  # a long computation shows its optimisation steps beside the edit count
        method.on_step = lambda note: bar.set_postfix_str(note, refresh=True)
    try:
        yield from _computed(model, method, requests, group, size, bar)
    finally:
        method.on_step = None
        bar.close()


def _computed(
    model: HookedModel,
    method: EditMethod,
    requests: Sequence[EditRequest],
    group: int,
    size: int,
    bar: Any,
) -> Iterator[tuple[range, Edit, float]]:
    """``_patches`` without the progress bar's set-up."""
    for begin in range(0, len(requests), size):
        chunk = range(begin, min(begin + size, len(requests)))
        part = [requests[i] for i in chunk]
        start = time.perf_counter()
        if group == 1:
            patch = method.compute(model, part)
            took = time.perf_counter() - start
            bar.update(len(chunk))
            yield chunk, patch, took
            continue
        patches = method.compute_each(model, part)
        took = (time.perf_counter() - start) / len(part)
        for i, patch in zip(chunk, patches, strict=True):
            bar.update(1)
            yield range(i, i + 1), patch, took


def _check_run(method: EditMethod, n: int, batch_size: int, pre: Sequence[Result] | None) -> None:
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    if batch_size > 1 and not method.batchable:
        raise ConfigError(
            f"{method.name} edits one request at a time; use batch_size=1 (or a batchable method)."
        )
    if pre is not None and len(pre) != n:
        raise ConfigError(f"pre holds {len(pre)} results for {n} requests; pass one per request.")


def requested_rewrite(request: EditRequest) -> Result:
    """A request in EasyEdit's ``requested_rewrite`` layout (probe sets as prompt/answer lists)."""
    out = request.to_dict()
    if request.rephrase_prompts:
        out["rephrase_prompt"] = request.rephrase_prompts
    for section in ("locality", "portability"):
        out[section] = {
            name: {"prompt": [p for p, _ in pairs], "ground_truth": [a for _, a in pairs]}
            for name, pairs in getattr(request, section).items()
        }
    return out
