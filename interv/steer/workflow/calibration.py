"""``interv steer calibrate``: calibrate the vector a config generates, from its ``calibration`` block.

The block (interv's addition to the top-level config)::

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
from pathlib import Path
from typing import Any

from ...data.steering import caa_ab
from ..calibrate import Calibration, calibrate
from ..library import save
from ..vector import SteeringVector
from .config import ConfigError, load_config
from .datasets import BEHAVIOURS, dataset_label, generation_records
from .generator import BaseVectorGenerator

KEYS = {"prompts", "n_prompts", "metric", "ab_dataset", "n_ab", "goal", "fluency", "fluency_floor",
        "scales", "layers", "positions", "chat_template", "max_new_tokens"}


def _ab_metric(model: Any, behaviour: str, n: int, chat: bool, form: str):
    from ...eval.steering import ab_scorer

    score = ab_scorer(form)
    name = BEHAVIOURS.get(behaviour, behaviour)
    items = caa_ab(name, "generate")[-n:]

    def ab(texts: list[str], graph: Any) -> float:
        hooks = graph.hook_fns(model) if len(graph) else None
        return statistics.fmean(score(model, items, hooks=hooks, chat_template=chat))

    return ab


def calibrate_config(path: str | Path, overrides: Sequence[str] = (), *, write: bool = False
                     ) -> tuple[Calibration, Path | None]:
    """Generate the config's (first) vector at the sweep layers, calibrate it, optionally save."""
    config = load_config(path, overrides)
    block = dict(config["calibration"] or {})
    unknown = set(block) - KEYS
    if unknown:
        raise ConfigError(f"calibration: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(KEYS))}.")
    if not block.get("prompts"):
        raise ConfigError("calibration.prompts is missing: name the dataset of prompts to sweep on.")
    if not config.train:
        raise ConfigError("steer_train_hparam_paths is empty: calibration needs a method to generate.")
    spec = config.train[0]
    if "layers" in block:
        spec.values["layers"] = list(block["layers"])
    config.values["save_vectors"] = False
    generator = BaseVectorGenerator(config)
    vectors = generator.generate_vectors()
    dataset = next(iter(vectors))
    vector = vectors[dataset][spec.alg_name]
    if not isinstance(vector, SteeringVector):
        raise ConfigError(f"{spec.alg_name} does not produce a steering vector; only vectors are calibrated.")
    model = generator._model()
    chat = bool(block.get("chat_template", False))
    metric: Any = block.get("metric", "vader_positive_share")
    if metric == "ab":
        metric = _ab_metric(model, str(block.get("ab_dataset", dataset)), int(block.get("n_ab", 50)),
                            chat, str(config["ab_form"]))
    prompts = [r["input"] for r in generation_records(config.data_path(str(block["prompts"])), int(block.get("n_prompts", 30)))]
    result = calibrate(
        model, vector, metric, float(block.get("fluency_floor", 0.8)), prompts=prompts,
        scales=[float(s) for s in block.get("scales", [1, 2, 4, 8])], goal=str(block.get("goal", "max")),
        fluency=str(block.get("fluency", "distinct_2")), positions=str(block.get("positions", "all")),
        generation={"max_new_tokens": int(block.get("max_new_tokens", 30)), "chat_template": chat},
    )
    written = None
    if write and result.best is not None:
        best = result.best
        chosen = vector.at_layers([best.layer]) if best.layer is not None else vector
        summary = {k: v for k, v in result.to_dict().items() if k != "points"}
        chosen = chosen.replace(recommended_scale=best.scale, meta={**chosen.meta, "calibration": summary})
        folder = config["steer_vector_output_dir"]
        folder = folder[0] if isinstance(folder, list) else folder
        if not folder:
            raise ConfigError("steer_vector_output_dir is not set: say where to write the vector.")
        written = save(chosen, config.resolve(str(folder)) / dataset_label(dataset) / f"{spec.alg_name}_vector",
                       str(config["vector_dtype"]))
    return result, written
