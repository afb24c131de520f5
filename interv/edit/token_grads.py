"""Per-token gradient factors of MLP weights, read with hooks, and low-rank changes written back.

For a linear weight ``W`` (canonical orientation, ``out = x @ W``) the gradient of a loss is
``∇W = Σₜ xₜᵀ δₜ``: ``xₜ`` is the weight's input at token ``t`` and ``δₜ`` the gradient at its
output. ``token_pairs`` reads both with hooks at the weight's input and output (``site``), so
only the blocks from the edited one up are back-propagated and ``∇W`` is never formed.
``edited`` does the reverse: hooks that add ``x @ U_r @ V_rᵀ`` to a weight's output in row
``r``, the change ``U_r V_rᵀ`` applied differentiably without touching the weight. MEND
(``interv.edit.mend``) is built on both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from ..adapters import HookedModel, names
from ..errors import ConfigError, EditError, UnsupportedError
from ..tokens import answer_ids

EDITABLE = ("mlp.W_in", "mlp.W_gate", "mlp.W_out")


@dataclass(frozen=True)
class Site:
    """Where a weight's input and output are read: ``out = x @ W (+ b)``."""

    weight: str
    input: str
    output: str


def site(model: HookedModel, weight: str) -> Site:
    template, layer = names.template_of(weight)
    short = template.removeprefix(names.BLOCK)
    if short not in EDITABLE or layer is None:
        raise ConfigError(
            f"MEND edits MLP weights ({', '.join(EDITABLE)} of a block); {weight!r} is not one. "
            "Fix `inner_params`."
        )
    gated = names.weight("mlp.W_gate", layer) in model.weight_names()
    if short == "mlp.W_out":
        if names.weight("ln2_post.w", layer) in model.weight_names():
            raise UnsupportedError(
                f"{model.cfg.name} normalises the MLP output before the residual stream, so "
                f"{weight}'s output is not a hook point; edit mlp.W_in or mlp.W_gate instead."
            )
        return Site(weight, names.hook("post", layer), names.hook("mlp_out", layer))
    output = "pre_linear" if short == "mlp.W_in" and gated else "pre"
    if short == "mlp.W_gate" and not gated:
        raise ConfigError(f"{model.cfg.name} has no gated MLP: {weight} does not exist.")
    return Site(weight, names.hook("ln2", layer), names.hook(output, layer))


def layer_in_name(name: str) -> int | None:
    """The layer a canonical or native weight name points to, if it names one."""
    found = re.search(r"\.(\d+)\.", f".{name}")
    return int(found.group(1)) if found else None


def last_blocks(model: HookedModel, n: int = 3) -> list[str]:
    """The MLP weights of the model's last ``n`` blocks (EasyEdit's MEND default)."""
    layers = range(max(0, model.cfg.n_layers - n), model.cfg.n_layers)
    found = model.weight_names()
    return [names.weight(w, i) for i in layers for w in EDITABLE if names.weight(w, i) in found]


def canonical_weights(model: HookedModel, inner_params: Sequence[str]) -> list[str]:
    """Canonical names of ``inner_params``, which may use the model's native parameter names."""
    canonical = model.weight_names()
    native = {model.native_weight(w)[0]: w for w in canonical if names.layer_of(w) is not None}
    out = []
    for name in inner_params:
        if name in native:
            out.append(native[name])
        elif name in canonical:
            out.append(name)
        else:
            hint = next((n for n in native if n.rsplit(".", 1)[0] in name), None)
            raise ConfigError(
                f"inner_params entry {name!r} is neither a canonical weight of "
                f"{model.cfg.name} nor a native one"
                + (f" (did you mean {hint!r}?)" if hint else "")
                + "; use canonical names ('blocks.28.mlp.W_out') or native ones "
                "('model.layers.28.mlp.down_proj.weight')."
            )
    return out


@dataclass
class Rows:
    """Left-padded token rows with the positions whose next token is scored."""

    ids: Tensor
    mask: Tensor
    scored: list[list[int]]  # per row: positions predicting a target token
    targets: list[list[int]]

    @property
    def inputs(self) -> dict[str, Int[Tensor, "batch pos"]]:
        return {"input_ids": self.ids, "attention_mask": self.mask}


