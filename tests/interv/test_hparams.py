"""The HParams base (YAML round trip, validation) and the method registry."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

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
