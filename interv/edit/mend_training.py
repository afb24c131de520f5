"""Training MEND's network (``interv train mend``): episodes, losses, validation, checkpoints.

An episode is one training edit: the request, the prompts it should change (its paraphrases)
and one it should not (a locality probe). A step edits each episode of a batch alone, with the
network's current output, and minimises ``cedit`` × the new answer's NLL on the edited prompts
plus ``cloc`` × the KL divergence from the unedited model on the unrelated one.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..adapters import HookedModel
from ..adapters.frozen import frozen
from ..errors import ConfigError
from ..files import atomic_path, write_text
from ..record import ModelRecord
from ..requests import EditRequest
from .mend import MENDArchive, MENDHParams, MENDNetwork
from .token_grads import (
    Rows,
    Site,
    canonical_weights,
    edited,
    last_blocks,
    nll,
    rows_of,
    site,
    token_pairs,
)

LOC_TOKENS = 5  # answer tokens of an unrelated prompt that training and validation score


@dataclass
class Episode:
    """One training edit: the request, the prompts it should change and one it should not."""

    edit: tuple[str, str]
    equivalent: list[tuple[str, str]]
    unrelated: tuple[str, str]


def episodes(requests: Sequence[EditRequest], seed: int = 0) -> list[Episode]:
    """Training episodes from edit requests: rephrases as equivalents, and as the unrelated
    prompt the request's own locality probe or, without one, another request's."""
    probes = [p for r in requests for probes in r.locality.values() for p in probes]
    if not probes:
        raise ConfigError(
            "MEND training needs locality probes (prompt, answer) in the records, e.g. ZsRE's "
            "`loc`/`loc_ans`; none of the training records has one."
        )
    rng = random.Random(seed)
    out = []
    for r in requests:
        if not r.target_new.strip():
            raise ConfigError(f"Training record {r.prompt!r} has no target_new.")
        own = [p for probes in r.locality.values() for p in probes]
        out.append(
            Episode(
                (r.prompt, r.target_new),
                [(p, r.target_new) for p in r.rephrase_prompts],
                own[0] if own else rng.choice(probes),
            )
        )
    return out


def new_network(model: HookedModel, hp: MENDHParams) -> MENDNetwork:
    weights = (
        last_blocks(model) if hp.inner_params is None else canonical_weights(model, hp.inner_params)
    )
    for w in weights:
        site(model, w)  # unsupported weights fail before training starts
    shapes = {w: tuple(model.weight_shape(w)) for w in weights}
    return MENDNetwork(weights, shapes, hp).to(model.device)


def _factors(
    network: MENDNetwork, pairs: dict[str, list[tuple[Tensor, Tensor]]], train: bool
) -> dict[str, list[tuple[Tensor, Tensor]]]:
    """Each row's ``(U, V)``: the network runs once per weight on every row's tokens (it acts
    token by token), and the step sums within a row."""
    out = {}
    for weight, per_row in pairs.items():
        x, delta = torch.cat([p[0] for p in per_row]), torch.cat([p[1] for p in per_row])
        if train:
            network.observe(weight, x, delta)
        U, V = network.factors(weight, x, delta)
        sizes = [len(p[0]) for p in per_row]
        out[weight] = list(zip(U.split(sizes, 1), V.split(sizes, 1), strict=True))
    return out


def _step_losses(
    model: HookedModel,
    network: MENDNetwork,
    sites: Sequence[Site],
    batch: Sequence[Episode],
    hp: MENDHParams,
    train: bool,
) -> dict[str, Tensor]:
    """Edit each episode alone; the edit loss on its prompt and equivalents, KL on the unrelated.

    Every row carries only its own episode's edit, so a batch is a set of single edits. The
    unrelated prompts are scored on their prompt and first ``LOC_TOKENS`` answer tokens.
    """
    edit_rows = rows_of(model, [e.edit for e in batch], hp.max_length)
    factors = _factors(network, token_pairs(model, edit_rows, sites), train)
    owners = [i for i, e in enumerate(batch) for _ in range(1 + len(e.equivalent))]
    same = rows_of(model, [p for e in batch for p in [e.edit, *e.equivalent]], hp.max_length)
    with edited(model, sites, {w: [f[o] for o in owners] for w, f in factors.items()}) as hooks:
        logits = model.forward(same.inputs, hooks=hooks)
    everything = range(len(owners))
    edit_loss = nll(logits, same, everything)
    loc = rows_of(model, [e.unrelated for e in batch], hp.max_length, LOC_TOKENS)
    with torch.no_grad():
        base = model.forward(loc.inputs)
    with edited(model, sites, factors) as hooks:
        after = model.forward(loc.inputs, hooks=hooks)
    mask = loc.mask.bool()
    p, q = base[mask].float().log_softmax(-1), after[mask].float().log_softmax(-1)
    loc_loss = (p.exp() * (p - q)).sum(-1).mean()
    with torch.no_grad():
        success = _accuracy(logits, same, everything)
        keep = _agreement(base, after, loc)
    return {
        "loss": hp.cedit * edit_loss + hp.cloc * loc_loss,
        "edit_loss": edit_loss,
        "loc_loss": loc_loss,
        "edit_acc": success,
        "loc_acc": keep,
    }


def _accuracy(logits: Tensor, rows: Rows, which: Sequence[int]) -> Tensor:
    """EasyEdit's token accuracy: the fraction of target tokens predicted, teacher-forced."""
    scores = []
    for r in which:
        pred = logits[r, rows.scored[r]].argmax(-1)
        target = torch.tensor(rows.targets[r], device=logits.device)
        scores.append((pred == target).float().mean())
    return torch.stack(scores).mean()


