"""``BaseVectorApplier``: EasyEdit2's apply-and-generate entry point on interv's graphs.

Every configured method (``apply_steer_hparam_paths`` paired line by line with
``steer_vector_load_dir``) becomes a ``Steering``; they stack into one graph plus an optional
prompt intervention. ``generate`` writes ``<generation_output_dir>/<dataset>_results.json``
with EasyEdit2's records ``{input, orig_pred, pred: [...], reference_response,
complete_output}``; records of CAA A/B test sets also get ``ab_probability`` (steered) and
``orig_ab_probability`` (of the answer letter, or of the answer's text with ``ab_form:
answer``). With ``generate_control_output`` each steering vector is also replaced by its control
(``SteeringVector.control``: a random direction orthogonal to it, same norm, layers and
strength; other artefacts stay as they are) and the records get ``control_pred`` and
``control_ab_probability``: what any push of that size does.

Example:
    >>> from interv.steer.workflow import BaseVectorApplier
    >>> applier = BaseVectorApplier("recipes/steer/sentiment_positive.yaml")  # doctest: +SKIP
    >>> applier.apply_vectors()  # doctest: +SKIP
    >>> results = applier.generate()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...adapters import HookedModel
from ...adapters.text import apply_chat_template
from ...contrast import ABItem
from ...errors import ConfigError
from ...eval.steering import ab_scorer
from ...files import check_output_file, write_json
from ..apply import Steerable, Steering
from ..library import load
from ..vector import SteeringVector
from .config import Workflow, load_workflow
from .datasets import generation_records
from .generator import load_model
from .methods import apply_hparams, generation_only
from .outputs import OPTION, check_files, results_file

log = logging.getLogger(__name__)
SAMPLING = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k")


class BaseVectorApplier:
    """Apply the configured steering and generate from the configured datasets."""

    def __init__(
        self, top_cfg: Mapping[str, Any] | Workflow | str | Path, overrides: Sequence[str] = ()
    ):
        self.workflow = load_workflow(top_cfg, overrides)
        self.config = self.workflow.config
        self.specs = [apply_hparams(spec, self.workflow) for spec in self.workflow.apply]
        self.model: HookedModel | None = None
        self.steering = Steering()
        self.control: Steering | None = None

    def _model(self) -> HookedModel:
        if self.model is None:
            self.model = load_model(self.workflow)
        return self.model

    def _load_dirs(self) -> list[str | None]:
        dirs = list(self.config.steer_vector_load_dir)
        if dirs and len(dirs) != len(self.specs):
            raise ConfigError(
                f"steer_vector_load_dir lists {len(dirs)} entries for {len(self.specs)} apply "
                "method files; they pair line by line (use null for a method that needs no vector)."
            )
        return dirs or [None] * len(self.specs)

    def apply_vectors(
        self, vectors: Mapping[str, Any] | None = None, model: HookedModel | None = None
    ) -> Steering:
        """Build the steering; ``vectors`` maps alg_name to an artefact (e.g. from the
        generator)."""
        if model is not None:
            self.model = model
        given = _flatten(vectors)
        total, control, n_vectors = Steering(), Steering(), 0
        want_control = self.config.generate_control_output
        for spec, hp, folder in zip(
            self.workflow.apply, self.specs, self._load_dirs(), strict=True
        ):
            artefact: Steerable | None = given.get(spec.alg_name)
            if artefact is None and folder:
                artefact = load(self.workflow.resolve(folder), spec.alg_name)
            if artefact is None:
                method = generation_only(spec)
                if method.needs_data:
                    raise ConfigError(
                        f"{spec.source}: {spec.alg_name} needs a vector; set its "
                        "steer_vector_load_dir or generate it first (interv steer run)."
                    )
                artefact = method.fit(self._model(), None)
            artefact.check(self._model())  # another model, layer or width fails here
            steering = artefact.steering(hp)
            if len(steering.graph):
                steering.graph.hook_fns(self._model())  # wrong model, layer or width fails here
            total = total + steering
            if want_control and isinstance(artefact, SteeringVector):  # one draw per vector
                seed = self.config.seed_value + n_vectors
                control = control + artefact.control(seed).steering(hp)
                n_vectors += 1
            elif want_control:  # prompts and graphs stay as they are
                control = control + steering
        if want_control and not n_vectors:
            raise ConfigError(
                "generate_control_output needs a steering vector to draw a control "
                "for; none of the apply methods has one (set it to false)."
            )
        self.steering = total
        self.control = control if want_control else None
        self._model().on_reset(self.reset)  # EasyEdit2's model.reset_all() clears it
        return total

    def reset(self) -> None:
        """Forget the applied steering: ``generate`` then gives the model's own outputs."""
        self.steering, self.control = Steering(), None

    def generate(
        self,
        datasets: Mapping[str, list[dict[str, Any]]] | Sequence[str] | None = None,
        save_results: bool = True,
        **generation_params: Any,
    ) -> dict[str, list[dict[str, Any]]]:
        """Generate for each dataset; returns ``{dataset: records}`` (and writes them)."""
        named = self._datasets(datasets)
        if save_results:  # refused before any generation, not after it
            check_files(self.workflow, [results_file(self.workflow, n) for n in named])
        params = dict(self.config.generation_params)
        params.update(generation_params)
        out = {}
        for name, records in named.items():
            records = [r for r in records if r.get("input")]
            results = self._generate_records(records, params)
            if any("matching" in r for r in records):
                self._ab_scores(records, results)
            out[name] = results
            if save_results:
                self.save_results(results, name)
        return out

    def _datasets(self, datasets: Any) -> dict[str, list[dict[str, Any]]]:
        size = self.config.generation_data_size
        size = None if size is None or size <= 0 else int(size)
        if isinstance(datasets, Mapping):
            return {k: list(v)[:size] if size else list(v) for k, v in datasets.items()}
        names = list(datasets) if datasets is not None else self.config.generation_data
        if not names:
            raise ConfigError("generation_data is empty: name the dataset(s) to generate from.")
        return {str(n): generation_records(self.workflow.data_path(str(n)), size) for n in names}

    def _texts(
        self, inputs: list[str], steering: Steering, params: dict[str, Any], seed: int
    ) -> list[str]:
        model, batch = self._model(), self.config.generation_batch_size
        out: list[str] = []
        for start in range(0, len(inputs), batch):
            out += steering.generate(
                model,
                inputs[start : start + batch],
                chat_template=self.config.chat_template,
                system_prompt=self.config.system_prompt or None,
                seed=seed,
                **params,
            )
        return out

    def _generate_records(
        self, records: list[dict[str, Any]], params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        inputs = [r["input"] for r in records]
        n = self.config.num_responses
        seeds = list(range(n)) if n > 1 else [self.config.seed_value]
        preds = [self._texts(inputs, self.steering, params, s) for s in seeds]
        orig = (
            self._texts(inputs, Steering(), params, seeds[0])
            if self.config.generate_orig_output
            else None
        )
        control = (
            None if self.control is None else self._texts(inputs, self.control, params, seeds[0])
        )
        shown = self._shown_inputs(inputs)
        results = []
        for i, record in enumerate(records):
            responses = [p[i] for p in preds]
            results.append(
                {
                    "input": record["input"],
                    "orig_pred": [orig[i]] if orig is not None else [],
                    "pred": responses,
                    "reference_response": record.get("reference_response"),
                    "complete_output": [shown[i] + r for r in responses],
                }
            )
            if control is not None:
                results[-1]["control_pred"] = [control[i]]
        return results

    def _shown_inputs(self, inputs: list[str]) -> list[str]:
        """The text the model saw (prompt intervention and chat template applied)."""
        texts, system = list(inputs), self.config.system_prompt or None
        if self.steering.prompt is not None:
            texts, system = self.steering.prompt.apply(texts, system)
        if self.config.chat_template:
            return apply_chat_template(self._model().tokenizer, texts, system)
        return [f"{system}\n\n{t}" if system else t for t in texts]

    def _ab_scores(self, records: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        score = ab_scorer(self.config.ab_form)
        items = [ABItem(r["input"], r["matching"], r["not_matching"]) for r in records]

        def scores(steering: Steering) -> list[float]:
            graph = steering.graph
            hooks = graph.hook_fns(self._model()) if len(graph) else None
            return score(self._model(), items, hooks=hooks, chat_template=self.config.chat_template)

        steered, plain = scores(self.steering), scores(Steering())
        for result, record, p, q in zip(results, records, steered, plain, strict=True):
            result.update(
                matching=record["matching"],
                not_matching=record["not_matching"],
                ab_probability=p,
                orig_ab_probability=q,
            )
        if self.control is not None:
            for result, c in zip(results, scores(self.control), strict=True):
                result["control_ab_probability"] = c

    def save_results(self, results: list[dict[str, Any]], dataset_name: str) -> Path:
        path = results_file(self.workflow, dataset_name)
        check_output_file(path, self.config.overwrite, OPTION)
        write_json(path, results, ensure_ascii=False)
        log.info("wrote %s", path)
        return path


def _flatten(vectors: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{alg: artefact}``; a generator's ``{dataset: {alg: artefact}}`` with one dataset works
    too."""
    if not vectors:
        return {}
    values = list(vectors.values())
    if all(isinstance(v, Mapping) for v in values):
        if len(values) != 1:
            raise ConfigError(
                "apply_vectors got vectors for several datasets; pass one dataset's vectors."
            )
        return dict(values[0])
    return dict(vectors)
