"""``BaseVectorGenerator``: EasyEdit2's vector-generation entry point on interv's methods.

Example:
    >>> from interv.steer.workflow import BaseVectorGenerator
    >>> cfg = {"steer_train_hparam_paths": [{"alg_name": "caa", "layers": [10]}],
    ...        "steer_train_dataset": "sentiment_positive", "steer_vector_output_dir": "vectors/"}
    >>> vectors = BaseVectorGenerator(cfg).generate_vectors()  # doctest: +SKIP
    >>> # a SteeringVector, saved under vectors/sentiment_positive/caa_vector/
    >>> vectors["sentiment_positive"]["caa"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ...adapters import HookedModel
from ...errors import ConfigError
from ...loading import load
from ...recipes import recipe_name
from ..apply import Steerable
from ..library import save
from .config import Workflow, load_workflow
from .datasets import from_records, train_data
from .methods import train_hparams
from .outputs import check_vectors, output_dirs, vector_folder

log = logging.getLogger(__name__)


def load_model(workflow: Workflow) -> HookedModel:
    config = workflow.config
    return load(
        config.model_name_or_path,
        backend=config.backend,
        device=config.device,
        dtype=config.torch_dtype,
    )


class BaseVectorGenerator:
    """Generate steering artefacts for every (dataset, method file) pair of a config."""

    def __init__(
        self, top_cfg: Mapping[str, Any] | Workflow | str | Path, overrides: Sequence[str] = ()
    ):
        self.workflow = load_workflow(top_cfg, overrides)
        if not self.workflow.train:
            raise ConfigError("steer_train_hparam_paths is empty: name at least one method file.")
        self.output_dirs = output_dirs(self.workflow)
        self.model: HookedModel | None = None

    def _model(self) -> HookedModel:
        if self.model is None:
            self.model = load_model(self.workflow)
        return self.model

    def generate_vectors(
        self,
        datasets: Mapping[str, Any] | Sequence[str] | None = None,
        model: HookedModel | None = None,
    ) -> dict[str, dict[str, Steerable]]:
        """``{dataset: {alg_name: artefact}}``; saved as ``<out>/<dataset>/<alg>_vector/``.

        ``datasets`` maps names to data (as EasyEdit2 passes them), lists names, or is None
        for the config's ``steer_train_dataset``.
        """
        if model is not None:
            self.model = model
        workflow, config = self.workflow, self.workflow.config
        named = _datasets(datasets, workflow)
        # Validate every method file before any model work.
        methods = {
            name: [train_hparams(spec, workflow, name) for spec in workflow.train] for name in named
        }
        check_vectors(workflow, named)  # an artefact that exists is kept unless overwrite
        out: dict[str, dict[str, Steerable]] = {}
        for name, given in named.items():
            out[name] = {}
            for spec, method, folder in zip(
                workflow.train, methods[name], self.output_dirs, strict=True
            ):
                torch.manual_seed(int(getattr(method.hparams, "seed", config.seed_value)))
                data = given
                if _dict_records(data):  # EasyEdit2's records, as its examples pass them
                    data = from_records(list(data), method.data_kind, name)
                if data is None and method.needs_data:
                    data = train_data(
                        workflow.data_path(name), method.data_kind, config.steer_train_data_size
                    )
                log.info("generating %s on %s", spec.alg_name, name)
                artefact = method.fit(self._model(), data if method.needs_data else None)
                scale = spec.extra.get("recommended_scale")
                artefact = artefact.annotated(
                    recipe_name(workflow.source), None if scale is None else float(scale)
                )
                out[name][spec.alg_name] = artefact
                if config.save_vectors and folder is not None:
                    target = vector_folder(folder, name, spec.alg_name)
                    save(artefact, target, config.vector_dtype, overwrite=config.overwrite)
                    log.info("saved %s", target)
        return out


def _dict_records(data: Any) -> bool:
    return isinstance(data, Sequence) and bool(data) and isinstance(data[0], Mapping)


def _datasets(datasets: Any, workflow: Workflow) -> dict[str, Any]:
    if datasets is None:
        names = workflow.config.steer_train_dataset
        if not names:
            raise ConfigError("steer_train_dataset is empty: name the dataset(s) to generate from.")
        return {str(n): None for n in names}
    if isinstance(datasets, Mapping):
        return dict(datasets)
    return {str(n): None for n in datasets}
