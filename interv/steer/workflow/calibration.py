"""``interv steer calibrate``: calibrate the vector a config generates, from its
``calibration`` block.

The block (interv's addition to the top-level config; its keys are
``config.CalibrationSpec``'s)::

    calibration:
      prompts: sentiment_neutral   # a generation dataset: the prompts the sweep generates from
      n_prompts: 30
      metric: vader_positive_share # a text metric, or "ab" (A/B matching probability)
      ab_dataset: refusal          # for "ab": held-out items from the end of the generate split
      n_ab: 50
      goal: max
      fluency: distinct_2          # or fluency, perplexity
      fluency_floor: 0.8
      scales: [2, 4, 8]
      layers: [6, 10, 14]          # generated for the sweep (default: the method's layers)
      positions: all
      chat_template: false
      max_new_tokens: 30

With ``--write`` the vector is saved at the chosen layer with the chosen recommended scale,
where ``interv steer generate`` would have saved it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...data.steering import caa_ab
from ...errors import ConfigError
from ...eval.steering import ab_scorer
from ...graph import Graph
from ..calibrate import Calibration, Metric, calibrate
from ..library import check_target, save
from ..vector import SteeringVector
from .config import CalibrationSpec, Workflow, load_workflow
from .datasets import BEHAVIOURS, generation_records
from .generator import BaseVectorGenerator
from .outputs import output_dirs, vector_folder


def _ab_metric(model: Any, behaviour: str, n: int, chat: bool, form: str) -> Metric:
    score = ab_scorer(form)
    name = BEHAVIOURS.get(behaviour, behaviour)
    items = caa_ab(name, "generate")[-n:]

    def ab(texts: list[str], graph: Graph) -> float:
        hooks = graph.hook_fns(model) if len(graph) else None
        return statistics.fmean(score(model, items, hooks=hooks, chat_template=chat))

    return ab


def _sweep_workflow(workflow: Workflow, spec: CalibrationSpec) -> Workflow:
    """The workflow that generates the vector to calibrate: its first method, at the sweep's
    layers, not saved."""
    if not spec.prompts:
        raise ConfigError(
            "calibration.prompts is missing: name the dataset of prompts to sweep on."
        )
    if not workflow.train:
        raise ConfigError(
            "steer_train_hparam_paths is empty: calibration needs a method to generate."
        )
    first = workflow.train[0]
    if spec.layers is not None:
        first = replace(first, values={**first.values, "layers": list(spec.layers)})
    return replace(workflow.with_config(save_vectors=False), train=[first, *workflow.train[1:]])


def calibrate_config(
    path: str | Path, overrides: Sequence[str] = (), *, write: bool = False
) -> tuple[Calibration, Path | None]:
    """Generate the config's (first) vector at the sweep layers, calibrate it, optionally save."""
    workflow = load_workflow(path, overrides)
    config = workflow.config
    spec = CalibrationSpec.from_dict(config.calibration, source=f"{workflow.source}: calibration")
    sweep = _sweep_workflow(workflow, spec)
    method = sweep.train[0]
    target = _target(workflow, method.alg_name) if write else None
    generator = BaseVectorGenerator(sweep)
    vectors = generator.generate_vectors()
    dataset = next(iter(vectors))
    vector = vectors[dataset][method.alg_name]
    if not isinstance(vector, SteeringVector):
        raise ConfigError(
            f"{method.alg_name} does not produce a steering vector; only vectors are calibrated."
        )
    model = generator._model()
    metric: str | Metric = spec.metric
    if spec.metric == "ab":
        metric = _ab_metric(
            model, spec.ab_dataset or dataset, spec.n_ab, spec.chat_template, config.ab_form
        )
    records = generation_records(workflow.data_path(spec.prompts), spec.n_prompts)
    result = calibrate(
        model,
        vector,
        metric,
        spec.fluency_floor,
        prompts=[r["input"] for r in records],
        scales=spec.scales,
        goal=spec.goal,
        fluency=spec.fluency,
        positions=spec.positions,
        generation={"max_new_tokens": spec.max_new_tokens, "chat_template": spec.chat_template},
    )
    written = None
    if target is not None and result.best is not None:
        best = result.best
        chosen = vector.at_layers([best.layer]) if best.layer is not None else vector
        summary = {k: v for k, v in result.to_dict().items() if k != "points"}
        chosen = chosen.replace(
            recommended_scale=best.scale, meta={**chosen.meta, "calibration": summary}
        )
        written = save(chosen, target, config.vector_dtype, overwrite=config.overwrite)
    return result, written


def _target(workflow: Workflow, alg_name: str) -> Path:
    """Where ``--write`` saves the calibrated vector (checked before the sweep runs)."""
    folders = output_dirs(workflow)
    names = workflow.config.steer_train_dataset
    if not folders or folders[0] is None or not names:
        raise ConfigError(
            "steer_vector_output_dir and steer_train_dataset must be set: say where to write "
            "the vector."
        )
    folder = vector_folder(folders[0], str(names[0]), alg_name)
    return check_target(folder, workflow.config.overwrite)
