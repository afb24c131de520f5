"""The vector library: saving any artefact, loading by path or name, and the shipped vectors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interv.errors import ConfigError
from interv.graph import Graph, Transform
from interv.recipes import recipe_path
from interv.record import ModelRecord
from interv.steer import library
from interv.steer.graphs import SteeringGraph
from interv.steer.prompt import PromptIntervention
from interv.steer.vector import SteeringVector

SHIPPED = {
    "sentiment_positive",
    "sentiment_negative",
    "refusal",
    "sycophancy",
    "hallucination",
    "corrigibility",
    "survival_instinct",
    "myopic_reward",
    "formality",
}


def _vector(scale: float = 2.0) -> SteeringVector:
    return SteeringVector(
        {"blocks.1.hook_resid_post": torch.linspace(-1, 1, 8)},
        method="caa",
        dataset="toy",
        recommended_scale=scale,
        model=ModelRecord(name="tiny"),
    )


def test_save_and_load_every_artefact_kind(tmp_path):
    vector = _vector()
    loaded = library.load(library.save(vector, tmp_path / "v" / "caa_vector").parent)
    assert torch.equal(
        loaded.directions["blocks.1.hook_resid_post"], vector.directions["blocks.1.hook_resid_post"]
    )
    assert loaded.recommended_scale == 2.0 and loaded.dataset == "toy"
    half = library.load(library.save(vector, tmp_path / "h", "float16"))
    assert half.directions["blocks.1.hook_resid_post"].dtype == torch.float32  # loaded as fp32
    torch.testing.assert_close(
        half.directions["blocks.1.hook_resid_post"],
        vector.directions["blocks.1.hook_resid_post"],
        atol=1e-3,
        rtol=1e-3,
    )
    with pytest.raises(ValueError, match="vector dtype must be"):
        library.save(vector, tmp_path / "x", "int8")
    prompt = PromptIntervention("Be kind.", mode="system")
    assert library.load(library.save(prompt, tmp_path / "p")) == prompt
    graph = Graph([Transform("ln_final.hook_normalized", torch.eye(4), residual=True)])
    library.save(SteeringGraph(graph), tmp_path / "g")
    assert isinstance(library.load(tmp_path / "g"), SteeringGraph)
    with pytest.raises(FileNotFoundError):
        library.load(tmp_path / "nothing.safetensors")


def test_entries_and_find_on_a_library_folder(tmp_path):
    for name in ("alpha", "beta"):
        library.save(_vector(), tmp_path / "tiny-model" / name / "caa_vector")
    library.save(_vector(), tmp_path / "tiny-model" / "beta" / "repe_vector")
    keys = [e.key for e in library.entries(tmp_path)]
    assert keys == ["tiny-model/alpha/caa", "tiny-model/beta/caa", "tiny-model/beta/repe"]
    assert library.find("alpha", tmp_path).method == "caa"
    assert library.find("beta/repe", tmp_path).key == "tiny-model/beta/repe"
    with pytest.raises(ConfigError, match="ambiguous"):
        library.find("beta", tmp_path)
    with pytest.raises(KeyError, match="Unknown library vector name 'gamma'"):
        library.find("gamma", tmp_path)


def test_graphs_and_prompts_are_library_entries_too(tmp_path):
    graph = Graph(
        [Transform("blocks.1.hook_resid_post", torch.eye(4), residual=True, name="lm_steer")],
        meta={
            "method": "lm_steer",
            "dataset": "sst2",
            "recommended_scale": 2.5,
            "created": "today",
        },
    )
    library.save(
        SteeringGraph(graph), tmp_path / "tiny-model" / "calm" / "lm_steer_vector", "float16"
    )
    prompt = PromptIntervention("Be calm.", meta={"method": "prompt", "dataset": "calm"})
    library.save(prompt, tmp_path / "tiny-model" / "calm" / "prompt_vector")
    found = {e.method: e for e in library.entries(tmp_path)}
    assert set(found) == {"lm_steer", "prompt"}
    assert (
        found["lm_steer"].meta["layers"] == [1]
        and found["lm_steer"].meta["recommended_scale"] == 2.5
    )
    assert found["lm_steer"].meta["dataset"] == "sst2" and found["lm_steer"].meta["kind"] == "graph"
    assert found["prompt"].meta["layers"] == [] and found["prompt"].meta["kind"] == "prompt"
    half = library.load(found["lm_steer"].path.parent)
    assert isinstance(half, SteeringGraph) and half.graph.nodes[0].matrix.dtype == torch.float16
    assert torch.equal(half.graph.nodes[0].matrix.float(), torch.eye(4))
    assert library.load(found["prompt"].path.parent) == prompt


def test_the_shipped_library_is_complete_small_and_reproducible():
    shipped = library.entries()
    assert SHIPPED <= {e.name for e in shipped}
    assert {"caa", "mean_diff", "repe", "lm_steer", "prompt"} <= {e.method for e in shipped}
    for entry in shipped:
        meta = entry.meta
        assert entry.model == "SmolLM2-135M-Instruct" and meta["model"]["sample"], entry.key
        assert meta["recommended_scale"] > 0 and meta["created"] and meta["interv_version"], (
            entry.key
        )
        recipe = recipe_path(meta["meta"]["config"])
        assert recipe.is_file() and recipe.suffix == ".yaml", meta["meta"]["config"]
        assert Path(recipe).read_text().count(f"steer_train_dataset: {entry.name}") == 1
        artefact = library.load(entry.path.parent)
        if isinstance(artefact, SteeringVector):
            assert 1 <= len(meta["layers"]) <= 3 and meta["dataset"], entry.key
            assert entry.path.stat().st_size < 8_000  # fp16, a few layers
            assert all(v.dtype == torch.float32 for v in artefact.directions.values())
        elif isinstance(artefact, SteeringGraph):  # LM-Steer: one d_model x d_model transform
            assert entry.path.with_name("tensors.safetensors").stat().st_size < 700_000
        else:
            assert isinstance(artefact, PromptIntervention) and artefact.prompt
