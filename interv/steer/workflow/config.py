"""EasyEdit2-compatible steering configuration: a top-level file plus per-method files.

The top-level keys are EasyEdit2's (``hparams/Steer/config.yaml``): ``model_name_or_path``,
``torch_dtype``, ``device``, ``seed``, ``use_chat_template``, ``system_prompt``,
``steer_train_hparam_paths``, ``steer_train_dataset``, ``steer_vector_output_dir``,
``save_vectors``, ``apply_steer_hparam_paths``, ``steer_vector_load_dir``, ``generation_data``,
``generation_data_size``, ``generation_output_dir``, ``num_responses``,
``steer_from_end_position``, ``generate_orig_output``, ``generation_params``. They are the
fields of ``SteerConfig``, a validated dataclass like every method's hyperparameters: an
unknown key is an error naming the closest key. interv adds a few (``backend``,
``steer_train_data_size``, ``generation_batch_size``, ``eval_metrics``, ``eval_output_dir``,
``calibration``, ``vector_dtype``, ``generate_control_output``: also generate with each
vector's random control, ``SteeringVector.control``; ``ab_form``: score A/B records by the
answer letter, ``letter``, or by the answer's text after the bare question, ``answer``, see
``interv.eval.steering.ab_answer_probability``; ``overwrite``: replace outputs that exist,
refused otherwise, see ``outputs.py``) and accepts method hyperparameters inline as
well as by path (an entry of ``*_hparam_paths`` may be a mapping). A config may be a dict, a
YAML file or any mapping (OmegaConf's ``DictConfig`` included).

``load_workflow`` reads a config into a ``Workflow``: the ``SteerConfig``, where it came from
(relative paths resolve against the config file's folder when they exist there or start with
``..``, else against the working directory) and the method files, each read into a
``MethodSpec`` (its algorithm and keys, checked against the method's hyperparameters later, in
``methods.py``).

``--set key=value`` overrides a key (dotted for nested keys:
``generation_params.max_new_tokens=10``; ``<alg_name>.<field>=...`` for a method's
hyperparameters). Two spellings of one key with
different values (``dtype``/``torch_dtype``, ``alg_name``/``method``, a top-level key and the
same key in a method file, ``steer_from_end_position`` and a method's ``positions``) are an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...adapters.generation import check_generation_params
from ...contrast import AB_FORMS
from ...errors import ConfigError
from ...files import read_yaml
from ...hparams import HParams
from ..base import method_class
from ._files import parse_override, plain, set_nested

log = logging.getLogger(__name__)

ALIASES = {
    "dtype": "torch_dtype",
    "steer_vector_output_dirs": "steer_vector_output_dir",
    "model": "model_name_or_path",
}
# EasyEdit2 keys interv reads but has no use for (vLLM runtime, thinking mode...): warned about.
IGNORED = {
    "vllm_enable",
    "gpu_memory_utilization",
    "max_model_len",
    "enable_v1_multiprocessing",
    "enforce_eager",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "enable_thinking",
    "use_cache",
    "save_activations",
    "multimodal",
    "data_dir",
}
# Keys of a method file handled by the workflow, not by the method's hyperparameters.
METHOD_COMMON_IGNORED = {
    "save_activations",
    "use_cache",
    "device",
    "dtype",
    "torch_dtype",
    "steer_vector_output_dir",
    "steer_vector_load_dir",
    "steer_train_dataset",
    "save_vectors",
    "model_name_or_path",
    "seed",
    "vllm_enable",
}
STAGES = ("generate", "apply")
WORKFLOW_KEYS = ("recommended_scale",)  # per-method keys the workflow itself reads
_LISTS = (
    "steer_train_hparam_paths",
    "steer_train_dataset",
    "apply_steer_hparam_paths",
    "steer_vector_load_dir",
    "generation_data",
    "eval_metrics",
)


@dataclass(kw_only=True)
class CalibrationSpec(HParams):
    """The ``calibration`` block of a config (``interv steer calibrate``)."""

    prompts: str = ""  # a generation dataset: the prompts the sweep generates from
    n_prompts: int = 30
    metric: str = "vader_positive_share"  # a text metric, or "ab" (A/B matching probability)
    ab_dataset: str = ""  # for "ab": held-out items from the end of the generate split
    n_ab: int = 50
    goal: str = "max"
    fluency: str = "distinct_2"  # or fluency, perplexity
    fluency_floor: float = 0.8
    scales: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0, 8.0])
    layers: list[int] | None = None  # generated for the sweep (default: the method's layers)
    positions: str = "all"
    chat_template: bool = False
    max_new_tokens: int = 30

    def __post_init__(self) -> None:
        check_generation_params({"max_new_tokens": self.max_new_tokens}, "calibration")


@dataclass(kw_only=True)
class SteerConfig(HParams):
    """The top-level keys of a steering config. ``seed``, ``use_chat_template`` and
    ``system_prompt`` are None when not given; given, they also flow into every method file
    that has the same key (a different value there is an error)."""

    model_name_or_path: str | None = None
    torch_dtype: str | None = None
    device: str = "auto"
    seed: int | None = None
    use_chat_template: bool | None = None
    system_prompt: str | None = None
    steer_train_hparam_paths: list[str | dict[str, Any]] = field(default_factory=list)
    steer_train_dataset: list[str] = field(default_factory=list)
    steer_vector_output_dir: str | list[str | None] | None = None
    save_vectors: bool = True
    apply_steer_hparam_paths: list[str | dict[str, Any]] = field(default_factory=list)
    steer_vector_load_dir: list[str | None] = field(default_factory=list)
    generation_data: list[str] = field(default_factory=list)
    generation_data_size: int | None = None
    generation_output_dir: str | None = None
    num_responses: int = 1
    steer_from_end_position: bool = False
    generate_orig_output: bool = False
    generation_params: dict[str, Any] = field(default_factory=dict)
    # interv's additions
    backend: str = "hf"
    steer_train_data_size: int | None = None
    generation_batch_size: int = 16
    eval_metrics: list[str] = field(default_factory=list)  # empty: the report's defaults
    eval_output_dir: str | None = None
    calibration: dict[str, Any] = field(default_factory=dict)  # a CalibrationSpec
    vector_dtype: str = "float32"
    generate_control_output: bool = False
    ab_form: str = "letter"
    overwrite: bool = False  # replace outputs that exist (see outputs.py); else refused

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, strict: bool = True, source: str = ""
    ) -> SteerConfig:
        """EasyEdit2's spellings (``dtype``, ``model``...) and vLLM-only keys (warned about and
        dropped) are read too."""
        where = source or "steering config"
        values = _merge_aliases(dict(data), where)
        for key in sorted(IGNORED & set(values)):
            log.warning("%s: %s is an EasyEdit2 key interv does not use; ignored.", where, key)
            values.pop(key)
        for key in _LISTS:
            if key in values:
                values[key] = _as_list(values[key])
        return super().from_dict(values, strict=strict, source=where)

    def __post_init__(self) -> None:
        check_generation_params(self.generation_params)  # before any model is loaded
        if self.ab_form not in AB_FORMS:
            raise ConfigError(
                f"ab_form must be one of {', '.join(AB_FORMS)}, got {self.ab_form!r}."
            )
        if self.num_responses < 1 or self.generation_batch_size < 1:
            raise ConfigError("num_responses and generation_batch_size must be at least 1.")
        if self.calibration:
            CalibrationSpec.from_dict(self.calibration, source="calibration")

    @property
    def chat_template(self) -> bool:
        return bool(self.use_chat_template)

    @property
    def seed_value(self) -> int:
        return 0 if self.seed is None else int(self.seed)


@dataclass
class MethodSpec:
    """One per-method file: its algorithm name, keys, and where it came from."""

    alg_name: str
    values: dict[str, Any]
    source: str
    extra: dict[str, Any] = field(default_factory=dict)  # recommended_scale, positions...


@dataclass
class Workflow:
    """A loaded config: its keys, where it came from, and its method files."""

    config: SteerConfig
    folder: Path | None = None
    source: str = "inline config"
    train: list[MethodSpec] = field(default_factory=list)
    apply: list[MethodSpec] = field(default_factory=list)
    method_sets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resolve(self, path: str) -> Path:
        """A path from the config: relative to its folder when it exists there or starts with
        ``..`` (a recipe's ``../../vectors/...``), else to the working directory."""
        candidate = Path(path).expanduser()
        if (
            not candidate.is_absolute()
            and self.folder is not None
            and ((self.folder / candidate).exists() or candidate.parts[:1] == ("..",))
        ):
            return (self.folder / candidate).resolve()
        return candidate

    def data_path(self, name: str) -> str:
        """A dataset name as given, or a data file resolved like any config path."""
        if Path(name).suffix in (".json", ".jsonl"):
            return str(self.resolve(name))
        return name

    def with_config(self, **changes: Any) -> Workflow:
        """The same workflow with some top-level keys changed (validated again)."""
        return replace(self, config=self.config.replace(**changes))

    def apply_from_train(self) -> None:
        """Apply every generated method with its apply keys (``interv steer run`` without
        apply files)."""
        self.apply = [method_spec(e, self, "apply") for e in self.config.steer_train_hparam_paths]


# ---------------------------------------------------------------------------------- reading
def _merge_aliases(data: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(data)
    for alias, key in ALIASES.items():
        if alias not in out:
            continue
        value = out.pop(alias)
        if key in out and _norm(out[key]) != _norm(value):
            raise ConfigError(
                f"{where}: contradicting keys {alias}={value!r} and {key}={out[key]!r}; keep one."
            )
        out[key] = value
    return out


def _norm(value: Any) -> Any:
    """Compare a one-element list equal to its element (EasyEdit2 writes both)."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Put ``--set`` values into the top-level keys; returns the per-method ones."""
    keys = set(SteerConfig.field_names()) | set(ALIASES)
    method_sets: dict[str, dict[str, Any]] = {}
    for text in overrides:
        key, value = parse_override(text)
        head, _, rest = key.partition(".")
        head = ALIASES.get(head, head)
        if head in keys and rest:
            set_nested(data.setdefault(head, {}), rest, value, key)
        elif head in keys:
            data[head] = value
        elif rest:
            method_sets.setdefault(head, {})[rest] = value
        else:
            raise ConfigError(
                f"--set {key}: unknown key; use a top-level key or <alg_name>.<field>."
            )
    return method_sets


def load_workflow(
    source: str | Path | Mapping[str, Any] | Workflow, overrides: Sequence[str] = ()
) -> Workflow:
    """Parse a top-level config (file or mapping), apply ``--set`` overrides, read method files."""
    if isinstance(source, Workflow):
        if overrides:
            raise ConfigError("Overrides apply when a config is read; pass them with its source.")
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        data, folder, where = read_yaml(path), path.resolve().parent, str(path)
    else:
        data, folder, where = plain(source), None, "inline config"
    data = _merge_aliases(data, where)
    method_sets = _apply_overrides(data, overrides)
    workflow = Workflow(
        SteerConfig.from_dict(data, source=where), folder, where, method_sets=method_sets
    )
    config = workflow.config
    workflow.train = [method_spec(e, workflow, "generate") for e in config.steer_train_hparam_paths]
    workflow.apply = [method_spec(e, workflow, "apply") for e in config.apply_steer_hparam_paths]
    unused = set(method_sets) - {s.alg_name for s in workflow.train + workflow.apply}
    if unused:
        raise ConfigError(
            f"--set for method(s) {', '.join(sorted(unused))}, which the config does not use."
        )
    return workflow


load_config = load_workflow  # the name EasyEdit2 users look for


# ----------------------------------------------------------------------------- method files
def method_spec(entry: str | Mapping[str, Any], workflow: Workflow, stage: str) -> MethodSpec:
    """One method file (a path or an inline mapping) read for one stage (``generate`` or
    ``apply``); EasyEdit2's merged files put stage keys under ``generate:`` / ``apply:``."""
    if isinstance(entry, Mapping):
        data, source = plain(entry), "inline method hyperparameters"
    else:
        path = workflow.resolve(str(entry))
        data, source = read_yaml(path), str(path)
    sections = {name: data.pop(name) for name in STAGES if isinstance(data.get(name), Mapping)}
    own = dict(sections.get(stage, {}))
    for key, value in own.items():
        if key in data and data[key] != value:
            raise ConfigError(
                f"{source}: contradicting keys: {key}={data[key]!r} (shared) and "
                f"{stage}.{key}={value!r}; keep one."
            )
    values = {**data, **own}
    alg_name = _alg_name(values, source)
    values.update(workflow.method_sets.get(alg_name, {}))
    extra = {key: values.pop(key) for key in WORKFLOW_KEYS if key in values}
    return MethodSpec(alg_name, values, source, extra)


def _alg_name(values: dict[str, Any], source: str) -> str:
    alg = values.pop("alg_name", None)
    declared = values.get("method")
    if alg is None:
        if declared is None:
            raise ConfigError(f"{source}: name the method with `alg_name` (or `method`).")
        return str(values.pop("method")).lower()
    cls = method_class(str(alg))  # unknown names fail here, listing the known ones
    if declared is not None and "method" not in getattr(cls.hparams_class, "ee2_renames", {}):
        try:
            same = method_class(str(declared)) is cls
        except KeyError:
            same = False
        if not same:
            raise ConfigError(
                f"{source}: contradicting keys alg_name={alg!r} and method={declared!r}; keep one."
            )
        values.pop("method")
    return str(alg).lower()
