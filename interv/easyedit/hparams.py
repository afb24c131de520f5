"""EasyEdit's ``<Method>HyperParams.from_hparams(yaml)``, generated from interv's method registry.

An EasyEdit YAML file names its method (``alg_name: ROME``) and mixes method hyperparameters
(``layers``, ``v_lr``, ``kl_factor``...; interv's dataclasses use the same key names) with
machine and module settings interv does not need (``device``, ``stats_dir``,
``rewrite_module_tmp``...: interv finds modules by canonical weight names). Loading maps
``alg_name`` to a registered method (``ROME`` -> ``rome``, ``AlphaEdit`` -> ``alphaedit``,
``FT`` -> ``ft-l`` or ``ft-m`` by ``objective_optimization``), validates the method's keys with
its dataclass, and gives one warning naming every key it ignores.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from ..edit.base import EDIT_METHODS
from ..errors import ConfigError, MissingAttributeError, MissingFileError, UnavailableError
from ..files import read_yaml
from ..hparams import HParams

# EasyEdit's spelling of a registry id, where it is not simply the id in capitals.
EASYEDIT_NAMES = {"ft-l": "FT", "ft-m": "FT", "alphaedit": "AlphaEdit", "r-rome": "R-ROME"}
FT_OBJECTIVES = {"prompt_last": "ft-l", "target_new": "ft-m"}
# EasyEdit classes served by another method when no method of their own is registered
# (R-ROME's key-consistency fix is an option of interv's ROME).
ALIASES = {"R_ROMEHyperParams": "rome"}
# Keys the facade itself reads, when the method's dataclass does not declare them.
FACADE_KEYS = ("batch_size", "max_length", "evaluation_type")
EVALUATION_TYPES = ("LLM-judge", "generate-text")
# EasyEdit values that name hub downloads; interv drops them (with the ignored keys) so the
# method's own default applies (statistics from the corpus interv ships).
HUB_VALUES = {"mom2_dataset": ("wikipedia", "wikitext", "wikitext-103", "wikitext-2")}


def _machine_value(key: str, value: Any) -> bool:
    """EasyEdit values that name resources interv replaces (the hub's Wikipedia for statistics)."""
    return key in HUB_VALUES and str(value).lower() in HUB_VALUES[key]


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def easyedit_name(method: str) -> str:
    """EasyEdit's ``alg_name`` for a registry id (``alphaedit`` -> ``AlphaEdit``)."""
    return EASYEDIT_NAMES.get(method, method.upper())


def class_name(method: str) -> str:
    return easyedit_name(method).replace("-", "_") + "HyperParams"


def registry_id(alg_name: str, config: dict[str, Any]) -> str:
    """The interv method for an EasyEdit ``alg_name`` (and, for FT, its objective)."""
    key = _key(str(alg_name))
    if key == "ft":
        objective = config.get("objective_optimization", "prompt_last")
        if objective not in FT_OBJECTIVES:
            raise ConfigError(
                f"FT objective_optimization {objective!r} is not supported; use one of "
                f"{', '.join(FT_OBJECTIVES)} (FT-L, FT-M)."
            )
        return FT_OBJECTIVES[objective]
    known = {_key(name): name for name in EDIT_METHODS.names()}
    if key in known:
        return known[key]
    if key == "rrome" and "rome" in known:  # see ALIASES
        return "rome"
    raise ConfigError(
        f"EasyEdit method {alg_name!r} is not available in interv; available: "
        f"{', '.join(sorted({easyedit_name(n) for n in EDIT_METHODS.names()}))}."
    )


class HyperParams:
    """EasyEdit-style hyperparameters: an interv method id, its ``HParams`` and the model name.

    Attributes of the method's dataclass read and write through (``hparams.layers = [6]``
    validates again); ``params`` is the interv dataclass itself.
    """

    methods: ClassVar[tuple[str, ...]] = ()  # registry ids this class loads; () means any

    def __init__(
        self,
        method: str,
        params: HParams,
        *,
        model_name: Any = None,
        alg_name: str | None = None,
        ignored: dict[str, Any] | None = None,
        batch_size: int | None = None,
        max_length: int | None = None,
        evaluation_type: str | None = None,
    ):
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "alg_name", alg_name or easyedit_name(method))
        object.__setattr__(self, "model_name", model_name)
        object.__setattr__(self, "ignored", dict(ignored or {}))
        facade = {
            "batch_size": batch_size,
            "max_length": max_length,
            "evaluation_type": evaluation_type,
        }
        for name, value in facade.items():  # the method's own field wins when it has one
            if name not in params.field_names():
                object.__setattr__(self, name, value)
        for name in ("batch_size", "max_length"):  # typed like the methods' own fields
            value = facade[name]
            if value is not None and (type(value) is not int or value < 1):
                raise ConfigError(
                    f"{self.alg_name} hyperparameters: {name} must be an int >= 1 (or left "
                    f"out), got {value!r} ({type(value).__name__}); write a whole number."
                )
        if evaluation_type not in (None, *EVALUATION_TYPES):
            raise ConfigError(
                f"evaluation_type {evaluation_type!r} is not supported; use one of "
                f"{', '.join(EVALUATION_TYPES)} or leave it out (teacher-forced token accuracy)."
            )

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_hparams(cls, hparams_name_or_path: str | Path) -> HyperParams:
        """Load an EasyEdit YAML file (``.yaml`` may be left out, as in EasyEdit) or an interv
        recipe."""
        path = resolve_path(hparams_name_or_path)
        return cls.from_dict(read_yaml(path, "hyperparameter YAML file"), source=str(path))

    @classmethod
    def from_dict(cls, config: dict[str, Any], *, source: str = "hyperparameters") -> HyperParams:
        config = dict(config)
        declared = config.pop("alg_name", None) or config.pop("method", None)
        if declared is None and len({easyedit_name(m) for m in cls.methods}) == 1:
            declared = easyedit_name(cls.methods[0])
        if declared is None:
            raise ConfigError(
                f"{source} names no method: add `alg_name: <METHOD>` (or `method: <id>`)."
            )
        method = registry_id(str(declared), config)
        target = _class_for(method) if cls is HyperParams else cls
        if cls is not HyperParams and cls.methods and method not in cls.methods:
            raise ConfigError(
                f"{source} holds hyperparameters for {declared!r} (interv method {method!r}), but "
                f"{cls.__name__} loads {easyedit_name(cls.methods[0])}; use "
                f"{class_name(method)}.from_hparams."
            )
        params_class = EDIT_METHODS.get(method).hparams_class
        fields = set(params_class.field_names())
        model_name = config.pop("model_name", None)
        facade = {k: config.pop(k) for k in FACADE_KEYS if k in config and k not in fields}
        ignored = {
            k: config.pop(k)
            for k in list(config)
            if k not in fields or _machine_value(k, config[k])
        }
        if ignored:
            warnings.warn(
                f"{source}: ignoring key(s) interv does not need for {method}: "
                f"{', '.join(sorted(ignored))} (modules are found by canonical weight names; "
                "device, dtype and statistics are interv's own settings).",
                UserWarning,
                stacklevel=3,
            )
        params = params_class.from_dict({**config, "method": method}, source=source)
        return target(
            method, params, model_name=model_name, alg_name=str(declared), ignored=ignored, **facade
        )

    # --------------------------------------------------------------- attributes
    def __getattr__(self, name: str) -> Any:
        if name == "params":
            raise MissingAttributeError(name)
        params = self.params
        if name in params.field_names():
            return getattr(params, name)
        raise MissingAttributeError(f"{type(self).__name__} has no attribute {name!r}.")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.params.field_names():
            object.__setattr__(self, "params", self.params.replace(**{name: value}))
        else:
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        out = {"alg_name": self.alg_name, "model_name": self.model_name}
        out.update(dataclasses.asdict(self.params))
        out.update({k: getattr(self, k) for k in FACADE_KEYS if k in self.__dict__})
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(method={self.method!r}, model_name={self.model_name!r}, "
            f"{self.params!r})"
        )