def _agreement(base: Tensor, after: Tensor, rows: Rows) -> Tensor:
    """EasyEdit's locality: the fraction of answer-position argmaxes the edit left unchanged."""
    scores = []
    for r, positions in enumerate(rows.scored):
        same = base[r, positions].argmax(-1) == after[r, positions].argmax(-1)
        scores.append(same.float().mean())
    return torch.stack(scores).mean()


@dataclass
class TrainResult:
    archive: MENDArchive
    path: Path
    history: list[dict[str, float]]


def plot_history(history: Sequence[dict[str, float]], path: str | Path) -> Path:
    """Training curves (matplotlib PNG): validation loss, edit success and locality by step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        left.plot(steps, [h[key] for h in history], marker=".", label=label)
    left.set(xlabel="step", ylabel="loss (cedit·edit + cloc·KL)", yscale="log")
    left.legend()
    for key, label in (("val_edit_acc", "edit success"), ("val_loc_acc", "locality")):
        right.plot(steps, [h[key] for h in history], marker=".", label=label)
    right.set(xlabel="step", ylabel="validation score", ylim=(0, 1.02))
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def validate(
    model: HookedModel,
    network: MENDNetwork,
    sites: Sequence[Site],
    data: Sequence[Episode],
    hp: MENDHParams,
    chunk: int = 10,
) -> dict[str, float]:
    """Mean losses and scores over ``data``, each episode edited alone (``chunk`` per forward:
    every row carries only its own edit)."""
    sums: dict[str, float] = {}
    network.eval()
    for start in range(0, len(data), chunk):
        batch = data[start : start + chunk]
        with torch.no_grad():  # the edit's own gradient is still taken (token_pairs)
            losses = _step_losses(model, network, sites, batch, hp, train=False)
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + float(value) * len(batch)
    network.train()
    return {key: value / len(data) for key, value in sums.items()}


class _Run:
    """One training run's state: network, optimiser, random state, step and curve."""

    def __init__(self, model: HookedModel, hp: MENDHParams, checkpoint: Path):
        torch.manual_seed(hp.seed)
        self.model, self.hp, self.checkpoint = model, hp, checkpoint
        self.network = new_network(model, hp)
        self.sites = [site(model, w) for w in self.network.weights]
        main = [p for name, p in self.network.named_parameters() if name != "edit_lrs"]
        self.optimiser = torch.optim.Adam(
            [{"params": main, "lr": hp.lr}, {"params": [self.network.edit_lrs], "lr": hp.lr_lr}]
        )
        self.rng = random.Random(hp.seed)
        self.step, self.history, seconds = 0, [], 0.0
        if checkpoint.is_file():
            state = torch.load(checkpoint, map_location=model.device, weights_only=True)
            self.network.load_state_dict(state["network"])
            self.optimiser.load_state_dict(state["optimiser"])
            self.step, self.history, seconds = state["step"], state["history"], state["seconds"]
            self.rng.setstate(state["rng"])
            torch.set_rng_state(state["torch_rng"])
        self.started = time.perf_counter() - seconds

    def train_step(self, data: Sequence[Episode]) -> dict[str, float]:
        hp = self.hp
        self.optimiser.zero_grad(set_to_none=True)
        shown: dict[str, float] = {}
        for _ in range(hp.accumulate_bs):
            batch = [self.rng.choice(data) for _ in range(hp.batch_size)]
            losses = _step_losses(self.model, self.network, self.sites, batch, hp, train=True)
            (losses["loss"] / hp.accumulate_bs).backward()
            for key, value in losses.items():
                shown[key] = shown.get(key, 0.0) + float(value.detach()) / hp.accumulate_bs
        nn.utils.clip_grad_norm_(self.network.parameters(), hp.grad_clip)
        self.optimiser.step()
        self.step += 1
        return shown

    def record(self, shown: dict[str, float], val: Sequence[Episode]) -> None:
        """Score the validation episodes, extend the curve and write the checkpoint."""
        scores = validate(self.model, self.network, self.sites, val, self.hp)
        self.history.append(
            {
                "step": self.step,
                "seconds": round(time.perf_counter() - self.started, 1),
                **{f"train_{k}": round(v, 4) for k, v in shown.items()},
                **{f"val_{k}": round(v, 4) for k, v in scores.items()},
            }
        )
        state = {
            "network": self.network.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "step": self.step,
            "history": self.history,
            "seconds": self.history[-1]["seconds"],
            "rng": self.rng.getstate(),
            "torch_rng": torch.get_rng_state(),
        }
        with atomic_path(self.checkpoint) as temporary:  # a stop mid-save keeps the last one
            torch.save(state, temporary)


