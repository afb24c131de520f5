"""EasyEdit2's steering workflow (generate vectors, apply them, generate text, evaluate).

``BaseVectorGenerator(cfg).generate_vectors(datasets)``, ``BaseVectorApplier(cfg).apply_vectors()``
and ``.generate(datasets)`` take the same top-level config as EasyEdit2 (a dict, a YAML path or
an OmegaConf-like mapping; see ``config.py``); ``run(cfg)`` does everything in one call, as
``interv steer run --config FILE``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...eval.report import evaluate_results, write_report
from .applier import BaseVectorApplier
from .config import SteerConfig, Workflow, load_config, load_workflow
from .datasets import dataset_label, generation_records, train_records
from .generator import BaseVectorGenerator
from .outputs import check_run, report_folder


def run(
    top_cfg: Mapping[str, Any] | str | Path | Workflow, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Generate the vectors, apply them, generate from every dataset, evaluate the results.

    Returns ``{"vectors": ..., "results": {dataset: records}, "evaluation": {dataset: report}}``.
    Methods of the generate files that the apply files do not list are applied with defaults.
    """
    workflow = load_workflow(top_cfg, overrides)
    check_run(workflow)  # every output, before the model loads
    generator = BaseVectorGenerator(workflow)
    vectors = generator.generate_vectors()
    if not workflow.apply:
        workflow.apply_from_train()
    applier = BaseVectorApplier(workflow)
    applier.apply_vectors(
        next(iter(vectors.values())) if len(vectors) == 1 else None, model=generator.model
    )
    results = applier.generate()
    config, evaluation = workflow.config, {}
    folder = report_folder(workflow)
    for name, records in results.items():
        report = evaluate_results(records, config.eval_metrics or None, reference=applier.model)
        if folder is not None:
            write_report(report, folder, dataset_label(name))
        evaluation[name] = report
    return {"vectors": vectors, "results": results, "evaluation": evaluation}


def prepare_train_dataset(
    top_cfg: Mapping[str, Any] | str | Path | Workflow,
) -> dict[str, list[dict[str, Any]]]:
    """EasyEdit2's ``prepare_train_dataset(top_cfg)``: ``{name: records}`` for every
    ``steer_train_dataset``, in EasyEdit2's record format (see ``datasets.train_records``), ready
    for ``BaseVectorGenerator.generate_vectors``."""
    workflow = load_workflow(top_cfg)
    names = workflow.config.steer_train_dataset
    if not names:
        raise ConfigError("steer_train_dataset is empty: name the dataset(s) to train on.")
    n = workflow.config.steer_train_data_size
    return {str(name): train_records(workflow.data_path(str(name)), n) for name in names}


def prepare_generation_datasets(
    top_cfg: Mapping[str, Any] | str | Path | Workflow,
) -> dict[str, list[dict[str, Any]]]:
    """EasyEdit2's ``prepare_generation_datasets(top_cfg)``: ``{name: [{input, ...}]}`` for
    every ``generation_data`` entry, ready for ``BaseVectorApplier.generate``."""
    workflow = load_workflow(top_cfg)
    names = workflow.config.generation_data
    if not names:
        raise ConfigError("generation_data is empty: name the dataset(s) to generate from.")
    size = workflow.config.generation_data_size
    n = None if size is None or size <= 0 else int(size)
    return {str(name): generation_records(workflow.data_path(str(name)), n) for name in names}


__all__ = [
    "BaseVectorApplier",
    "BaseVectorGenerator",
    "ConfigError",
    "SteerConfig",
    "Workflow",
    "load_config",
    "load_workflow",
    "prepare_generation_datasets",
    "prepare_train_dataset",
    "run",
]
