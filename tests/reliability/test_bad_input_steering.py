"""Bad input to steering graphs, vectors and SAEs: each case is refused with one clear error,
before any forward, and leaves the model as it was (``tests/reliability/matrix.py``).

A case is a function of the shared ``Setup`` returning ``(model, call, error, words)``: the
model the call must leave unchanged, the call, the expected ``IntervError`` subclass and the
words its message must hold (the field, node or hook, and the value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import interv
from interv.errors import (
    ConfigError,
    GraphError,
    ModelMismatchError,
    SAEError,
    SteeringError,
    UnknownNameError,
)
from interv.graph import Add, Graph, SAEFeature
from interv.record import ModelRecord
from interv.steer import library
from interv.steer.apply import ApplyHParams
from interv.steer.caa import CAA, CAAHParams
from interv.steer.mean_diff import MeanDiff, MeanDiffHParams
from interv.steer.merge import Merge, MergeHParams
from interv.steer.repe import RepE, RepEHParams
from interv.steer.vector import SteeringVector
from tests.reliability.matrix import assert_refused
from tests.tiny import build_tiny

HOOK = "blocks.1.hook_resid_post"
PROMPTS = ["Hello world", "abc"]
Case = tuple[Any, Callable[[], object], type[BaseException], list[str]]


@dataclass
class Setup:
    model: Any  # the tiny Llama
    other: Any  # a tiny Llama with other weights (another fingerprint)
    qwen: Any  # another architecture, same widths
    half: Any  # the tiny Llama in float16
    tmp: Path

    def vector(self, record: Any = None, width: int = 32, value: float = 1.0) -> SteeringVector:
        model = ModelRecord.of(record) if record is not None else None
        return SteeringVector({HOOK: torch.full((width,), value)}, method="caa", model=model)

    def run(self, graph: Graph, model: Any = None) -> Callable[[], object]:
        target = model if model is not None else self.model
        return lambda: target.generate(PROMPTS, max_new_tokens=2, graph=graph)


@pytest.fixture(scope="module")
def setup(tiny_models, tiny_dirs, tmp_path_factory) -> Setup:
    root = tmp_path_factory.mktemp("bad_steering")
    other = interv.load(build_tiny("llama", root / "other", seed=1), device="cpu")
    half = interv.load(tiny_dirs["llama"], dtype="float16", device="cpu")
    return Setup(tiny_models("llama"), other, tiny_models("qwen2"), half, root)


# ------------------------------------------------------------------ another model
def vector_to_graph_other_fingerprint(s: Setup) -> Case:
    graph = s.vector(s.other).to_graph(4.0)
    return s.model, s.run(graph), ModelMismatchError, ["weights differ", "fingerprint"]


def vector_to_graph_with_model_other_fingerprint(s: Setup) -> Case:
    vector = s.vector(s.other)
    return s.model, lambda: vector.to_graph(4.0, model=s.model), ModelMismatchError, ["caa vector"]


def vector_fold_other_fingerprint(s: Setup) -> Case:
    graph = s.vector(s.other).to_graph(4.0)
    return s.model, lambda: graph.fold(s.model), ModelMismatchError, ["This graph", "weights"]


def vector_apply_api_other_fingerprint(s: Setup) -> Case:
    steering = s.vector(s.other).steering(ApplyHParams(multipliers=[2.0]))
    call = lambda: steering.generate(s.model, PROMPTS, max_new_tokens=2)  # noqa: E731
    return s.model, call, ModelMismatchError, ["weights differ"]


def vector_check_other_architecture(s: Setup) -> Case:
    vector = s.vector(s.qwen)
    return s.model, lambda: vector.check(s.model), ModelMismatchError, ["model_type 'qwen2'"]


def vector_record_of_another_width(s: Setup) -> Case:
    record = ModelRecord(name="wide", architecture="llama", d_model=64)
    vector = SteeringVector({HOOK: torch.ones(64)}, method="caa", model=record)
    return s.model, s.run(vector.to_graph()), ModelMismatchError, ["d_model 64 != 32"]


def vector_library_load_other_model(s: Setup) -> Case:
    path = s.vector(s.other).save(s.tmp / "lib" / "caa_vector" / "vector.safetensors")
    loaded = library.load(path.parent)
    return s.model, s.run(loaded.to_graph(2.0)), ModelMismatchError, ["weights differ"]


def merge_vectors_of_other_model(s: Setup) -> Case:
    vectors = [s.vector(s.other), s.vector(s.other, value=2.0)]
    call = lambda: Merge(MergeHParams()).fit(s.model, vectors)  # noqa: E731
    return s.model, call, ModelMismatchError, ["caa vector", "weights differ"]


def graph_load_other_model(s: Setup) -> Case:
    folder = Graph([Add(HOOK, torch.ones(32), name="push")], model=s.other).save(s.tmp / "g_other")
    call = lambda: Graph.load(folder, model=s.model)  # noqa: E731
    return s.model, call, ModelMismatchError, [str(folder), "weights differ"]


def sae_of_another_model_in_a_node(s: Setup) -> Case:
    sae = _hooked_sae(32, HOOK)
    sae.sae.cfg.metadata.interv_model = ModelRecord.of(s.other).to_dict()
    graph = Graph([SAEFeature(sae, [1], values=2.0)])
    return s.model, s.run(graph), ModelMismatchError, ["SAE", "weights differ"]


# ----------------------------------------------------------------------- widths
def zero_strength_node_of_wrong_width(s: Setup) -> Case:
    graph = Graph([Add(HOOK, torch.ones(16), strength=0.0, name="push")])
    return s.model, s.run(graph), GraphError, ["'push'", "vector", "[16]", "[32]"]


def disabled_node_of_wrong_width_folds(s: Setup) -> Case:
    graph = Graph([Add(HOOK, torch.ones(16), name="push")]).disable("push")
    return s.model, lambda: graph.fold(s.model), GraphError, ["'push'", "vector", "[16]"]


def vector_of_wrong_width_without_record(s: Setup) -> Case:
    vector = s.vector(width=48)
    return s.model, lambda: vector.check(s.model), SteeringError, [HOOK, "width 48", "width 32"]


def sae_of_wrong_width_in_a_node(s: Setup) -> Case:
    graph = Graph([SAEFeature(_hooked_sae(48, HOOK), [1], values=2.0)])
    return s.model, s.run(graph), SAEError, ["d_in=48", HOOK, "32 features"]


def sae_of_wrong_width_loaded_for_model(s: Setup) -> Case:
    folder = s.tmp / "wide_sae"
    _hooked_sae(48, HOOK).save(folder)
    call = lambda: interv.sae.load(folder, model=s.model)  # noqa: E731
    return s.model, call, SAEError, ["48-wide", HOOK]


def sae_at_a_hook_of_another_width(s: Setup) -> Case:
    folder = s.tmp / "sae32"
    _hooked_sae(32, HOOK).save(folder)
    call = lambda: interv.sae.load(folder, model=s.model, hook="blocks.1.mlp.hook_post")  # noqa: E731
    return s.model, call, SAEError, ["32-wide", "'blocks.1.mlp.hook_post'", "64 wide"]


# --------------------------------------------------------------- tensor values
def nan_vector_at_build(s: Setup) -> Case:
    call = lambda: Add(HOOK, torch.full((32,), float("nan")), name="push")  # noqa: E731
    return s.model, call, GraphError, ["'push'", "vector", "NaN or inf"]


def inf_vector_at_build(s: Setup) -> Case:
    values = torch.ones(32)
    values[3] = float("inf")
    call = lambda: SteeringVector({HOOK: values}, method="caa")  # noqa: E731
    return s.model, call, SteeringError, [HOOK, "NaN or inf"]


def nan_node_vector_mutated_after_build(s: Setup) -> Case:
    graph = Graph([Add(HOOK, torch.ones(32), name="push")])
    graph["push"].vector[0] = float("nan")  # in place, after every build-time check
    return s.model, s.run(graph), GraphError, ["'push'", "vector", "NaN or inf"]


def nan_steering_vector_mutated_after_to_graph(s: Setup) -> Case:
    vector = s.vector(s.model)
    graph = vector.to_graph(4.0)
    vector.directions[HOOK][5] = float("nan")  # the graph shares the tensor
    return s.model, s.run(graph), GraphError, ["caa_L1", "vector", "NaN or inf"]


def nan_steering_vector_mutated_before_check(s: Setup) -> Case:
    vector = s.vector(s.model)
    vector.directions[HOOK][5] = float("inf")
    return s.model, lambda: vector.check(s.model), SteeringError, [HOOK, "NaN or inf"]


def huge_finite_vector(s: Setup) -> Case:
    graph = Graph([Add(HOOK, torch.full((32,), 1e30), name="push")])
    return s.model, s.run(graph), GraphError, ["'push'", "vector", "norm 5.66e+30", "float32"]


def huge_vector_mutated_after_build(s: Setup) -> Case:
    graph = s.vector(s.model).to_graph(2.0)
    graph["caa_L1"].vector.mul_(1e30)
    return s.model, s.run(graph), GraphError, ["caa_L1", "norm", "float32"]


def vector_times_strength_overflows(s: Setup) -> Case:
    graph = Graph([Add(HOOK, torch.full((32,), 1e18), name="push")]) * 1e3
    return s.model, lambda: graph.fold(s.model), GraphError, ["'push'", "times 1000", "float32"]


def vector_overflows_a_float16_model(s: Setup) -> Case:
    graph = Graph([Add(HOOK, torch.full((32,), 1e5), name="push")])
    return s.half, s.run(graph, s.half), GraphError, ["'push'", "largest value 1e+05", "float16"]


def strength_nan(s: Setup) -> Case:
    call = lambda: Add(HOOK, torch.ones(32), strength=float("nan"))  # noqa: E731
    return s.model, call, GraphError, ["strength", "nan"]


def strength_assigned_nan_after_build(s: Setup) -> Case:
    graph = Graph([Add(HOOK, torch.ones(32), name="push")])
    graph["push"].strength = float("nan")  # a field assigned past the build-time check
    return s.model, s.run(graph), GraphError, ["'push'", "strength", "nan"]


def multipliers_nan(s: Setup) -> Case:
    call = lambda: ApplyHParams(multipliers=[float("nan")])  # noqa: E731
    return s.model, call, ConfigError, ["multipliers", "nan"]


# ------------------------------------------------------------------------ names
def duplicate_node_names_api(s: Setup) -> Case:
    nodes = [Add(HOOK, torch.ones(32), name="push"), Add(HOOK, torch.ones(32), name="push")]
    return s.model, lambda: Graph(nodes), GraphError, ["'push'", "unique"]


def duplicate_node_names_yaml(s: Setup) -> Case:
    folder = Graph(
        [Add(HOOK, torch.ones(32), name="push"), Add(HOOK, torch.ones(32), name="pull")]
    ).save(s.tmp / "g_twice")
    _edit_yaml(folder, lambda doc: doc["nodes"][1].update(name="push"))
    return s.model, lambda: Graph.load(folder), GraphError, ["graph.yaml", "'push'", "unique"]


def unknown_hook_in_a_node(s: Setup) -> Case:
    graph = Graph([Add("blocks.1.hook_resid_pst", torch.ones(32), name="push")])
    words = ["'blocks.1.hook_resid_pst'", HOOK, "'push'"]
    return s.model, s.run(graph), UnknownNameError, words


def unknown_hook_in_graph_yaml(s: Setup) -> Case:
    folder = Graph([Add(HOOK, torch.ones(32), name="push")]).save(s.tmp / "g_hook")
    _edit_yaml(folder, lambda doc: doc["nodes"][0].update(hook="blocks.1.hook_resid_pots"))
    call = lambda: Graph.load(folder, model=s.model)  # noqa: E731
    return s.model, call, UnknownNameError, ["'blocks.1.hook_resid_pots'", HOOK]


def layer_out_of_range_in_a_node(s: Setup) -> Case:
    graph = Graph([Add("blocks.7.hook_resid_post", torch.ones(32))])
    return s.model, s.run(graph), UnknownNameError, ["blocks.7.hook_resid_post", "layers 0..1"]


def layer_out_of_range_in_a_vector(s: Setup) -> Case:
    vector = SteeringVector({"blocks.7.hook_resid_post": torch.ones(32)}, method="caa")
    return s.model, lambda: vector.check(s.model), SteeringError, ["layer 7", "0..1"]


def layer_not_in_the_vector(s: Setup) -> Case:
    vector = s.vector(s.model)
    call = lambda: vector.to_graph(2.0, layers=[7])  # noqa: E731
    return s.model, call, SteeringError, ["layer(s) [7]", "layers [1]"]


def wrong_head_index(s: Setup) -> Case:
    graph = Graph([Add("blocks.0.attn.hook_z", torch.ones(8), heads=[1, 4], name="heads")])
    return s.model, s.run(graph), GraphError, ["'heads'", "head index 4", "4 heads"]


# ------------------------------------------------------------------------- data
def empty_steering_data(s: Setup) -> Case:
    call = lambda: CAA(CAAHParams(layers=[1])).fit(s.model, [])  # noqa: E731
    return s.model, call, SteeringError, ["dataset is empty", "CAA"]


def empty_contrast_data_for_repe(s: Setup) -> Case:
    call = lambda: RepE(RepEHParams(layers=[1])).fit(s.model, [])  # noqa: E731
    return s.model, call, SteeringError, ["dataset is empty", "RepE"]


def empty_side_of_a_prompt_pair(s: Setup) -> Case:
    call = lambda: MeanDiff(MeanDiffHParams(layers=[1])).fit(s.model, [("Love", " ")])  # noqa: E731
    return s.model, call, SteeringError, ["mean_diff", "empty side"]


def empty_positive_list(s: Setup) -> Case:
    call = lambda: MeanDiffHParams(layers=[1], positive=[], negative=[])  # noqa: E731
    return s.model, call, ConfigError, ["`positive`"]


CASES = [
    vector_to_graph_other_fingerprint,
    vector_to_graph_with_model_other_fingerprint,
    vector_fold_other_fingerprint,
    vector_apply_api_other_fingerprint,
    vector_check_other_architecture,
    vector_record_of_another_width,
    vector_library_load_other_model,
    merge_vectors_of_other_model,
    graph_load_other_model,
    sae_of_another_model_in_a_node,
    zero_strength_node_of_wrong_width,
    disabled_node_of_wrong_width_folds,
    vector_of_wrong_width_without_record,
    sae_of_wrong_width_in_a_node,
    sae_of_wrong_width_loaded_for_model,
    sae_at_a_hook_of_another_width,
    nan_vector_at_build,
    inf_vector_at_build,
    nan_node_vector_mutated_after_build,
    nan_steering_vector_mutated_after_to_graph,
    nan_steering_vector_mutated_before_check,
    huge_finite_vector,
    huge_vector_mutated_after_build,
    vector_times_strength_overflows,
    vector_overflows_a_float16_model,
    strength_nan,
    strength_assigned_nan_after_build,
    multipliers_nan,
    duplicate_node_names_api,
    duplicate_node_names_yaml,
    unknown_hook_in_a_node,
    unknown_hook_in_graph_yaml,
    layer_out_of_range_in_a_node,
    layer_out_of_range_in_a_vector,
    layer_not_in_the_vector,
    wrong_head_index,
    empty_steering_data,
    empty_contrast_data_for_repe,
    empty_side_of_a_prompt_pair,
    empty_positive_list,
]


@pytest.mark.parametrize("case", CASES, ids=[case.__name__ for case in CASES])
def test_bad_steering_input_is_refused(setup: Setup, case: Callable[[Setup], Case]):
    model, call, error, words = case(setup)
    assert_refused(model, call, error, words)


def test_the_workflow_applier_refuses_a_vector_of_another_model(setup: Setup, tiny_dirs):
    from interv.steer.workflow import BaseVectorApplier

    applier = BaseVectorApplier(
        {
            "model_name_or_path": str(tiny_dirs["llama"]),
            "device": "cpu",
            "apply_steer_hparam_paths": [{"alg_name": "caa"}],
        }
    )
    vector = setup.vector(setup.other)
    call = lambda: applier.apply_vectors({"caa": vector}, model=setup.model)  # noqa: E731
    assert_refused(setup.model, call, ModelMismatchError, ["caa vector", "weights differ"])
    assert not len(applier.steering.graph)  # nothing half-applied


def _hooked_sae(d_in: int, hook: str) -> Any:
    """A sae-lens SAE of input width ``d_in`` claiming ``hook`` (random weights, no training)."""
    from sae_lens import StandardSAE, StandardSAEConfig

    from interv.sae import HookedSAE

    torch.manual_seed(0)
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=16))
    with torch.no_grad():
        sae.W_dec.normal_()
    sae.cfg.metadata.hook_name = hook
    return HookedSAE(sae, hook, id=f"sae{d_in}")


def _edit_yaml(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "graph.yaml"
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
