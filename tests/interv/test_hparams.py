"""The HParams base (YAML round trip, validation) and the method registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import pytest

from interv.errors import ConfigError
from interv.hparams import HParams
from interv.registry import Registry


@dataclass(kw_only=True)
class ToyHParams(HParams):
    method = "toy"
    layers: list[int] = (5,)  # type: ignore[assignment]
    lr: float = 0.5
    steps: int = 20
    note: str | None = None

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


def test_yaml_round_trip(tmp_path):
    hp = ToyHParams(layers=[3, 4], lr=1e-3, note="x")
    path = tmp_path / "toy.yaml"
    hp.to_yaml(path)
    assert ToyHParams.from_yaml(path) == hp
    assert "method: toy" in path.read_text()


def test_strings_from_yaml_are_coerced(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text("method: toy\nlr: 1e-3\nsteps: '7'\nlayers: [1, 2]\n")
    hp = ToyHParams.from_yaml(path)
    assert (hp.lr, hp.steps, hp.layers) == (1e-3, 7, [1, 2])


def test_unknown_keys_fail_or_warn():
    with pytest.raises(ValueError, match="ToyHParams: unknown key 'lrr'. Did you mean 'lr'"):
        ToyHParams.from_dict({"lrr": 1})
    with pytest.warns(UserWarning, match="lrr"):
        assert ToyHParams.from_dict({"lrr": 1, "lr": 2.0}, strict=False).lr == 2.0


def test_wrong_method_and_bad_values():
    with pytest.raises(ValueError, match="for method 'rome', not 'toy'"):
        ToyHParams.from_dict({"method": "rome"})
    with pytest.raises(ValueError, match="lr must be positive"):
        ToyHParams.from_dict({"lr": -1})


def test_registry_rejects_duplicates_and_lists_known_names():
    registry: Registry[type] = Registry("toy", "interv.cli")  # any importable package
    registry.register("a")(int)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(str)
    with pytest.raises(KeyError, match="Known methods: a"):
        registry.get("b")
    assert registry.get("A") is int


# ------------------------------------------------------------------ the type check at build time
@dataclass(kw_only=True)
class TypedHParams(HParams):
    steps: int = 20
    lr: float = 0.5
    cap: float | None = None
    flag: bool = False
    name: str = "x"
    prefix: str = ""
    mode: Literal["a", "b"] = "a"
    layers: list[int] = field(default_factory=lambda: [5])
    bound: float = field(default=1.0, metadata={"allow_nonfinite": True})
    label: str = field(default="y", metadata={"allow_empty": True})

    def __post_init__(self) -> None:  # no super() call: the type check runs before it anyway
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")


@dataclass(kw_only=True)
class ChildHParams(TypedHParams):  # inherits the parent's __post_init__
    extra: int = 1


@dataclass(kw_only=True)
class GrandchildHParams(ChildHParams):
    calls: ClassVar[list[str]] = []

    def __post_init__(self) -> None:
        super().__post_init__()
        self.calls.append("post_init")


def test_yaml_text_and_whole_floats_are_read_as_numbers(tmp_path):
    path = tmp_path / "typed.yaml"
    path.write_text("lr: 1e-3\ncap: 2e-2\nsteps: 1e2\nextra: 3.0\nlayers: [2.0, '3']\n")
    hp = ChildHParams.from_yaml(path)
    assert (hp.lr, hp.cap, hp.steps, hp.extra, hp.layers) == (1e-3, 2e-2, 100, 3, [2, 3])
    assert type(hp.steps) is int and type(hp.extra) is int and type(hp.layers[0]) is int


def test_accepted_forms():
    hp = TypedHParams(lr=1, cap=None, bound=float("inf"), prefix="", label="", layers=(1, 2))
    assert hp.lr == 1 and hp.cap is None and hp.bound == float("inf")
    assert hp.layers == [1, 2] and isinstance(hp.layers, list)
    steps = TypedHParams(steps=np.int64(7)).steps
    assert steps == 7 and type(steps) is int
    assert TypedHParams(mode="b", flag=True).mode == "b"
    assert TypedHParams.from_dict({"cap": "1e-3"}).cap == 1e-3
    assert TypedHParams.from_dict({"cap": None}).cap is None


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"steps": 2.7}, ["steps must be an int, got 2.7 (float)", "whole number such as 20"]),
        ({"steps": 3.0}, ["steps must be an int, got 3.0"]),  # only files' whole floats are read
        ({"steps": True}, ["steps must be an int, got True (bool)"]),
        ({"steps": "7"}, ["steps must be an int, got '7' (str)"]),
        ({"lr": float("nan")}, ["lr must be a finite number, got nan", "NaN and infinity"]),
        ({"lr": "x"}, ["lr must be a finite number, got 'x' (str)"]),  # not the post_init's <=
        ({"cap": float("-inf")}, ["cap must be a finite number or null"]),
        ({"flag": 1}, ["flag must be true or false, got 1 (int)"]),
        ({"flag": "true"}, ["flag must be true or false, got 'true' (str)"]),
        ({"name": " "}, ["name is empty", "'x'"]),
        ({"mode": "c"}, ["mode must be one of 'a', 'b', got 'c'"]),
        ({"layers": 5}, ["layers must be a list of ints, got 5 (int)", "[5]"]),
        ({"layers": [1, 2.5]}, ["item 1, 2.5, is not an int"]),
        ({"extra": 1.5}, ["ChildHParams: extra must be an int"]),
    ],
)
def test_wrong_types_are_one_config_error(changes, words):
    with pytest.raises(ConfigError) as info:
        ChildHParams(**changes)
    message = str(info.value)
    assert message.startswith(("TypedHParams: ", "ChildHParams: "))
    for word in words:
        assert word in message


def test_files_are_named_and_the_type_check_runs_once_before_post_init(tmp_path):
    path = tmp_path / "typed.yaml"
    path.write_text("steps: 2.7\n")
    with pytest.raises(ConfigError, match=rf"{path} \(TypedHParams\): steps must be an int"):
        TypedHParams.from_yaml(path)
    path.write_text("lr: -1.0\n")
    with pytest.raises(ConfigError, match=rf"{path}: lr must be positive"):
        TypedHParams.from_yaml(path)
    with pytest.raises(ConfigError, match="GrandchildHParams: steps must be an int"):
        GrandchildHParams(steps=2.7)
    GrandchildHParams.calls.clear()
    GrandchildHParams()
    assert GrandchildHParams.calls == ["post_init"]


def test_every_method_class_checks_types():
    from interv.edit.rome import ROMEHParams
    from interv.sae.training import TrainConfig
    from interv.steer.workflow.config import CalibrationSpec

    for cls, field_name in (
        (ROMEHParams, "v_num_grad_steps"),
        (TrainConfig, "k"),
        (CalibrationSpec, "n_prompts"),
    ):
        with pytest.raises(ConfigError, match=f"{field_name} must be an int, got 2.7"):
            cls.from_dict({field_name: 2.7})
