"""Activations at one hook over a corpus: the training data of an SAE, cached on disk.

Each document is tokenized on its own (long ones are cut into windows of ``max_len`` tokens)
and run in length-sorted batches that stop after the hook's layer. The first token of every
window is skipped: it is the attention sink, whose residual norm is orders of magnitude above
the rest (22,704 vs about 150 at ``blocks.12.hook_resid_post`` of SmolLM2-135M), and one
such token would dominate the SAE's loss and its explained variance.

Reading activations is the expensive part of training on a CPU (an SAE step costs a fraction
of a forward), so they are collected once, stored in fp16 under
``$INTERV_HOME/sae_activations/`` and reused for every epoch and every later run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..adapters.text import left_pad_ids
from ..errors import SAEError
from ..files import atomic_path
from ..paths import interv_home
from . import corpus

log = logging.getLogger(__name__)

SKIP_FIRST = 1  # tokens skipped at the start of every window (the attention sink)


def windows(model: HookedModel, docs: Sequence[str], max_len: int = 128) -> list[list[int]]:
    """Token ids of each document, long documents cut into windows of ``max_len`` tokens."""
    out: list[list[int]] = []
    for doc in docs:
        ids = model.tokenizer(doc, add_special_tokens=True)["input_ids"]
        out += [ids[i : i + max_len] for i in range(0, len(ids), max_len)]
    return [w for w in out if len(w) > SKIP_FIRST]


def stop_layer(hook: str) -> int | None:
    """The last block a forward must run to reach ``hook`` (None: run everything)."""
    parts = hook.split(".")
    return int(parts[1]) if parts[0] == "blocks" and len(parts) > 1 else None


@torch.no_grad()
def iter_activations(
    model: HookedModel,
    hook: str,
    token_windows: Sequence[Sequence[int]],
    batch_size: int = 32,
    skip_first: int = SKIP_FIRST,
) -> Iterator[tuple[int, Float[Tensor, "pos d_in"]]]:
    """``(window index, activations of its tokens after the first skip_first)`` in
    length-sorted order; activations are flattened over the hook's feature dims."""
    order = sorted(range(len(token_windows)), key=lambda i: len(token_windows[i]))
    stop = stop_layer(hook)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(token_windows[i]) for i in chunk)
        batch = left_pad_ids(
            [token_windows[i] for i in chunk], model.tokenizer.pad_token_id, model.device
        )
        _, cache = model.run_with_cache(batch, [hook], stop_at_layer=stop)
        acts = cache[hook].flatten(2)
        for row, i in enumerate(chunk):
            first = width - len(token_windows[i]) + skip_first
            yield i, acts[row, first:].float().cpu()


def collect(
    model: HookedModel,
    hook: str,
    token_windows: Sequence[Sequence[int]],
    n_tokens: int,
    batch_size: int = 32,
    progress: bool = True,
) -> Float[Tensor, "n d_in"]:
    """Up to ``n_tokens`` activations (fp16) from the windows, in window order."""
    from tqdm.auto import tqdm

    budget, used, total = [], 0, 0
    for w in token_windows:  # the windows that fit the budget, in corpus order
        if total >= n_tokens:
            break
        budget.append(w)
        total += len(w) - SKIP_FIRST
    rows: list[Tensor | None] = [None] * len(budget)
    bar = tqdm(total=total, desc=f"Reading {hook}", unit="tok", disable=not progress)
    for i, acts in iter_activations(model, hook, budget, batch_size):
        rows[i] = acts.half()
        used += acts.shape[0]
        bar.update(acts.shape[0])
    bar.close()
    return torch.cat([r for r in rows if r is not None])[:n_tokens]


def cached(
    model: HookedModel,
    hook: str,
    docs: Sequence[str],
    n_tokens: int,
    *,
    max_len: int = 128,
    batch_size: int = 32,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Float[Tensor, "n d_in"]:
    """``collect`` on the documents' windows, stored once under ``cache_dir``."""
    from safetensors.torch import save_file

    key = {
        "model": model.fingerprint(),
        "hook": hook,
        "corpus": corpus.digest(list(docs)),
        "n_tokens": n_tokens,
        "max_len": max_len,
        "skip_first": SKIP_FIRST,
    }
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir if cache_dir is not None else interv_home() / "sae_activations"
    path = folder / f"{name}.safetensors"
    stored = {k: str(v) for k, v in key.items()}
    if path.is_file():
        found = _read_cache(path, stored)
        if found is not None:
            log.info("Reusing cached activations %s", path)
            return found
    acts = collect(model, hook, windows(model, docs, max_len), n_tokens, batch_size, progress)
    with atomic_path(path) as temporary:  # unique name: concurrent runs never share it
        save_file({"activations": acts.contiguous()}, str(temporary), metadata=stored)
    return acts


def _read_cache(path: Path, stored: dict[str, str]) -> Float[Tensor, "n d_in"] | None:
    """A cached activation matrix, if it is readable and is what its name says; else None
    (with a warning), so the activations are collected again."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            acts = handle.get_tensor("activations")
    except Exception as err:  # a torn or foreign file
        log.warning("Ignoring unreadable activation cache %s (%s); recomputing.", path, err)
        return None
    if metadata != stored or acts.dim() != 2 or not bool(torch.isfinite(acts).all()):
        log.warning("Ignoring activation cache %s: not the entry its name says; recomputing.", path)
        return None
    return acts


def batches(
    acts: Float[Tensor, "n d_in"], batch_size: int, seed: int = 0
) -> Iterator[Float[Tensor, "batch d_in"]]:
    """Endless float32 batches, reshuffled every epoch (sae-lens's DataProvider)."""
    if acts.shape[0] < batch_size:
        raise SAEError(
            f"Only {acts.shape[0]} activations for a batch of {batch_size}; use more tokens "
            "or a smaller batch."
        )
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(acts.shape[0], generator=generator)
        for start in range(0, acts.shape[0] - batch_size + 1, batch_size):
            yield acts[order[start : start + batch_size]].float()
