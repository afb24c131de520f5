"""Contract tests over the method registry: YAML round trip, fit -> graph, zero strength is a
no-op, seeded runs are deterministic, bad data fails with one clear error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from interv.graph import Graph
from interv.steer.apply import Steerable, steering_for
from interv.steer.base import STEER_METHODS
from interv.steer.caa import CAAHParams
from interv.steer.graphs import SteeringGraph
from interv.steer.lm_steer import LMSteerHParams
from interv.steer.mean_diff import MeanDiffHParams
from interv.steer.merge import MergeHParams
from interv.steer.prompt import PromptHParams, PromptIntervention
from interv.steer.repe import RepEHParams
from interv.steer.reps import RePSHParams
from interv.steer.sae_feature import SAEFeatureHParams
from interv.steer.sft import SFTHParams
from interv.steer.sta import STAHParams
from interv.steer.vector import SteeringVector
from interv.steer.vector_prompt import VectorPromptHParams
from tests.steer.conftest import AB, LABELLED, PAIRS


def _two_vectors(model: Any) -> list[SteeringVector]:
    caa = STEER_METHODS.get("caa")
    return [
        caa(CAAHParams(layers=[0, 1])).fit(model, AB),
        caa(CAAHParams(layers=[1])).fit(model, PAIRS),
    ]


# name -> (hyperparameters, data builder); every registered method needs an entry.
CASES: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "caa": (CAAHParams(layers=[1]), lambda m: AB),
    "repe": (
        RepEHParams(layers=[0, 1]),
        lambda m: PAIRS + [PAIRS[0].__class__("fine", "poor", "x")],
    ),
    "mean_diff": (
        MeanDiffHParams(layers=[1], positive=["Love", "Joy"], negative=["Hate", "Fear"]),
        lambda m: None,
    ),
    "merge": (MergeHParams(mode="dare_ties", densities=[0.5]), _two_vectors),
    "merge_vector": (MergeHParams(mode="ties", densities=[0.5, 0.9]), _two_vectors),
    "lm_steer": (LMSteerHParams(n_steps=4, rank=2, batch_size=2), lambda m: LABELLED),
    "prompt": (PromptHParams(prompt="Be kind."), lambda m: None),
    "sft": (
        SFTHParams(layers=[1], n_epochs=2, batch_size=2, lr=0.05),
        lambda m: [
            {"input": "hello", "output": "good great fine"},
            {"input": "a cat", "output": "nice"},
        ],
    ),
    "reps": (  # the second record's rejected completion is the model's greedy continuation
        RePSHParams(layers=[1], n_epochs=2, batch_size=2, lr=0.05, output_length=8),
        lambda m: [
            {"input": "hello", "output": "good great fine", "rejected": "bad awful"},
            {"input": "a cat", "output": "nice"},
        ],
    ),
    "vector_prompt": (
        VectorPromptHParams(layers=[0, 1], prompt="Be very happy."),
        lambda m: ["hello there", {"input": "a cat", "output": "sat on the mat"}],
    ),
    # the SAE methods get the session's tiny SAE (blocks.1.hook_resid_post) passed in
    "sta": (STAHParams(sae="tiny", trim=0.5, chat_template=False), lambda m: AB),
    "sae_feature": (
        SAEFeatureHParams(sae="tiny", features=[3, 7], strengths=[2.0, -1.0]),
        lambda m: None,
    ),
}
USES_SAE = {"sta", "sae_feature"}


def _case(name: str):
    if name not in CASES:
        pytest.fail(
            f"no contract case for the registered steering method {name!r}: add one to "
            "CASES in tests/steer/test_methods.py"
        )
    return CASES[name]


@pytest.fixture
def make(method_name, tiny_sae_run):
    """The method under test built from its case, with the tiny SAE where it needs one."""
    hp, _ = _case(method_name)
    extra = {"sae": tiny_sae_run[1]} if method_name in USES_SAE else {}
    return lambda: STEER_METHODS.get(method_name)(hp, **extra)


@pytest.fixture(params=STEER_METHODS.names())
def method_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_hparams_yaml_round_trip(method_name, tmp_path):
    hp, _ = _case(method_name)
    cls = STEER_METHODS.get(method_name).hparams_class
    path = tmp_path / "hp.yaml"
    hp.to_yaml(path)
    assert cls.from_yaml(path) == hp
    with pytest.raises(ValueError, match="unknown key 'layerz'"):
        cls.from_dict({**hp.to_dict(), "layerz": [1]})


def _fit(name: str, make: Callable[[], Any], model: Any) -> Any:
    _, data = _case(name)
    torch.manual_seed(0)
    return make().fit(model, data(model))


def test_fit_gives_a_graph_and_zero_strength_is_a_no_op(method_name, make, tiny_models):
    model = tiny_models("llama")
    output = _fit(method_name, make, model)
    steering = steering_for(output)
    if isinstance(output, PromptIntervention):
        assert steering.prompt is output and len(steering.graph) == 0
        return
    assert isinstance(steering.graph, Graph) and len(steering.graph) >= 1
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    plain = model.forward(ids)
    steered = model.forward(ids, graph=steering.graph * 3.0)
    assert not torch.allclose(plain, steered, atol=1e-6)
    torch.testing.assert_close(
        model.forward(ids, graph=steering.graph * 0.0), plain, rtol=0, atol=0
    )


def _timeless(meta: dict[str, Any]) -> dict[str, Any]:
    """Provenance without the creation time (two fits a second apart differ in it)."""
    return {k: v for k, v in meta.items() if k != "created"}


def _same(a: Any, b: Any) -> bool:
    """Same output, every tensor bit for bit and all metadata but the creation time."""
    if isinstance(a, SteeringVector):
        return (
            a.hooks == b.hooks
            and _timeless(a.meta) == _timeless(b.meta)
            and all(torch.equal(a.directions[h], b.directions[h]) for h in a.hooks)
        )
    if isinstance(a, SteeringGraph):
        a, b = a.graph, b.graph
    if isinstance(a, Graph):
        return Graph(a.nodes, model=a.model, meta=_timeless(a.meta)) == Graph(
            b.nodes, model=b.model, meta=_timeless(b.meta)
        )
    return a == b and _timeless(a.meta) == _timeless(b.meta)


def test_seeded_fits_are_deterministic(method_name, make, tiny_models):
    model = tiny_models("llama")
    assert _same(_fit(method_name, make, model), _fit(method_name, make, model))


def test_empty_dataset_is_one_clear_error_for_methods_that_need_data(
    method_name, make, tiny_models
):
    """A method that needs data refuses an empty dataset; one whose hyperparameters hold
    everything fits without any."""
    method = make()
    if method.needs_data:
        with pytest.raises(ValueError, match="empty|at least two"):
            method.fit(tiny_models("llama"), [])
    else:
        assert isinstance(method.fit(tiny_models("llama"), []), Steerable)


def test_one_sided_data_and_bad_layers(tiny_models, ab_items):
    model = tiny_models("llama")
    caa = STEER_METHODS.get("caa")
    with pytest.raises(ValueError, match="one-sided"):
        caa(CAAHParams(layers=[1])).fit(model, [PAIRS[0].__class__("good", "  ", "x")])
    with pytest.raises(ValueError, match="same answer on both sides"):
        caa(CAAHParams(layers=[1])).fit(model, [ab_items[0].__class__("Q?", "(A)", "(A)")])
    with pytest.raises(ValueError, match="one-sided"):
        STEER_METHODS.get("lm_steer")(LMSteerHParams(n_steps=1)).fit(
            model, [("good", 1), ("fine", 1)]
        )
    with pytest.raises(ValueError, match=r"layer\(s\) \[5\] out of range"):
        caa(CAAHParams(layers=[5])).fit(model, ab_items)
    with pytest.raises(KeyError, match="Unknown steer method 'cca'. Closest valid names: caa"):
        STEER_METHODS.get("cca")
