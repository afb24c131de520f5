"""Layer statistics: the uncentred second moment ``E[k kᵀ]`` of a weight's input keys.

ROME, MEMIT, AlphaEdit and EMMET weigh an edit against what a weight normally sees: the second
moment of its inputs over ordinary text (for ``blocks.L.mlp.W_out`` the keys are
``blocks.L.mlp.hook_post``). interv streams a corpus through the model once for any number of
weights, stops the forward after the deepest layer needed, and caches each result on disk under
``$INTERV_HOME/stats`` keyed by the model fingerprint and dtype, the weight, the corpus hash, the
token count and the context length (safetensors). Following Gupta et al. (2025), about 10·d_in
tokens suffice, so the default of 100k tokens takes about a minute on a laptop CPU instead of the
hours a full Wikipedia pass takes.

Example:
    >>> import interv
    >>> from interv.stats import layer_stats
    >>> model = interv.load()  # doctest: +SKIP
    >>> stats = layer_stats(model, ["blocks.5.mlp.W_out"])  # doctest: +SKIP
    >>> stats["blocks.5.mlp.W_out"].mom2.shape  # doctest: +SKIP
    torch.Size([1536, 1536])
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from .adapters import HookContext, HookedModel, names
from .adapters.text import left_pad_ids
from .data.corpus import Corpus, load_corpus
from .errors import ConfigError, DataError, IntervError, UnknownNameError
from .files import read_tagged, write_tagged
from .linalg import SecondMoment, null_space_projector
from .paths import interv_home

log = logging.getLogger(__name__)

# weight within a block -> the hook holding its input, and whether that hook is split into heads
_KEY_HOOKS = {
    "mlp.W_out": ("mlp.hook_post", False),
    "mlp.W_in": ("ln2.hook_normalized", False),
    "mlp.W_gate": ("ln2.hook_normalized", False),
    "attn.W_Q": ("ln1.hook_normalized", False),
    "attn.W_K": ("ln1.hook_normalized", False),
    "attn.W_V": ("ln1.hook_normalized", False),
    "attn.W_O": ("attn.hook_z", True),
}
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
STATS_FORMAT, NULL_SPACE_FORMAT = "interv.stats", "interv.nullspace"  # cache file tags
CACHE_VERSION = 1


@dataclass
class LayerStats:
    """Second moment and mean of one weight's inputs over ``count`` tokens."""

    weight: str
    mom2: Float[Tensor, "d d"]
    mean: Float[Tensor, " d"]
    count: int
    corpus: str
    seconds: float = 0.0  # time it took to compute (0 when read from the cache)


def key_hook(model: HookedModel, weight: str) -> tuple[str, int, bool]:
    """The hook whose activation is the input of ``weight``, its layer, and whether it has heads."""
    template, layer = names.template_of(weight)
    inside = template.removeprefix(names.BLOCK)
    if layer is None or inside not in _KEY_HOOKS:
        known = ", ".join(names.BLOCK + k for k in _KEY_HOOKS)
        raise ConfigError(f"No input statistics for weight {weight!r}; supported: {known}.")
    model.weight(weight)  # unknown weights (or layers out of range) fail with close matches
    suffix, heads = _KEY_HOOKS[inside]
    hook = names.hook(suffix, layer)
    if hook not in model.hook_names():
        raise UnknownNameError(
            "hook",
            hook,
            model.hook_names(),
            listing=f"({model.cfg.name} has no input hook for {weight!r}.)",
        )
    return hook, layer, heads


