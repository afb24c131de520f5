"""Per-method files: EasyEdit2's keys to interv's generate and apply hyperparameters.

A method file names its algorithm (``alg_name`` or ``method``) and holds generate keys, apply
keys, or both; EasyEdit2's merged files put stage keys under ``generate:`` / ``apply:``. Each
stage keeps the keys its hyperparameter class knows and drops the other stage's keys. Keys
EasyEdit2 defines but interv has no use for are dropped with a log line; any other key is an
error (typos must fail).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...hparams import HParams
from ..apply import ApplyHParams
from ..base import SteerMethod, method_class
from .config import METHOD_COMMON_IGNORED, ConfigError, MethodSpec

if TYPE_CHECKING:
    from .config import SteerConfig

log = logging.getLogger(__name__)
STAGES = ("generate", "apply")
WORKFLOW_KEYS = ("recommended_scale",)  # per-method keys the workflow itself reads
INHERITED = {"use_chat_template": "chat_template", "system_prompt": "system_prompt", "seed": "seed"}


def method_spec(data: dict[str, Any], source: str, stage: str, config: SteerConfig,
                sets: Mapping[str, dict[str, Any]]) -> MethodSpec:
    """Validate one method file for one stage (``generate`` or ``apply``)."""
    data = dict(data)
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
    values.update(sets.get(alg_name, {}))
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


def _fields(cls: type[HParams]) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def apply_class(method: type[SteerMethod]) -> type[ApplyHParams]:
    return getattr(method, "apply_hparams_class", ApplyHParams)


def _split(spec: MethodSpec, mine: type[HParams], other: type[HParams], cls: type[SteerMethod]) -> dict[str, Any]:
    renames = getattr(mine, "ee2_renames", {})
    ignored = METHOD_COMMON_IGNORED | set(getattr(cls.hparams_class, "ee2_ignored", ()))
    out: dict[str, Any] = {}
    for key, value in spec.values.items():
        target = renames.get(key, key)
        if target in out and out[target] != value:
            raise ConfigError(f"{spec.source}: contradicting keys {key} and {target}; keep one.")
        if target in _fields(mine):
            out[target] = value
        elif target in _fields(other) or key in _fields(other):
            continue  # the other stage's key
        elif key in ignored:
            log.info("%s: %s is not used by interv; ignored.", spec.source, key)
        else:
            valid = ", ".join(sorted(_fields(mine) | _fields(other)))
            raise ConfigError(f"{spec.source}: unknown {spec.alg_name} key {key!r}. Valid keys: {valid}.")
    return out


def _inherit(values: dict[str, Any], fields: set[str], config: SteerConfig, source: str) -> None:
    """Top-level keys a method also has (chat template, system prompt, seed) flow down."""
    explicit = config.get("_explicit", set())
    for top, name in INHERITED.items():
        if name not in fields or top not in explicit:
            continue
        if name in values and values[name] != config[top]:
            raise ConfigError(
                f"{source}: contradicting keys: top-level {top}={config[top]!r} and "
                f"{name}={values[name]!r} in the method file; keep one."
            )
        values[name] = config[top]


def train_hparams(spec: MethodSpec, config: SteerConfig, dataset: str) -> SteerMethod:
    """The method object for generation, hyperparameters validated."""
    cls = method_class(spec.alg_name)
    values = _split(spec, cls.hparams_class, apply_class(cls), cls)
    fields = _fields(cls.hparams_class)
    _inherit(values, fields, config, spec.source)
    if "dataset" in fields and not values.get("dataset"):
        values["dataset"] = dataset
    try:
        return cls(cls.hparams_class.from_dict(values))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{spec.source}: {err}") from None


def apply_hparams(spec: MethodSpec, config: SteerConfig) -> ApplyHParams:
    """The apply spec of a method file (positions follow ``steer_from_end_position``)."""
    cls = method_class(spec.alg_name)
    hclass = apply_class(cls)
    values = _split(spec, hclass, cls.hparams_class, cls)
    if config["steer_from_end_position"]:
        if values.get("positions", "from_last_prompt_token") != "from_last_prompt_token":
            raise ConfigError(
                f"{spec.source}: positions={values['positions']!r} contradicts the top-level "
                "steer_from_end_position: true; keep one."
            )
        values["positions"] = "from_last_prompt_token"
    try:
        return hclass.from_dict(values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{spec.source}: {err}") from None


def generation_only(spec: MethodSpec) -> SteerMethod:
    """The method built from an apply-stage file (for methods that need no data: prompt, merge)."""
    cls = method_class(spec.alg_name)
    values = _split(spec, cls.hparams_class, apply_class(cls), cls)
    try:
        return cls(cls.hparams_class.from_dict(values))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{spec.source}: {err}") from None
