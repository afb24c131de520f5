"""MEND: a trained hypernetwork turns the fine-tuning gradient of an edit into a weight patch.

Mitchell et al., "Fast Model Editing at Scale" (ICLR 2022, https://arxiv.org/abs/2110.11309).
The gradient of a loss with respect to a linear weight is a sum of rank-one terms, one per
token: ``∇W = Σₜ xₜᵀ δₜ``, where ``xₜ`` is the weight's input at token ``t`` and ``δₜ`` the
gradient at its output. MEND never forms ``∇W``. A small network ``g`` maps each token's pair
``(xₜ, δₜ)`` to a pseudo-pair ``(x̃ₜ, δ̃ₜ)``, and the edit is ``ΔW = -αₗ Σₜ x̃ₜᵀ δ̃ₜ``, a patch
of rank at most the number of tokens. ``g`` is trained so that the edited model gives the new
answer, for the edit prompt and its paraphrases, and changes nothing else (a KL term on
unrelated prompts). ``αₗ`` is a learned step size per weight.

The network, as in the paper:

* inputs are standardised with running means and deviations gathered during training;
* ``g`` is a residual MLP on ``[x; δ]`` with low-rank layers (``rank``), initialised to the
  identity, so an untrained MEND is a gradient step;
* weights of the same shape share one ``g``, told apart by a learned scale and shift per weight.

Here the weights are canonical MLP weights (``blocks.28.mlp.W_out``; EasyEdit's native
``inner_params`` such as ``model.layers.28.mlp.down_proj.weight`` map to them). ``x`` and ``δ``
are read with hooks at the weight's input and output, so only the edited layers and those above
them are back-propagated. An archive (``train(...)``, ``interv train mend``) is one safetensors
file. It holds the network, the running statistics and the step sizes, plus a JSON header with
the model's record, the training data, the steps and the validation curve. Editing with it
returns a low-rank ``PatchSet``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from ..adapters import HookedModel
from ..adapters.frozen import frozen
from ..errors import ArtefactError, ConfigError, EditError, ModelMismatchError
from ..files import now, read_tagged, write_tagged
from ..hparams import HParams
from ..patch import PatchSet, WeightPatch
from ..record import ModelRecord
from ..requests import EditRequest
from . import _archives
from ._archives import TrainedEditor
from .base import EDIT_METHODS
from .token_grads import canonical_weights, layer_in_name, rows_of, site, token_pairs

FORMAT = "interv.mend"
FORMAT_VERSION = 1
# EasyEdit options this implementation does not offer, with the value it requires
FIXED = {"one_sided": False, "x_only": False, "delta_only": False, "combine": True}


@dataclass(kw_only=True)
class MENDHParams(HParams):
    """MEND's hyperparameters, with EasyEdit's key names (``hparams/MEND/*.yaml``).

    ``inner_params`` are the edited weights, canonical (``blocks.28.mlp.W_out``) or in the
    model's native names (``model.layers.28.mlp.down_proj.weight``); ``None`` means the
    archive's weights when editing, and the MLP weights of the last three blocks when training.
    ``archive`` is a trained MEND file; ``None`` uses the archive shipped for the model. The
    network's shape (``rank``, ``n_hidden``, ``act``, ``norm``, ``shared``) and the training
    keys (``lr``, ``lr_lr``, ``cedit``, ``cloc``, ``max_iters``, ``accumulate_bs``,
    ``val_interval``, ``seed``) are read by ``interv train mend``; editing takes the network
    from the archive.
    """

    method = "mend"
    inner_params: list[str] | None = None
    archive: str | None = None
    edit_lr: float = 1e-4
    lr: float = 1e-4
    lr_lr: float = 1e-4
    cedit: float = 0.1
    cloc: float = 1.0
    rank: int = 128
    n_hidden: int = 1
    act: str = "relu"
    norm: bool = True
    shared: bool = True
    init: str = "id"
    mlp_class: str = "IDMLP"
    dropout: float = 0.0
    one_sided: bool = False
    x_only: bool = False
    delta_only: bool = False
    combine: bool = True
    max_length: int = 40
    batch_size: int = 1
    accumulate_bs: int = 4
    max_iters: int = 3000
    val_interval: int = 250
    val_steps: int = 50
    grad_clip: float = 100.0
    seed: int = 42

    def __post_init__(self) -> None:
        if self.inner_params is not None and not self.inner_params:
            raise ConfigError("inner_params must name at least one weight, or be null.")
        for key, required in FIXED.items():
            if getattr(self, key) != required:
                raise ConfigError(
                    f"MEND {key}={getattr(self, key)!r} is not supported; set {key}: {required}."
                )
        if self.act not in ACTIVATIONS:
            raise ConfigError(f"act must be one of {sorted(ACTIVATIONS)}, got {self.act!r}.")
        if self.init != "id" or self.mlp_class != "IDMLP":
            raise ConfigError("MEND here is the identity-initialised IDMLP: init: id, IDMLP.")
        for key in ("rank", "batch_size", "accumulate_bs", "max_iters", "val_interval"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}.")
        if self.n_hidden < 0 or self.max_length < 2 or self.val_steps < 0:
            raise ConfigError("n_hidden and val_steps must be >= 0 and max_length >= 2.")
        for key in ("edit_lr", "lr", "lr_lr", "grad_clip"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}.")
        if self.cedit < 0 or self.cloc < 0 or not 0 <= self.dropout < 1:
            raise ConfigError("cedit and cloc must be >= 0 and dropout in [0, 1).")


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "gelu": nn.functional.gelu,
    "silu": nn.functional.silu,
    "tanh": torch.tanh,
}


# ---------------------------------------------------------------------------- the network
class _Stats(nn.Module):
    """Running mean and standard deviation of the inputs (Welford), frozen outside training."""

    def __init__(self, width: int):
        super().__init__()
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("m2", torch.zeros(width))

    @torch.no_grad()
    def update(self, rows: Float[Tensor, "n width"]) -> None:
        n = rows.shape[0]
        total = self.count + n
        delta = rows.mean(0) - self.mean
        self.m2 += rows.var(0, unbiased=False) * n + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.count.copy_(total)

    def standardise(self, rows: Float[Tensor, "n width"]) -> Float[Tensor, "n width"]:
        std = (self.m2 / self.count.clamp(min=1)).sqrt().clamp(min=1e-7)
        return (rows - self.mean) / std


class _Net(nn.Module):
    """``g``: the residual low-rank MLP shared by the weights of one shape."""

    def __init__(self, d_in: int, d_out: int, modes: int, hp: MENDHParams):
        super().__init__()
        width = d_in + d_out
        self.d_in, self.act, self.norm = d_in, ACTIVATIONS[hp.act], hp.norm
        self.x_stats, self.d_stats = _Stats(d_in), _Stats(d_out)
        self.down = nn.ParameterList()
        self.bias = nn.ParameterList()
        self.up = nn.ParameterList()
        for _ in range(hp.n_hidden + 1):
            self.down.append(nn.Parameter(torch.randn(width, hp.rank) / math.sqrt(width)))
            self.bias.append(nn.Parameter(torch.zeros(hp.rank)))
            self.up.append(nn.Parameter(torch.zeros(hp.rank, width)))  # identity at the start
        self.scale = nn.Parameter(torch.ones(modes, width))
        self.shift = nn.Parameter(torch.zeros(modes, width))
        self.dropout = nn.Dropout(hp.dropout)

    def forward(
        self, x: Float[Tensor, "n d_in"], delta: Float[Tensor, "n d_out"], mode: int
    ) -> tuple[Float[Tensor, "n d_in"], Float[Tensor, "n d_out"]]:
        if self.norm:
            x, delta = self.x_stats.standardise(x), self.d_stats.standardise(delta)
        z = torch.cat([x, delta], -1)
        for down, bias, up in zip(self.down, self.bias, self.up, strict=True):
            z = z + self.dropout(self.act(z @ down + bias)) @ up
        z = z * self.scale[mode] + self.shift[mode]
        return z[:, : self.d_in], z[:, self.d_in :]


class MENDNetwork(nn.Module):
    """The trained part of MEND: one ``g`` per weight shape, the step sizes, the weights."""

    def __init__(self, weights: Sequence[str], shapes: dict[str, tuple[int, int]], hp: MENDHParams):
        super().__init__()
        self.weights = list(weights)
        self.shapes = {w: tuple(shapes[w]) for w in self.weights}
        groups = sorted({self.shapes[w] for w in self.weights}) if hp.shared else self.weights
        self.group_of = {
            w: str(groups.index(self.shapes[w] if hp.shared else w)) for w in self.weights
        }
        self.mode_of = {}
        for w in self.weights:
            same = [v for v in self.weights if self.group_of[v] == self.group_of[w]]
            self.mode_of[w] = same.index(w)
        self.nets = nn.ModuleDict()
        for group in sorted(set(self.group_of.values())):
            members = [w for w in self.weights if self.group_of[w] == group]
            d_in, d_out = self.shapes[members[0]]
            self.nets[group] = _Net(d_in, d_out, len(members), hp)
        self.edit_lrs = nn.Parameter(torch.full((len(self.weights),), hp.edit_lr))

    def observe(
        self, weight: str, x: Float[Tensor, "n d_in"], delta: Float[Tensor, "n d_out"]
    ) -> None:
        net = self.nets[self.group_of[weight]]
        net.x_stats.update(x)
        net.d_stats.update(delta)

    def factors(
        self, weight: str, x: Float[Tensor, "n d_in"], delta: Float[Tensor, "n d_out"]
    ) -> tuple[Float[Tensor, "d_in n"], Float[Tensor, "d_out n"]]:
        """``(U, V)`` with ``ΔW = U @ V.T = -α Σₜ x̃ₜᵀ δ̃ₜ`` for one edit's tokens."""
        net = self.nets[self.group_of[weight]]
        x_t, d_t = net(x.float(), delta.float(), self.mode_of[weight])
        alpha = self.edit_lrs[self.weights.index(weight)]
        return -alpha * x_t.T, d_t.T


# ---------------------------------------------------------------------------- archives
def shipped_archive(model: HookedModel) -> Path | None:
    """The MEND archive shipped for ``model`` (found by its record), or None."""
    return _archives.shipped_archive(model, "mend", FORMAT, FORMAT_VERSION)


@dataclass
class MENDArchive:
    """A trained MEND: the network plus what it was trained on and how well it did."""

    network: MENDNetwork
    hparams: MENDHParams
    model: ModelRecord
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        meta = {
            **self.meta,
            "hparams": self.hparams.to_dict(),
            "weights": self.network.weights,
            "shapes": {w: list(s) for w, s in self.network.shapes.items()},
            "model": self.model.to_dict(),
            "saved": now(),
        }
        return write_tagged(path, dict(self.network.state_dict()), FORMAT, FORMAT_VERSION, meta)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> MENDArchive:
        meta, tensors = read_tagged(path, FORMAT, FORMAT_VERSION, "MEND archive")
        try:
            hp = MENDHParams.from_dict(meta.pop("hparams"))
            weights, shapes = meta.pop("weights"), meta.pop("shapes")
            network = MENDNetwork(weights, {w: tuple(s) for w, s in shapes.items()}, hp)
            network.load_state_dict(tensors)
            record = ModelRecord.from_dict(meta.pop("model"))
        except (KeyError, RuntimeError, TypeError) as err:
            raise ArtefactError(f"{path} is not a complete MEND archive ({err}).") from err
        return cls(network.to(device), hp, record, meta)

    def check(self, model: HookedModel, weights: Sequence[str]) -> None:
        """Refuse another model, or weights the network was not trained for."""
        diff = self.model.differences(model)
        if diff:
            raise ModelMismatchError(
                f"This MEND archive was trained on {self.model.name or 'another model'}, not on "
                f"{model.cfg.name}: {'; '.join(diff)}. Train one for this model with "
                "`interv train mend --out DIR` and set `archive`."
            )
        missing = [w for w in weights if w not in self.network.weights]
        if missing:
            raise ConfigError(
                f"The MEND archive was trained for {', '.join(self.network.weights)}; it cannot "
                f"edit {', '.join(missing)}. Choose inner_params among those, or train an "
                "archive for these weights."
            )


# ---------------------------------------------------------------------------- the editor
@EDIT_METHODS.register("mend")
class MEND(TrainedEditor[MENDArchive]):
    """Edits with a trained MEND archive; requests of one call are edited together."""

    name = "mend"
    hparams_class = MENDHParams
    archive_class = MENDArchive
    archive_format = FORMAT
    batchable = True
    hparams: MENDHParams

    def weights(self, model: HookedModel) -> list[str]:
        """The canonical weights to edit: ``inner_params``, or all the archive was trained for."""
        inner = self.hparams.inner_params
        if inner is None:
            return list(self.archive(model).network.weights)
        self.check_layers(model, [n for n in map(layer_in_name, inner) if n is not None])
        return canonical_weights(model, inner)

    def prepare(self, model: HookedModel) -> None:
        self.archive(model).check(model, self.weights(model))

    def compute(self, model: HookedModel, requests: Sequence[EditRequest]) -> PatchSet:
        if not requests:
            raise EditError("mend: no requests to edit.")
        weights = self.weights(model)
        archive = self.archive(model)
        archive.check(model, weights)
        network = archive.network.to(model.device)
        sites = [site(model, w) for w in weights]
        rows = rows_of(model, [(r.prompt, r.target_new) for r in requests], self.hparams.max_length)
        with frozen(model):  # the forward records no graph below the edited blocks
            pairs = token_pairs(model, rows, sites)
        patches = []
        with torch.no_grad():
            for weight in weights:
                x = torch.cat([p[0] for p in pairs[weight]])
                delta = torch.cat([p[1] for p in pairs[weight]])
                U, V = network.factors(weight, x, delta)
                dtype = model.weight(weight).dtype
                patches.append(WeightPatch(weight, U=U.to(dtype), V=V.to(dtype)))
        self.report(f"{len(requests)} edit(s), {len(x)} tokens")
        return self.patch_set(model, requests, patches)