def _class_for(method: str) -> type[HyperParams]:
    return _class_named(class_name(method))


@cache  # one class object per name, so isinstance checks hold across imports
def _class_named(name: str) -> type[HyperParams]:
    methods = tuple(n for n in EDIT_METHODS.names() if class_name(n) == name)
    if not methods and name in ALIASES:
        methods = (ALIASES[name],)
    return type(name, (HyperParams,), {"methods": methods, "__module__": "interv.easyedit"})


def hparams_class(name: str) -> type[HyperParams]:
    """``"ROMEHyperParams"`` -> the generated class, for every registered method."""
    if name in available_classes():
        return _class_named(name)
    raise UnavailableError(
        f"interv.easyedit has no {name}: no registered edit method is called "
        f"{name.removesuffix('HyperParams')!r}. Available: {', '.join(available_classes())}."
    )


def resolve_path(name_or_path: str | Path) -> Path:
    """A local file (``.yaml`` may be left out, as in EasyEdit), else the copy interv ships.

    interv ships EasyEdit-format files for its default model under ``interv/easyedit/hparams``
    (``hparams/FT/smollm2-135m.yaml``...), so ``from_hparams("./hparams/FT/smollm2-135m")``
    works from any folder.
    """
    path = Path(name_or_path)
    candidates = [path] if path.suffix else [path, path.with_suffix(".yaml")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = Path(__file__).parent / "hparams"
    if len(path.parts) >= 2:
        packaged = shipped / path.parts[-2] / (path.stem + ".yaml")
        if packaged.is_file():
            return packaged
    available = sorted(
        str(p.relative_to(shipped).with_suffix("")) for p in shipped.glob("*/*.yaml")
    )
    raise MissingFileError(
        f"No hyperparameter file {path} (nor {path}.yaml); interv ships hparams/"
        f"{', hparams/'.join(available)}."
    )


def available_classes() -> list[str]:
    names = {class_name(m) for m in EDIT_METHODS.names()}
    names |= {alias for alias, target in ALIASES.items() if target in EDIT_METHODS}
    return sorted(names)
