"""Causal tracing: which layers carry a fact about the subject (Meng et al., 2022, ROME §2).

Run a prompt cleanly and record every layer's hidden state at the subject's last token. Then
corrupt the subject by adding Gaussian noise to its token embeddings (``noise`` times the
embeddings' standard deviation), which makes the model forget the fact, and restore one site
at a time to its clean value: the residual stream after layer ``l`` (``resid``), or the MLP
outputs of a window of layers centred on ``l`` (``mlp``). The *indirect effect* of a site is how
much of the clean answer's probability the restoration brings back:
``P_restored(answer) - P_corrupted(answer)``, averaged over noise samples. The answer is the
first token of the request's ``ground_truth`` when it has one (the fact the model should know),
else the model's own top prediction. ROME edits the layer where the MLP effect peaks.

Example:
    >>> import interv
    >>> from interv.analysis.causal_trace import causal_trace
    >>> from interv.requests import EditRequest
    >>> model = interv.load()  # doctest: +SKIP
    >>> trace = causal_trace(model, [  # doctest: +SKIP
    ...     EditRequest(prompt="The Eiffel Tower is in the city of", subject="Eiffel Tower",
    ...                 target_new="x")])
    >>> trace.best_layer("mlp"), trace.plot("trace.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookContext, HookedModel, names
from ..errors import ConfigError
from ..requests import EditRequest
from ..tokens import answer_ids, encode

KINDS = ("resid", "mlp")
_SITES = {"resid": "resid_post", "mlp": "mlp_out"}  # the hook each kind restores


@dataclass
class CausalTrace:
    """Indirect effects ``[n_prompts, n_layers]`` per kind, plus clean and corrupted
    probabilities."""

    prompts: list[str]
    answers: list[str]
    effects: dict[str, Tensor]
    clean: Tensor
    corrupted: Tensor
    window: int = 1
    meta: dict[str, float] = field(default_factory=dict)

    def mean_effect(self, kind: str) -> Float[Tensor, " layer"]:
        return self.effects[kind].mean(0)

    def best_layer(self, kind: str = "mlp") -> int:
        return int(self.mean_effect(kind).argmax())

    def best_window(self, kind: str, count: int) -> list[int]:
        """The ``count`` consecutive layers with the largest summed mean effect."""
        effect = self.mean_effect(kind)
        count = min(count, len(effect))
        sums = torch.stack([effect[i : i + count].sum() for i in range(len(effect) - count + 1)])
        start = int(sums.argmax())
        return list(range(start, start + count))

    def to_dict(self) -> dict[str, object]:
        return {
            "prompts": self.prompts,
            "answers": self.answers,
            "clean": self.clean.tolist(),
            "corrupted": self.corrupted.tolist(),
            "effects": {k: v.tolist() for k, v in self.effects.items()},
            "window": self.window,
        }

    def plot(self, path: str | Path) -> Path:
        """A heatmap per kind (rows: prompts and their mean; columns: layers) saved as PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        kinds = list(self.effects)
        fig, axes = plt.subplots(
            1,
            len(kinds),
            figsize=(5 * len(kinds), 1.2 + 0.3 * (len(self.prompts) + 1)),
            squeeze=False,
        )
        labels = [p if len(p) < 40 else p[:37] + "..." for p in self.prompts] + ["mean"]
        for ax, kind in zip(axes[0], kinds, strict=True):
            grid = torch.cat([self.effects[kind], self.mean_effect(kind)[None]]).numpy()
            image = ax.imshow(grid, aspect="auto", cmap="Purples" if kind == "mlp" else "Blues")
            ax.set_title(
                f"restoring {kind}" + (f" (window {self.window})" if kind == "mlp" else "")
            )
            ax.set_xlabel("layer")
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
            fig.colorbar(image, ax=ax, label="P(answer) restored - corrupted")
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def causal_trace(
    model: HookedModel,
    requests: Sequence[EditRequest],
    *,
    kinds: Sequence[str] = KINDS,
    samples: int = 3,
    noise: float = 3.0,
    window: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> CausalTrace:
    """Trace each request's prompt (its ``subject`` is corrupted); see the module docstring."""
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ConfigError(f"kinds must be a non-empty subset of {KINDS}, got {list(kinds)}.")
    if samples < 1 or noise <= 0:
        raise ConfigError("samples must be >= 1 and noise > 0.")
    if not requests:
        raise ConfigError("causal_trace needs at least one prompt with a subject.")
    window = window or max(1, model.cfg.n_layers // 6)
    generator = torch.Generator().manual_seed(seed)
    rows: dict[str, list[Tensor]] = {k: [] for k in kinds}
    clean, corrupted, answers = [], [], []
    for request in requests:
        traced = _trace_one(model, request, kinds, samples, noise, window, generator, batch_size)
        for kind in kinds:
            rows[kind].append(traced[0][kind])
        clean.append(traced[1])
        corrupted.append(traced[2])
        answers.append(traced[3])
    effects = {k: torch.stack(v) for k, v in rows.items()}
    return CausalTrace(
        [r.prompt for r in requests],
        answers,
        effects,
        torch.tensor(clean),
        torch.tensor(corrupted),
        window,
    )


@torch.no_grad()
def _trace_one(model, request, kinds, samples, noise, window, generator, batch_size):
    n_layers = model.cfg.n_layers
    start, end = request.subject_span("causal tracing")
    enc = encode(model, request.prompt, (start, end), "subject_last")
    first = encode(model, request.prompt, (start, end), "subject_first").lookup
    ids = torch.tensor([enc.ids], device=model.device)
    sites = {names.hook(_SITES[k], layer) for k in kinds for layer in range(n_layers)}
    logits, cache = model.run_with_cache(ids, sorted(sites) + ["hook_embed"])
    probs = logits[0, -1].softmax(-1)
    answer = (
        answer_ids(model, request.ground_truth)[0] if request.ground_truth else int(probs.argmax())
    )
    subject_pos = slice(first, enc.lookup + 1)
    scale = noise * float(cache["hook_embed"][0, subject_pos].std())
    shape = (samples, enc.lookup + 1 - first, model.cfg.d_model)
    noises = (torch.randn(shape, generator=generator) * scale).to(model.device)
    # rows: for each sample, one corrupted-only row then one row per (kind, layer)
    plan = [(None, None)] + [(k, layer) for k in kinds for layer in range(n_layers)]
    restore: dict[str, list[int]] = {}
    for row, (kind, layer) in enumerate(plan * samples):
        if kind == "resid":
            restore.setdefault(names.hook(_SITES["resid"], layer), []).append(row)
        elif kind == "mlp":
            lo, hi = max(0, layer - window // 2), min(n_layers, layer - window // 2 + window)
            for other in range(lo, hi):
                restore.setdefault(names.hook(_SITES["mlp"], other), []).append(row)
    total = len(plan) * samples
    p_answer = torch.empty(total)
    for begin in range(0, total, batch_size):
        stop = min(begin + batch_size, total)
        hooks = _hooks(cache, restore, noises, len(plan), begin, stop, subject_pos, enc.lookup)
        out = model.forward(ids.expand(stop - begin, -1), hooks=hooks)
        p_answer[begin:stop] = out[:, -1].softmax(-1)[:, answer].cpu()
    per_row = p_answer.view(samples, len(plan)).mean(0)
    base = float(per_row[0])
    effects = {
        k: per_row[1 + i * n_layers : 1 + (i + 1) * n_layers] - base for i, k in enumerate(kinds)
    }
    return effects, float(probs[answer]), base, model.tokenizer.decode([answer])


def _hooks(cache, restore, noises, plan_len, begin, stop, subject_pos, lookup):
    sample_of = torch.arange(begin, stop) // plan_len

    def corrupt(
        act: Float[Tensor, "batch pos *features"], ctx: HookContext
    ) -> Float[Tensor, "batch pos *features"]:
        act = act.clone()
        act[:, subject_pos] += noises[sample_of].to(act.dtype)
        return act

    hooks = {"hook_embed": corrupt}
    for site, rows in restore.items():
        local = [r - begin for r in rows if begin <= r < stop]
        if local:
            hooks[site] = _restorer(cache[site][0, lookup], torch.tensor(local), lookup)
    return hooks


def _restorer(clean: Tensor, rows: Tensor, lookup: int):
    def restore(
        act: Float[Tensor, "batch pos *features"], ctx: HookContext
    ) -> Float[Tensor, "batch pos *features"]:
        act = act.clone()
        act[rows, lookup] = clean.to(act.dtype)
        return act

    return restore