class StatsCache:
    """Second moments on disk: ``root/<fingerprint>-<model dtype>[-edited-<digest>]/<weight>/``
    ``<corpus>-n<tokens>-ctx<len>-<dtype>``."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else interv_home() / "stats"

    def folder(self, model: HookedModel, weight: str) -> Path:
        """Where the statistics of one weight of this model, at its dtype, are kept.

        A model carrying edits (``model.patches``: applied, or merged for good) computes other
        statistics than the model as loaded, so its entries live apart, under the digest of
        what it carries."""
        precision = str(model.dtype).removeprefix("torch.")
        edited = model.patches.digest()
        state = f"-edited-{edited[:16]}" if edited else ""
        return self.root / f"{model.fingerprint()}-{precision}{state}" / weight

    def path(
        self, model: HookedModel, weight: str, corpus: str, n_tokens: int, seq_len: int, dtype: str
    ) -> Path:
        name = f"{corpus}-n{n_tokens}-ctx{seq_len}-{dtype}.safetensors"
        return self.folder(model, weight) / name

    def load(
        self,
        path: Path,
        weight: str,
        dim: int,
        *,
        expect: Mapping[str, object] | None = None,
    ) -> LayerStats | None:
        """The entry at ``path`` if it is complete and what it claims to be (the weight, the
        shapes ``(dim, dim)`` and ``(dim,)``, its dtype, finite values, and every ``expect``
        metadata value); anything else is recomputed, with a warning, never trusted."""
        entry = _read_entry(path, STATS_FORMAT, "statistics")
        if entry is None:
            return None
        meta, tensors = entry
        mom2, mean = tensors.get("mom2"), tensors.get("mean")
        wanted = {"weight": weight, "complete": True, **(expect or {})}
        problem = _meta_problem(meta, wanted)
        if problem is None and (mom2 is None or mean is None):
            problem = "it lacks the mom2 or mean tensor"
        elif problem is None:
            problem = _tensor_problem({"mom2": (mom2, (dim, dim)), "mean": (mean, (dim,))}, meta)
        if problem is None and (not isinstance(meta.get("count"), int) or meta["count"] < 1):
            problem = f"its token count is {meta.get('count')!r}"
        if problem is not None:
            log.warning("Ignoring statistics file %s: %s; recomputing.", path, problem)
            return None
        assert mom2 is not None and mean is not None
        return LayerStats(weight, mom2, mean, int(meta["count"]), str(meta.get("corpus", "")))

    def save(self, path: Path, stats: LayerStats, extra: dict[str, object]) -> None:
        """Write one entry atomically under a unique temporary name (``write_tagged``), so
        processes computing the same statistics never share a half-written file."""
        meta = {
            "count": stats.count,
            "corpus": stats.corpus,
            "seconds": stats.seconds,
            "dtype": str(stats.mom2.dtype).removeprefix("torch."),
            "complete": True,
            **extra,
        }
        tensors = {"mom2": stats.mom2, "mean": stats.mean}
        write_tagged(path, tensors, STATS_FORMAT, CACHE_VERSION, meta)


def _read_entry(
    path: Path, fmt: str, kind: str
) -> tuple[dict[str, object], dict[str, Tensor]] | None:
    """``(meta, tensors)`` of a cache file, or None (with a warning) if it is unreadable."""
    if not path.is_file():
        return None
    try:
        return read_tagged(path, fmt, CACHE_VERSION, f"{kind} cache entry")
    except IntervError as err:  # truncated, foreign, older: recompute rather than fail
        log.warning("Ignoring unreadable %s file %s (%s); recomputing.", kind, path, err)
        return None


def _meta_problem(meta: Mapping[str, object], wanted: Mapping[str, object]) -> str | None:
    for key, value in wanted.items():
        if meta.get(key) != value:
            return f"its metadata says {key}={meta.get(key)!r}, expected {value!r}"
    return None


def _tensor_problem(
    tensors: Mapping[str, tuple[Tensor, tuple[int, ...]]], meta: Mapping[str, object]
) -> str | None:
    for name, (tensor, shape) in tensors.items():
        dtype = str(tensor.dtype).removeprefix("torch.")
        if tuple(tensor.shape) != shape:
            return f"{name} has shape {tuple(tensor.shape)}, expected {shape}"
        if dtype != meta.get("dtype") or dtype not in _DTYPES:
            return f"{name} is {dtype}, its metadata says {meta.get('dtype')!r}"
        if not bool(torch.isfinite(tensor).all()):
            return f"{name} holds NaN or inf"
    return None


def token_rows(model: HookedModel, corpus: Corpus, n_tokens: int, seq_len: int) -> list[list[int]]:
    """The corpus's first ``n_tokens`` tokens packed into rows of ``seq_len`` (documents joined
    by the end-of-text token)."""
    tok = model.tokenizer
    sep = tok.eos_token_id
    stream: list[int] = []
    batch: list[str] = []
    for doc in corpus.documents():
        batch.append(doc)
        if len(batch) == 256:
            stream += _join(tok(batch, add_special_tokens=False)["input_ids"], sep)
            batch = []
            if len(stream) >= n_tokens:
                break
    if batch and len(stream) < n_tokens:
        stream += _join(tok(batch, add_special_tokens=False)["input_ids"], sep)
    if len(stream) < n_tokens:
        raise DataError(
            f"Corpus {corpus.name!r} has only {len(stream)} tokens; ask for at most that many "
            f"(mom2_n_samples / n_tokens) or use a larger corpus."
        )
    stream = stream[:n_tokens]
    return [stream[i : i + seq_len] for i in range(0, n_tokens, seq_len)]


def _join(docs: list[list[int]], sep: int | None) -> list[int]:
    out: list[int] = []
    for ids in docs:
        out += ids + ([sep] if sep is not None else [])
    return out


def layer_stats(
    model: HookedModel,
    weights: Sequence[str],
    corpus: Corpus | str | Path | None = None,
    n_tokens: int = 100_000,
    *,
    seq_len: int = 128,
    batch_size: int = 16,
    dtype: str = "float32",
    cache: StatsCache | None = None,
    progress: bool = True,
) -> dict[str, LayerStats]:
    """Second moments of the inputs of ``weights``, from the cache or from one corpus pass."""
    if n_tokens <= 0 or seq_len <= 0 or batch_size <= 0:
        raise ConfigError("n_tokens, seq_len and batch_size must be positive.")
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.")
    corpus = corpus if isinstance(corpus, Corpus) else load_corpus(corpus)
    cache = cache or StatsCache()
    hooks = {w: key_hook(model, w) for w in weights}
    digest = corpus.digest()
    paths = {w: cache.path(model, w, digest, n_tokens, seq_len, dtype) for w in weights}
    found: dict[str, LayerStats] = {}
    for w in weights:
        loaded = cache.load(paths[w], w, _input_dim(model, w))
        if loaded is not None:
            found[w] = loaded
    missing = [w for w in dict.fromkeys(weights) if w not in found]
    if missing:
        if model.patches:
            log.warning(
                "Computing statistics on a model carrying edits (model.patches): they describe "
                "the edited model and are cached apart from the original model's."
            )
        computed, seconds = _collect(
            model, {w: hooks[w] for w in missing}, corpus, n_tokens, seq_len, batch_size, progress
        )
        for w, moment in computed.items():
            stats = LayerStats(
                w,
                moment.moment().to(_DTYPES[dtype]),
                moment.mean().to(_DTYPES[dtype]),
                moment.count,
                corpus.name,
                seconds,
            )
            cache.save(
                paths[w],
                stats,
                {
                    "weight": w,
                    "hook": hooks[w][0],
                    "model": model.cfg.name,
                    "corpus_digest": digest,
                    "seq_len": seq_len,
                },
            )
            found[w] = stats
    return {w: found[w] for w in weights}


def _input_dim(model: HookedModel, weight: str) -> int:
    return (
        int(model.weight(weight).shape[-2])
        if not weight.endswith("attn.W_O")
        else model.cfg.n_heads * model.cfg.d_head
    )


@torch.no_grad()
def _collect(
    model: HookedModel,
    hooks: dict[str, tuple[str, int, bool]],
    corpus: Corpus,
    n_tokens: int,
    seq_len: int,
    batch_size: int,
    progress: bool,
) -> tuple[dict[str, SecondMoment], float]:
    """One pass over the corpus accumulating every requested hook's second moment."""
    start = time.perf_counter()
    rows = token_rows(model, corpus, n_tokens, seq_len)
    by_hook: dict[str, SecondMoment] = {}
    for weight, (hook, _, _) in hooks.items():
        if hook not in by_hook:
            by_hook[hook] = SecondMoment(_input_dim(model, weight), model.device)
    deepest = max(layer for _, layer, _ in hooks.values())
    mask_holder: list[Tensor] = []

    def accumulate(act: Float[Tensor, "batch pos *features"], ctx: HookContext) -> None:
        flat = (
            act.flatten(-2) if act.dim() == 4 else act
        )  # per-head hooks: [b, p, h, d] -> [b, p, h*d]
        by_hook[ctx.name].add(flat[mask_holder[0]])

    bar = tqdm(
        total=n_tokens, unit="tok", desc=f"layer stats ({len(hooks)} weights)", disable=not progress
    )
    for begin in range(0, len(rows), batch_size):
        chunk = rows[begin : begin + batch_size]
        batch = left_pad_ids(chunk, model.tokenizer.pad_token_id, model.device)
        mask_holder[:] = [batch.attention_mask.bool()]
        model.run_with_cache(
            batch, [], hooks={h: accumulate for h in by_hook}, stop_at_layer=deepest
        )
        bar.update(sum(len(r) for r in chunk))
    bar.close()
    seconds = time.perf_counter() - start
    log.info("layer stats: %d tokens, %d weights in %.1f s", n_tokens, len(hooks), seconds)
    return {w: by_hook[hook] for w, (hook, _, _) in hooks.items()}, seconds


