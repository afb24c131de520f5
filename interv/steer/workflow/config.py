"""EasyEdit2-compatible steering configuration: a top-level file plus per-method files.

The top-level keys are EasyEdit2's (``hparams/Steer/config.yaml``): ``model_name_or_path``,
``torch_dtype``, ``device``, ``seed``, ``use_chat_template``, ``system_prompt``,
``steer_train_hparam_paths``, ``steer_train_dataset``, ``steer_vector_output_dir``,
``save_vectors``, ``apply_steer_hparam_paths``, ``steer_vector_load_dir``, ``generation_data``,
``generation_data_size``, ``generation_output_dir``, ``num_responses``,
``steer_from_end_position``, ``generate_orig_output``, ``generation_params``. A config may be a
dict, a YAML file or any mapping (OmegaConf's ``DictConfig`` included). interv adds a few keys
(``backend``, ``steer_train_data_size``, ``generation_batch_size``, ``eval_metrics``,
``eval_output_dir``, ``calibration``, ``vector_dtype``, ``generate_control_output``: also generate
with each vector's random control, ``SteeringVector.control``; ``ab_form``: score A/B records by
the answer letter, ``letter``, or by the answer's text after the bare question, ``answer``, see
``interv.eval.steering.ab_answer_probability``) and accepts method
hyperparameters inline as well as by path (an entry of ``*_hparam_paths`` may be a mapping).

Relative paths resolve against the config file's folder when they exist there or start with
``..``, else against the working directory.
``--set key=value`` overrides a key (dotted for nested keys: ``generation_params.max_new_tokens=10``;
``<alg_name>.<field>=...`` for a method's hyperparameters). Two spellings of one key with
different values (``dtype``/``torch_dtype``, ``alg_name``/``method``, a top-level key and the
same key in a method file, ``steer_from_end_position`` and a method's ``positions``) are an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...data.steering import AB_FORMS

log = logging.getLogger(__name__)

TOP_KEYS = {
    "model_name_or_path": None, "torch_dtype": None, "device": "auto", "seed": 0,
    "use_chat_template": False, "system_prompt": "", "steer_train_hparam_paths": [],
    "steer_train_dataset": [], "steer_vector_output_dir": None, "save_vectors": True,
    "apply_steer_hparam_paths": [], "steer_vector_load_dir": [], "generation_data": [],
    "generation_data_size": None, "generation_output_dir": None, "num_responses": 1,
    "steer_from_end_position": False, "generate_orig_output": False, "generation_params": {},
    # interv's additions
    "backend": "hf", "steer_train_data_size": None, "generation_batch_size": 16,
    "eval_metrics": [], "eval_output_dir": None, "calibration": {}, "vector_dtype": "float32",
    "generate_control_output": False, "ab_form": "letter",
}
ALIASES = {"dtype": "torch_dtype", "steer_vector_output_dirs": "steer_vector_output_dir",
           "model": "model_name_or_path"}
# EasyEdit2 keys interv reads but has no use for (vLLM runtime, thinking mode...): warned about.
IGNORED = {"vllm_enable", "gpu_memory_utilization", "max_model_len", "enable_v1_multiprocessing",
           "enforce_eager", "tensor_parallel_size", "pipeline_parallel_size", "enable_thinking",
           "use_cache", "save_activations", "multimodal", "data_dir"}
# Keys of a method file handled by the workflow, not by the method's hyperparameters.
METHOD_COMMON_IGNORED = {"save_activations", "use_cache", "device", "dtype", "torch_dtype",
                         "steer_vector_output_dir", "steer_vector_load_dir", "steer_train_dataset",
                         "save_vectors", "model_name_or_path", "seed", "vllm_enable"}


class ConfigError(ValueError):
    """A steering configuration that cannot be run; nothing was loaded or written."""


@dataclass
class MethodSpec:
    """One per-method file: its algorithm name, keys, and where it came from."""

    alg_name: str
    values: dict[str, Any]
    source: str
    extra: dict[str, Any] = field(default_factory=dict)  # recommended_scale, positions...


@dataclass
class SteerConfig:
    """A parsed top-level config; ``values`` holds every top-level key with its default."""

    values: dict[str, Any]
    folder: Path | None
    train: list[MethodSpec]
    apply: list[MethodSpec]
    source: str = "inline config"
    method_sets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def resolve(self, path: str) -> Path:
        """A path from the config: relative to its folder when it exists there or starts with
        ``..`` (a recipe's ``../../vectors/...``), else to the working directory."""
        candidate = Path(path).expanduser()
        if not candidate.is_absolute() and self.folder is not None and (
            (self.folder / candidate).exists() or candidate.parts[:1] == ("..",)
        ):
            return (self.folder / candidate).resolve()
        return candidate


    def data_path(self, name: str) -> str:
        """A dataset name as given, or a data file resolved like any config path."""
        if Path(name).suffix in (".json", ".jsonl"):
            return str(self.resolve(name))
        return name


def _plain(value: Any) -> Any:
    """OmegaConf containers (and any mapping / sequence) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return [_plain(v) for v in value]
    return value


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of keys.")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``3``, ``[1, 2]``, ``true``, ``text``)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: write key=value.")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


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


def _check_top(data: dict[str, Any], where: str) -> dict[str, Any]:
    values = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
              for k, v in TOP_KEYS.items()}
    for key, value in data.items():
        if key in IGNORED:
            log.warning("%s: %s is an EasyEdit2 key interv does not use; ignored.", where, key)
        elif key in TOP_KEYS:
            values[key] = value
        else:
            import difflib

            close = difflib.get_close_matches(key, list(TOP_KEYS), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}.{hint}")
    values["_explicit"] = {k for k in data if k in TOP_KEYS}
    for key in ("steer_train_hparam_paths", "steer_train_dataset", "apply_steer_hparam_paths",
                "steer_vector_load_dir", "generation_data", "eval_metrics"):
        values[key] = _as_list(values[key])
    if not isinstance(values["generation_params"], dict):
        raise ConfigError(f"{where}: generation_params must be a mapping of generation settings.")
    if values["ab_form"] not in AB_FORMS:
        raise ConfigError(f"{where}: ab_form must be one of {', '.join(AB_FORMS)}, "
                          f"got {values['ab_form']!r}.")
    return values


def load_config(source: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> SteerConfig:
    """Parse a top-level config (file or mapping), apply ``--set`` overrides, read method files."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        data, folder, where = read_yaml(path), path.resolve().parent, str(path)
    else:
        data, folder, where = _plain(source), None, "inline config"
    data = _merge_aliases(data, where)
    method_sets: dict[str, dict[str, Any]] = {}
    for text in overrides:
        key, value = parse_override(text)
        head, _, rest = key.partition(".")
        head = ALIASES.get(head, head)
        if head in TOP_KEYS and rest:
            _set_nested(data.setdefault(head, {}), rest, value, key)
        elif head in TOP_KEYS:
            data[head] = value
        elif rest:
            method_sets.setdefault(head, {})[rest] = value
        else:
            raise ConfigError(f"--set {key}: unknown key; use a top-level key or <alg_name>.<field>.")
    values = _check_top(data, where)
    config = SteerConfig(values, folder, [], [], where, method_sets)
    config.train = [_method_spec(e, config, "generate", method_sets) for e in values["steer_train_hparam_paths"]]
    config.apply = [_method_spec(e, config, "apply", method_sets) for e in values["apply_steer_hparam_paths"]]
    unused = set(method_sets) - {s.alg_name for s in config.train + config.apply}
    if unused:
        raise ConfigError(f"--set for method(s) {', '.join(sorted(unused))}, which the config does not use.")
    return config


def apply_from_train(config: SteerConfig) -> None:
    """Apply every generated method with its apply keys (``interv steer run`` without apply files)."""
    entries = config["steer_train_hparam_paths"]
    config.apply = [_method_spec(e, config, "apply", config.method_sets) for e in entries]


def _set_nested(target: dict[str, Any], dotted: str, value: Any, key: str) -> None:
    if not isinstance(target, dict):
        raise ConfigError(f"--set {key}: the parent key is not a mapping.")
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _method_spec(entry: Any, config: SteerConfig, stage: str, sets: dict[str, dict[str, Any]]) -> MethodSpec:
    from .methods import method_spec

    if isinstance(entry, Mapping):
        data, source = _plain(entry), "inline method hyperparameters"
    else:
        path = config.resolve(str(entry))
        data, source = read_yaml(path), str(path)
    return method_spec(data, source, stage, config, sets)