def rows_of(
    model: HookedModel,
    pairs: Sequence[tuple[str, str]],
    max_length: int,
    max_answer: int | None = None,
) -> Rows:
    """``prompt + answer`` rows (the answer cut to ``max_answer`` tokens); an answer's tokens
    are scored teacher-forced."""
    encoded = []
    for prompt, answer in pairs:
        target = answer_ids(model, answer)[: min(max_length - 1, max_answer or max_length)]
        if not target:
            raise EditError(f"MEND: the answer {answer!r} of {prompt!r} has no tokens.")
        ids = model.tokenizer(prompt)["input_ids"]
        ids = ids[-max(1, max_length - len(target)) :]
        encoded.append((ids + target, len(target)))
    width = max(len(row) for row, _ in encoded)
    pad = model.tokenizer.pad_token_id
    pad = 0 if pad is None else pad
    ids = [[pad] * (width - len(row)) + row for row, _ in encoded]
    mask = [[0] * (width - len(row)) + [1] * len(row) for row, _ in encoded]
    scored = [list(range(width - n - 1, width - 1)) for _, n in encoded]
    targets = [row[-n:] for row, n in encoded]
    device = model.device
    return Rows(
        torch.tensor(ids, device=device), torch.tensor(mask, device=device), scored, targets
    )


def nll(
    logits: Float[Tensor, "batch pos d_vocab"], rows: Rows, which: Sequence[int]
) -> Float[Tensor, ""]:
    """Mean over rows ``which`` of each row's mean target negative log-likelihood."""
    row = [r for r in which for _ in rows.scored[r]]
    index = torch.tensor(row, device=logits.device)
    position = torch.tensor([p for r in which for p in rows.scored[r]], device=logits.device)
    target = torch.tensor([t for r in which for t in rows.targets[r]], device=logits.device)
    logprobs = logits[index, position].float().log_softmax(-1)
    picked = -logprobs.gather(-1, target[:, None])[:, 0]
    weights = torch.tensor([1 / len(rows.targets[r]) for r in row], device=logits.device)
    return (picked * weights).sum() / len(which)


Pair = tuple[Float[Tensor, "_ d_in"], Float[Tensor, "_ d_out"]]  # one row's tokens: (x, δ)


def token_pairs(model: HookedModel, rows: Rows, sites: Sequence[Site]) -> dict[str, list[Pair]]:
    """Per weight and row, ``(x, δ)`` at the row's tokens for the target NLL of that row."""
    inputs: dict[str, Tensor] = {}
    outputs: dict[str, Tensor] = {}

    def read(site: Site):
        def hook(act, ctx):
            inputs[site.weight] = act.detach()

        return hook

    def probe(site: Site):
        def hook(act, ctx):  # d loss / d zero = d loss / d output, upstream paths intact
            zero = torch.zeros_like(act, requires_grad=True)
            outputs[site.weight] = zero
            return act + zero

        return hook

    hooks = [(s.input, read(s)) for s in sites] + [(s.output, probe(s)) for s in sites]
    with torch.enable_grad():
        logits = model.forward(rows.inputs, hooks=hooks)
        loss = nll(logits, rows, range(len(rows.targets))) * len(rows.targets)
        grads = torch.autograd.grad(loss, [outputs[s.weight] for s in sites])
    keep = rows.mask.bool()
    return {
        site.weight: [
            (inputs[site.weight][r][keep[r]].float(), grad[r][keep[r]].float())
            for r in range(len(rows.targets))
        ]
        for site, grad in zip(sites, grads, strict=True)
    }


@contextmanager
def edited(model: HookedModel, sites: Sequence[Site], factors: dict[str, list]) -> Iterator[list]:
    """Hooks adding ``x @ U_r @ V_rᵀ`` to each weight's output in row ``r`` (``factors[w][r]``;
    a row's factors may be None): the edited weights, differentiably, without touching them."""
    seen: dict[str, Tensor] = {}

    def read(site: Site):
        def hook(act, ctx):
            seen[site.weight] = act

        return hook

    stacked = {w: stack_factors(pairs) for w, pairs in factors.items()}

    def write(site: Site):
        def hook(act, ctx):
            U, V = stacked[site.weight]  # [rows, d_in, n], [rows, d_out, n]; zero-padded
            inner = torch.einsum("rpi,rin->rpn", seen[site.weight].float(), U)
            return act + torch.einsum("rpn,ron->rpo", inner, V).to(act.dtype)

        return hook

    hooks = [(s.input, read(s)) for s in sites] + [(s.output, write(s)) for s in sites]
    yield hooks


def stack_factors(
    pairs: Sequence[tuple[Float[Tensor, "d_in _"], Float[Tensor, "d_out _"]] | None],
) -> tuple[Float[Tensor, "rows d_in n"], Float[Tensor, "rows d_out n"]]:
    """Per-row factors as two zero-padded tensors (a row without an edit gets zeros)."""
    first = next(p for p in pairs if p is not None)
    n = max(p[0].shape[1] for p in pairs if p is not None)
    empty = (first[0].new_zeros(first[0].shape[0], 0), first[1].new_zeros(first[1].shape[0], 0))
    pairs = [empty if p is None else p for p in pairs]
    pad = nn.functional.pad
    return (
        torch.stack([pad(U, (0, n - U.shape[1])) for U, _ in pairs]),
        torch.stack([pad(V, (0, n - V.shape[1])) for _, V in pairs]),
    )
