"""Where the steering workflow writes, checked before any work.

A config's outputs are the artefacts (``<steer_vector_output_dir>/<dataset>/<alg>_vector/``),
the generations (``<generation_output_dir>/<dataset>_results.json``) and the evaluation reports
(``<eval_output_dir>/<dataset>_eval.json`` and ``.md``). An output that exists is replaced only
with ``overwrite: true`` (``--overwrite`` on the command line), and artefacts are never written
into the shipped vector library except, with ``overwrite``, from a source checkout
(``interv.steer.library.check_target``). Every output of a run is checked before the model
loads, so a refused run has changed no file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...errors import ConfigError
from ...eval.report import report_paths
from ...files import check_output_file
from ..library import check_target
from .config import Workflow
from .datasets import dataset_label

OPTION = "--overwrite (overwrite: true in the config)"


def output_dirs(workflow: Workflow) -> list[Path | None]:
    """One artefact folder per method file of ``steer_train_hparam_paths``."""
    dirs = workflow.config.steer_vector_output_dir
    dirs = dirs if isinstance(dirs, list) else [dirs]
    n = len(workflow.train)
    if len(dirs) == 1:
        dirs = dirs * n
    if len(dirs) != n:
        raise ConfigError(
            f"steer_vector_output_dir lists {len(dirs)} folders for {n} method files; give one, "
            "or one per entry of steer_train_hparam_paths."
        )
    return [workflow.resolve(str(d)) if d else None for d in dirs]


def vector_folder(folder: Path, dataset: str, alg_name: str) -> Path:
    return folder / dataset_label(dataset) / f"{alg_name}_vector"


def vector_folders(workflow: Workflow, datasets: Iterable[str]) -> list[Path]:
    """The folders ``generate`` saves into (none when ``save_vectors`` is false)."""
    if not workflow.config.save_vectors:
        return []
    return [
        vector_folder(folder, name, spec.alg_name)
        for name in datasets
        for spec, folder in zip(workflow.train, output_dirs(workflow), strict=True)
        if folder is not None
    ]


def results_file(workflow: Workflow, dataset: str) -> Path:
    folder = workflow.config.generation_output_dir
    if not folder:
        raise ConfigError("generation_output_dir is not set: say where to write the results.")
    return workflow.resolve(str(folder)) / f"{dataset_label(dataset)}_results.json"


def report_folder(workflow: Workflow) -> Path | None:
    folder = workflow.config.eval_output_dir or workflow.config.generation_output_dir
    return workflow.resolve(str(folder)) if folder else None


def report_files(workflow: Workflow, dataset: str) -> list[Path]:
    folder = report_folder(workflow)
    return [] if folder is None else list(report_paths(folder, dataset_label(dataset)))


def check_vectors(workflow: Workflow, datasets: Iterable[str]) -> None:
    for folder in vector_folders(workflow, datasets):
        check_target(folder, workflow.config.overwrite)


def check_files(workflow: Workflow, paths: Iterable[Path]) -> None:
    for path in paths:
        check_output_file(path, workflow.config.overwrite, OPTION)


def check_run(workflow: Workflow) -> None:
    """Every output ``interv steer run`` writes: artefacts, generations and reports."""
    check_vectors(workflow, [str(n) for n in workflow.config.steer_train_dataset])
    generated = [str(n) for n in workflow.config.generation_data]
    check_files(workflow, [results_file(workflow, n) for n in generated])
    check_files(workflow, [p for n in generated for p in report_files(workflow, n)])