def null_space(
    model: HookedModel,
    weight: str,
    moment: Float[Tensor, "d d"],
    threshold: float,
    cache: StatsCache | None = None,
) -> tuple[Float[Tensor, "d d"], int]:
    """AlphaEdit's projector onto the eigen-directions of ``moment`` below ``threshold``, cached
    next to the statistics (keyed by a hash of the moment itself), and its rank."""
    digest = hashlib.sha256(moment.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
    root = (cache or StatsCache()).folder(model, weight)
    path = root / f"nullspace-{digest}-t{threshold:g}.safetensors"
    dim = moment.shape[0]
    entry = _read_entry(path, NULL_SPACE_FORMAT, "projector")
    if entry is not None:
        meta, tensors = entry
        P, rank = tensors.get("P"), meta.get("rank")
        meta = {**meta, "dtype": str(moment.dtype).removeprefix("torch.")}
        problem = _meta_problem(meta, {"complete": True, "threshold": threshold})
        if problem is None and P is None:
            problem = "it lacks the P tensor"
        elif problem is None:
            problem = _tensor_problem({"P": (P, (dim, dim))}, meta)
        if problem is None and not (isinstance(rank, int) and 0 <= rank <= dim):
            problem = f"its rank is {rank!r}"
        if problem is None:
            assert P is not None and isinstance(rank, int)
            return P, rank
        log.warning("Ignoring projector file %s: %s; recomputing.", path, problem)
    P, rank = null_space_projector(moment, threshold)
    P = P.to(moment.dtype)
    meta = {"rank": int(rank), "threshold": threshold, "complete": True}
    write_tagged(path, {"P": P}, NULL_SPACE_FORMAT, CACHE_VERSION, meta)
    return P, rank
