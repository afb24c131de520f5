"""``BaseVectorGenerator``: EasyEdit2's vector-generation entry point on interv's methods.

Example:
    >>> from interv.steer.workflow import BaseVectorGenerator
    >>> cfg = {"steer_train_hparam_paths": [{"alg_name": "caa", "layers": [10]}],
    ...        "steer_train_dataset": "sentiment_positive", "steer_vector_output_dir": "vectors/"}
    >>> vectors = BaseVectorGenerator(cfg).generate_vectors()  # doctest: +SKIP
    >>> vectors["sentiment_positive"]["caa"]  # a SteeringVector, saved under
    ...                                       # vectors/sentiment_positive/caa_vector/  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ...adapters import HookedModel
from ...recipes import recipe_name
from ..library import save
from ..vector import SteeringVector
from .config import ConfigError, SteerConfig, load_config
from .datasets import dataset_label, train_data
from .methods import train_hparams

log = logging.getLogger(__name__)


def load_model(config: SteerConfig) -> HookedModel:
    from ...loading import load

    return load(config["model_name_or_path"], backend=config["backend"], device=config["device"],
                dtype=config["torch_dtype"])


def _output_dirs(config: SteerConfig) -> list[Path | None]:
    dirs = config["steer_vector_output_dir"]
    dirs = dirs if isinstance(dirs, list) else [dirs]
    n = len(config.train)
    if len(dirs) == 1:
        dirs = dirs * n
    if len(dirs) != n:
        raise ConfigError(
            f"steer_vector_output_dir lists {len(dirs)} folders for {n} method files; give one, "
            "or one per entry of steer_train_hparam_paths."
        )
    return [Path(d) if d else None for d in dirs]


class BaseVectorGenerator:
    """Generate steering artefacts for every (dataset, method file) pair of a config."""

    def __init__(self, top_cfg: Mapping[str, Any] | SteerConfig | str | Path,
                 overrides: Sequence[str] = ()):
        self.config = top_cfg if isinstance(top_cfg, SteerConfig) else load_config(top_cfg, overrides)
        if not self.config.train:
            raise ConfigError("steer_train_hparam_paths is empty: name at least one method file.")
        self.output_dirs = _output_dirs(self.config)
        self.model: HookedModel | None = None

    def _model(self) -> HookedModel:
        if self.model is None:
            self.model = load_model(self.config)
        return self.model

    def generate_vectors(self, datasets: Mapping[str, Any] | Sequence[str] | None = None,
                         model: HookedModel | None = None) -> dict[str, dict[str, Any]]:
        """``{dataset: {alg_name: artefact}}``; saved as ``<out>/<dataset>/<alg>_vector/``.

        ``datasets`` maps names to data (as EasyEdit2 passes them), lists names, or is None
        for the config's ``steer_train_dataset``.
        """
        if model is not None:
            self.model = model
        named = _datasets(datasets, self.config)
        # Validate every method file before any model work.
        methods = {name: [train_hparams(spec, self.config, name) for spec in self.config.train]
                   for name in named}
        out: dict[str, dict[str, Any]] = {}
        for name, given in named.items():
            out[name] = {}
            for spec, method, folder in zip(self.config.train, methods[name], self.output_dirs):
                torch.manual_seed(int(getattr(method.hparams, "seed", self.config["seed"])))
                data = given
                if data is None and method.needs_data:
                    data = train_data(self.config.data_path(name), method.data_kind, self.config["steer_train_data_size"])
                log.info("generating %s on %s", spec.alg_name, name)
                artefact = method.fit(self._model(), data if method.needs_data else None)
                artefact = _annotate(artefact, spec.extra, self.config)
                out[name][spec.alg_name] = artefact
                if self.config["save_vectors"] and folder is not None:
                    target = self.config.resolve(str(folder)) / dataset_label(name) / f"{spec.alg_name}_vector"
                    save(artefact, target, str(self.config["vector_dtype"]))
                    log.info("saved %s", target)
        return out


def _datasets(datasets: Any, config: SteerConfig) -> dict[str, Any]:
    if datasets is None:
        names = config["steer_train_dataset"]
        if not names:
            raise ConfigError("steer_train_dataset is empty: name the dataset(s) to generate from.")
        return {str(n): None for n in names}
    if isinstance(datasets, Mapping):
        return dict(datasets)
    return {str(n): None for n in datasets}


def _annotate(artefact: Any, extra: Mapping[str, Any], config: SteerConfig) -> Any:
    """Record the recommended scale and where the config came from."""
    source = recipe_name(config.source)
    if isinstance(artefact, SteeringVector):
        meta = {**artefact.meta, "config": source}
        scale = float(extra.get("recommended_scale", artefact.recommended_scale))
        return artefact.replace(recommended_scale=scale, meta=meta)
    if hasattr(artefact, "meta") and isinstance(artefact.meta, dict):
        artefact.meta["config"] = source
        if "recommended_scale" in extra:
            artefact.meta["recommended_scale"] = float(extra["recommended_scale"])
    return artefact
