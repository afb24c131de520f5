"""EasyEdit's ``BaseEditor``: ``edit`` and ``batch_edit`` with EasyEdit's per-request metrics.

What happens to the model (read this if you come from EasyEdit):

* ``sequential_edit=False`` (the default): every request is edited and scored against the
  unedited model, then reverted — EasyEdit's protocol, so the metrics match its numbers. At the
  end the edits of the call are applied together (``PatchSet.combine``), so the returned
  ``edited_model`` *carries every edit*. (EasyEdit returns the restored, unedited model here,
  which its users kept tripping over: issues #163, #187, #465, #627.)
* ``sequential_edit=True``: edits accumulate as they are made; each request is scored right
  after its own edit (EasyEdit after PR #687). The returned model carries every edit.
* In both modes ``edited_model`` *is* ``editor.model`` (an interv ``HookedModel``; the
  ``transformers`` model is ``edited_model.hf_model``). Edits stay until ``editor.revert()``;
  a later ``edit`` call builds on them (with a warning in non-sequential mode). ``weights_copy``
  maps native parameter names to their values before the call, as in EasyEdit.
* ``editor.patch`` is every applied edit as one ``PatchSet`` (``editor.patch.save(path)``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..edit.base import EDIT_METHODS, EditMethod
from ..edit.runner import Edit, RunResult, combine_edits, run_edits
from ..errors import ConfigError, WrongTypeError
from ..eval.editing import evaluate, evaluate_generation, summarize
from ..files import write_json
from ..hparams import HParams
from ..loading import load
from .hparams import HyperParams, easyedit_name
from .requests import Probes, prepare_requests, to_edit_request

log = logging.getLogger(__name__)
EVAL_METRICS = ("token_em", "exact match")  # EasyEdit's names for its default protocol


class BaseEditor:
    """Edit a model with any registered interv method, EasyEdit-style."""

    @classmethod
    def from_hparams(
        cls, hparams: HyperParams | HParams, *, backend: str = "hf", device: str = "auto"
    ) -> BaseEditor:
        return cls(hparams, backend=backend, device=device)

    def __init__(
        self,
        hparams: HyperParams | HParams,
        *,
        model: HookedModel | None = None,
        backend: str = "hf",
        device: str = "auto",
    ):
        if isinstance(hparams, HParams):
            hparams = HyperParams(hparams.method, hparams)
        if not isinstance(hparams, HyperParams):
            raise WrongTypeError(
                "BaseEditor needs hyperparameters from <Method>HyperParams.from_hparams(...)."
            )
        self.hparams = hparams
        self.alg_name = hparams.alg_name
        self.model_name = hparams.model_name
        self.model = model if model is not None else _load(hparams.model_name, backend, device)
        self.tok = self.model.tokenizer
        self.applied: list[Edit] = []
        self._method: tuple[HParams, EditMethod] | None = None

    @property
    def method(self) -> EditMethod:
        """The interv method instance (rebuilt when the hyperparameters are changed)."""
        if self._method is None or self._method[0] is not self.hparams.params:
            method_class = EDIT_METHODS.get(self.hparams.method)
            self._method = (self.hparams.params, method_class(self.hparams.params))
        return self._method[1]

    @property
    def patch(self) -> Edit | None:
        """Every edit applied through this editor, as one patch set (a SERAC memory for SERAC;
        None before any edit)."""
        return combine_edits(self.applied) if self.applied else None

    def revert(self) -> None:
        """Undo every edit applied through this editor (bit-exact)."""
        while self.applied:
            self.applied.pop().revert(self.model)

    # ----------------------------------------------------------------- editing
    def edit(
        self,
        prompts: str | Sequence[str],
        target_new: str | Sequence[str],
        ground_truth: str | Sequence[str | None] | None = None,
        target_neg: str | Sequence[str] | None = None,
        rephrase_prompts: str | Sequence[Any] | None = None,
        locality_inputs: Probes | None = None,
        portability_inputs: Probes | None = None,
        sequential_edit: bool = False,
        verbose: bool = True,
        *,
        subject: str | Sequence[str] | None = None,
        test_generation: bool = False,
        eval_metric: str = "token_em",
        pre_edit: Sequence[dict[str, Any]] | None = None,
        pre_file: str | Path | None = None,
        requests: Sequence[dict[str, Any]] | None = None,
        keep_original_weight: bool | None = None,
    ) -> tuple[list[dict[str, Any]], HookedModel, dict[str, Float[Tensor, "..."]]]:
        """Edit one request at a time; returns ``(metrics, edited_model, weights_copy)``.

        Arguments are EasyEdit's; see the module docstring for what happens to the model.
        """
        return self._run(locals(), batch_size=1)

    def batch_edit(
        self,
        prompts: Sequence[str],
        target_new: Sequence[str],
        ground_truth: Sequence[str | None] | None = None,
        target_neg: Sequence[str] | None = None,
        rephrase_prompts: Sequence[Any] | None = None,
        locality_inputs: Probes | None = None,
        portability_inputs: Probes | None = None,
        sequential_edit: bool = False,
        verbose: bool = True,
        *,
        subject: Sequence[str] | None = None,
        test_generation: bool = False,
        eval_metric: str = "token_em",
        pre_edit: Sequence[dict[str, Any]] | None = None,
        pre_file: str | Path | None = None,
        requests: Sequence[dict[str, Any]] | None = None,
        keep_original_weight: bool | None = None,
    ) -> tuple[list[dict[str, Any]], HookedModel, dict[str, Float[Tensor, "..."]]]:
        """Edit in chunks of ``hparams.batch_size`` (one patch per chunk); batchable methods
        only."""
        method = self.method
        if not method.batchable:
            raise ConfigError(
                f"{self.alg_name} ({method.name}) cannot batch edit; use editor.edit."
            )
        size = self.hparams.batch_size
        if not size or size < 1:
            raise ConfigError(
                f"batch_edit needs batch_size >= 1 in the hyperparameters, got {size!r}."
            )
        return self._run(locals(), batch_size=size)

    def _run(
        self, args: dict[str, Any], batch_size: int
    ) -> tuple[list[dict[str, Any]], HookedModel, dict[str, Tensor]]:
        if args["eval_metric"] not in EVAL_METRICS:
            raise ConfigError(
                f"eval_metric {args['eval_metric']!r} is not supported; use 'token_em'."
            )
        if args["keep_original_weight"] is not None:
            warnings.warn(
                "keep_original_weight is ignored (as in EasyEdit); edits stay until "
                "editor.revert(). See interv.easyedit.editor.",
                UserWarning,
                stacklevel=3,
            )
        raw = _raw_requests(args)
        edit_requests = [to_edit_request(r, i) for i, r in enumerate(raw)]
        pre = _pre_results(args["pre_edit"], len(raw))
        sequential = bool(args["sequential_edit"])
        if self.applied and not sequential:
            warnings.warn(
                f"{len(self.applied)} earlier edit(s) are still applied; this call "
                "edits on top of them. Call editor.revert() first to start from the "
                "original weights.",
                UserWarning,
                stacklevel=3,
            )
        result = run_edits(
            self.model,
            self.method,
            edit_requests,
            self._evaluator(args["test_generation"]),
            sequential=sequential,
            batch_size=batch_size,
            pre=pre,
            progress=args["verbose"],
        )
        weights_copy = self._keep(result)
        metrics = [
            {**record, "case_id": i, "requested_rewrite": raw[i]}
            for i, record in enumerate(result.records)
        ]
        if args["pre_file"] is not None:
            write_json(args["pre_file"], [{"pre": m["pre"]} for m in metrics])
        if args["verbose"]:
            post = summarize([m["post"] for m in metrics])
            log.info(
                "%s: %d edits, %.2f s per edit, post %s",
                easyedit_name(self.method.name),
                len(metrics),
                result.seconds["per_edit"],
                post,
            )
        return metrics, self.model, weights_copy

    def _evaluator(self, test_generation: bool):
        if self.hparams.__dict__.get("evaluation_type") in ("LLM-judge", "generate-text"):
            return evaluate_generation
        return partial(evaluate, test_generation=test_generation)

    def _keep(self, result: RunResult) -> dict[str, Tensor]:
        """Leave every edit of the run applied; return the touched weights as they were before."""
        if result.sequential:  # revert and re-apply in order: bit-identical, gives the originals
            for patch in reversed(result.patches):
                patch.revert(self.model)
        originals = self._snapshot({w for p in result.patches for w in p.weights()})
        keep = result.patches if result.sequential else [result.combined()]
        for patch in keep:
            self.applied.append(patch.apply(self.model))
        return originals

    def _snapshot(self, weights: set[str]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for name in sorted(weights):
            path, param = self.model.native_weight(name)
            out.setdefault(path, param.detach().clone())
        return out


def _pre_results(pre_edit: Sequence[dict[str, Any]] | None, n: int) -> list[dict[str, Any]] | None:
    """EasyEdit's ``pre_edit``: a list of ``{"pre": {...}}`` (or the pre dicts themselves)."""
    if pre_edit is None:
        return None
    if len(pre_edit) != n:
        raise ConfigError(f"pre_edit has {len(pre_edit)} entries for {n} requests.")
    return [p["pre"] if "pre" in p else p for p in pre_edit]


def _load(model_name: Any, backend: str, device: str) -> HookedModel:
    if isinstance(model_name, HookedModel):
        return model_name
    if isinstance(model_name, tuple) and len(model_name) == 2:  # EasyEdit's (model, tokenizer)
        return HookedModel(model_name[0], model_name[1], backend=backend)
    if not model_name:
        raise ConfigError(
            "hparams.model_name is empty: set it to a local folder, a known model "
            "name (e.g. SmolLM2-135M-Instruct) or a hub id."
        )
    return load(model_name, backend=backend, device=device)


def _raw_requests(args: dict[str, Any]) -> list[dict[str, Any]]:
    """EasyEdit's request dicts: ``requests`` as given, else built from the edit arguments."""
    if args["requests"] is not None:
        return list(args["requests"])
    return prepare_requests(
        args["prompts"],
        args["target_new"],
        args["ground_truth"],
        args["target_neg"],
        args["rephrase_prompts"],
        args["locality_inputs"],
        args["portability_inputs"],
        args["subject"],
    )
