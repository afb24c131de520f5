"""Method files to interv's generate and apply hyperparameters.

A method file (a ``MethodSpec``, read by ``config.method_spec``) names its algorithm and holds
generate keys, apply keys, or both. Each stage keeps the keys its hyperparameter class knows and
drops the other stage's keys. Keys EasyEdit2 defines but interv has no use for are dropped with
a log line; any other key is an error naming the closest valid key (typos must fail).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ...errors import ConfigError, UnknownKeyError
from ...hparams import HParams
from ..apply import ApplyHParams
from ..base import SteerMethod, method_class
from .config import METHOD_COMMON_IGNORED, MethodSpec, Workflow

log = logging.getLogger(__name__)
# top-level key -> the method field it flows into when the config sets it
INHERITED = {"use_chat_template": "chat_template", "system_prompt": "system_prompt", "seed": "seed"}


def _fields(cls: type[HParams]) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _split(
    spec: MethodSpec, mine: type[HParams], other: type[HParams], cls: type[SteerMethod]
) -> dict[str, Any]:
    renames = getattr(mine, "ee2_renames", {})
    ignored = METHOD_COMMON_IGNORED | set(getattr(cls.hparams_class, "ee2_ignored", ()))
    convert = getattr(cls.hparams_class, "from_easyedit2", None)  # keys that change shape
    values = convert(dict(spec.values), spec.source) if convert else spec.values
    out: dict[str, Any] = {}
    for key, value in values.items():
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
            raise UnknownKeyError(
                f"{spec.source}: {spec.alg_name}", key, _fields(mine) | _fields(other)
            )
    return out


def _inherit(values: dict[str, Any], fields: set[str], workflow: Workflow, source: str) -> None:
    """Top-level keys a method also has (chat template, system prompt, seed) flow down when
    the config sets them."""
    for top, name in INHERITED.items():
        given = getattr(workflow.config, top)
        if name not in fields or given is None:
            continue
        if name in values and values[name] != given:
            raise ConfigError(
                f"{source}: contradicting keys: top-level {top}={given!r} and "
                f"{name}={values[name]!r} in the method file; keep one."
            )
        values[name] = given


def _build(cls: type[SteerMethod], values: dict[str, Any], source: str) -> SteerMethod:
    try:
        return cls(cls.hparams_class.from_dict(values, source=f"{source}: {cls.name}"))
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{source}: {err}") from None


def train_hparams(spec: MethodSpec, workflow: Workflow, dataset: str) -> SteerMethod:
    """The method object for generation, hyperparameters validated."""
    cls = method_class(spec.alg_name)
    values = _split(spec, cls.hparams_class, cls.apply_hparams_class, cls)
    fields = _fields(cls.hparams_class)
    _inherit(values, fields, workflow, spec.source)
    if "dataset" in fields and not values.get("dataset"):
        values["dataset"] = dataset
    return _build(cls, values, spec.source)


def apply_hparams(spec: MethodSpec, workflow: Workflow) -> ApplyHParams:
    """The apply spec of a method file (positions follow ``steer_from_end_position``)."""
    cls = method_class(spec.alg_name)
    hclass = cls.apply_hparams_class
    values = _split(spec, hclass, cls.hparams_class, cls)
    if workflow.config.steer_from_end_position:
        if values.get("positions", "from_last_prompt_token") != "from_last_prompt_token":
            raise ConfigError(
                f"{spec.source}: positions={values['positions']!r} contradicts the top-level "
                "steer_from_end_position: true; keep one."
            )
        values["positions"] = "from_last_prompt_token"
    return hclass.from_dict(values, source=f"{spec.source}: {spec.alg_name} (apply)")


def generation_only(spec: MethodSpec) -> SteerMethod:
    """The method built from an apply-stage file (for methods that need no data: prompt, merge)."""
    cls = method_class(spec.alg_name)
    return _build(cls, _split(spec, cls.hparams_class, cls.apply_hparams_class, cls), spec.source)