def train(
    model: HookedModel,
    train_data: Sequence[EditRequest],
    val_data: Sequence[EditRequest],
    hp: MENDHParams,
    out: str | Path,
    *,
    data_meta: dict[str, Any] | None = None,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train a MEND network for ``model`` and save ``out/mend.safetensors``.

    Every ``val_interval`` steps the network is scored on ``val_data`` (each edit alone) and a
    checkpoint (network, optimiser, step, random state, curve) is written to
    ``out/checkpoint.pt``; with ``resume`` a run continues from it. One step is
    ``accumulate_bs`` batches of ``batch_size`` edits.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_eps, val_eps = episodes(train_data, hp.seed), episodes(val_data, hp.seed + 1)
    val_eps = val_eps[: hp.val_steps] if hp.val_steps else val_eps
    checkpoint = out / "checkpoint.pt"
    if not resume:
        checkpoint.unlink(missing_ok=True)
    run = _Run(model, hp, checkpoint)
    bar = tqdm(total=hp.max_iters, initial=run.step, desc="mend", disable=not progress)
    with frozen(model):  # gradients reach the network, never the model
        while run.step < hp.max_iters:
            shown = run.train_step(train_eps)
            if run.step % hp.val_interval == 0 or run.step == hp.max_iters:
                run.record(shown, val_eps)
            last = run.history[-1] if run.history else {}
            bar.update(1)
            bar.set_postfix(
                loss=f"{shown['loss']:.3f}",
                edit=f"{shown['edit_acc']:.2f}",
                loc=f"{shown['loc_acc']:.2f}",
                val_edit=f"{last.get('val_edit_acc', float('nan')):.2f}",
                val_loc=f"{last.get('val_loc_acc', float('nan')):.2f}",
            )
    bar.close()
    history = run.history
    trained = {
        "steps": run.step,
        "seconds": history[-1]["seconds"] if history else 0.0,
        "train_records": len(train_data),
        "val_records": len(val_eps),
        **(data_meta or {}),
    }
    meta = {"trained": trained, "history": history}
    archive = MENDArchive(run.network.cpu(), hp, ModelRecord.of(model), meta)
    path = archive.save(out / "mend.safetensors")
    write_text(out / "history.json", json.dumps(history, indent=1) + "\n")
    if history:
        plot_history(history, out / "curves.png")
    return TrainResult(archive, path, history)
