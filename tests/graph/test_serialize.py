"""graph.yaml + tensors.safetensors: exact round trips, readable YAML, clear refusals."""

from __future__ import annotations

import pytest
import torch
import yaml

from interv.errors import ModelMismatchError
from interv.graph import (
    Ablate,
    Add,
    Clamp,
    Function,
    Graph,
    GraphError,
    ProjectOut,
    Replace,
    SAEFeature,
    Scale,
    Transform,
    conditions,
    positions,
)
from tests.graph.conftest import PROMPTS, vector


def full_graph(model, sae) -> Graph:
    """Every serializable node type, selector and option."""
    c = model.cfg
    cond = conditions.cosine(
        "blocks.0.hook_resid_post", vector(c.d_model, 9), 0.1, reduce="last", name="topic"
    )
    _, cache = model.run_with_cache(PROMPTS, "blocks.0.hook_mlp_out")
    return Graph(
        [
            Add(
                "blocks.1.hook_resid_post",
                vector(c.d_model, 1).half(),
                scale=4.0,
                positions=positions.generated(),
            ),
            Add(
                "blocks.{i}.hook_resid_pre",
                vector(c.d_model, 2),
                layers=[0, 1],
                positions=positions.tokens("l"),
            ),
            Scale("blocks.1.mlp.hook_post", 0.5, rows=[1], enabled=False),
            Ablate(
                "blocks.0.hook_attn_out",
                mode="mean",
                mean=vector(c.d_model, 3).bfloat16(),
                positions=positions.indices(0, -1),
            ),
            ProjectOut(
                "blocks.0.attn.hook_z",
                vector(c.d_head, 4),
                heads=[1, 3],
                positions=positions.slice(-2, None),
            ),
            Clamp(
                "blocks.1.hook_attn_out", vector(c.d_model, 5), -1.5, condition=cond, strength=0.1
            ),
            Transform(
                "ln_final.hook_normalized",
                vector((c.d_model, c.d_model), 6, 0.01),
                vector(c.d_model, 7),
                residual=True,
                condition=cond,
            ),
            Replace(
                "blocks.0.hook_mlp_out",
                cache["blocks.0.hook_mlp_out"],
                positions=positions.last_prompt_token(),
            ),
            SAEFeature(sae, [2, 5], mode="clamp", values=[1.0, 0.0], sae_id="tiny-sae"),
        ],
        model=model,
        meta={"method": "test", "layers": [0, 1], "note": "round trip"},
    )


def test_round_trip_is_exact(tiny_models, tiny_sae, tmp_path):
    model = tiny_models("llama")
    sae = tiny_sae(model)
    graph = full_graph(model, sae)
    graph.save(tmp_path / "g")
    loaded = Graph.load(tmp_path / "g", saes={"tiny-sae": sae}, model=model)
    assert loaded == graph
    assert (
        loaded["add"].vector.dtype == torch.float16
        and loaded["ablate"].mean.dtype == torch.bfloat16
    )
    assert loaded["clamp"].condition is loaded["transform"].condition  # still one shared condition
    loaded.save(tmp_path / "again")
    assert (tmp_path / "again" / "graph.yaml").read_text() == (
        tmp_path / "g" / "graph.yaml"
    ).read_text()
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward(PROMPTS, graph=loaded),
            model.forward(PROMPTS, graph=graph),
            atol=0,
            rtol=0,
        )


def test_yaml_is_human_readable(tiny_models, tiny_sae, tmp_path):
    model = tiny_models("llama")
    full_graph(model, tiny_sae(model)).save(tmp_path / "g")
    text = (tmp_path / "g" / "graph.yaml").read_text()
    assert text.startswith("# interv intervention graph")
    doc = yaml.safe_load(text)
    assert doc["format"] == "interv.graph" and doc["version"] == 1
    assert doc["model"]["architecture"] == "llama" and doc["model"]["d_model"] == 32
    first = doc["nodes"][0]
    assert first == {
        "name": "add",
        "type": "add",
        "hook": "blocks.1.hook_resid_post",
        "vector": {"tensor": "nodes.add.vector", "shape": [32], "dtype": "float16"},
        "scale": 4.0,
        "positions": "generated",
        "enabled": True,
        "strength": 1.0,
    }
    assert doc["nodes"][1]["positions"] == {"tokens": "l"} and doc["nodes"][1]["layers"] == [0, 1]
    assert (
        doc["nodes"][5]["condition"] == "topic" and doc["conditions"]["topic"]["threshold"] == 0.1
    )
    assert doc["nodes"][8]["sae"] == "tiny-sae"


def test_edited_yaml_takes_effect(tiny_models, tmp_path):
    model = tiny_models("llama")
    v = vector(model.cfg.d_model)
    Graph([Add("blocks.1.hook_resid_post", v, scale=4.0)]).save(tmp_path / "g")
    path = tmp_path / "g" / "graph.yaml"
    path.write_text(
        path.read_text()
        .replace("scale: 4.0", "scale: 1.0")
        .replace("strength: 1.0", "strength: 0.5")
    )
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward(PROMPTS, graph=Graph.load(tmp_path / "g")),
            model.forward(PROMPTS, graph=Graph([Add("blocks.1.hook_resid_post", v, scale=0.5)])),
        )


def _edit(tmp_path, old, new):
    path = tmp_path / "g" / "graph.yaml"
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("version: 1", "version: 2", "version 2; this interv reads up to 1. Upgrade interv"),
        ("format: interv.graph", "format: other", "not an interv graph"),
        ("type: add", "type: adds", "Unknown node type 'adds'.*add, scale"),
        ("scale: 4.0", "sclae: 4.0", "unexpected keyword argument 'sclae'"),
        ("positions: generated", "positions: generatd", "Unknown positions 'generatd'"),
        ("tensor: nodes.add.vector", "tensor: nodes.add.vectr", "does not hold"),
        ("shape: [32]", "shape: [33]", "graph.yaml says \\[33\\]"),
    ],
)
def test_bad_files_are_refused(tiny_models, tmp_path, old, new, message):
    model = tiny_models("llama")
    Graph(
        [Add("blocks.1.hook_resid_post", vector(32), scale=4.0, positions=positions.generated())],
        model=model,
    ).save(tmp_path / "g")
    _edit(tmp_path, old, new)
    with pytest.raises(GraphError, match=message):
        Graph.load(tmp_path / "g")


def test_other_refusals(tiny_models, tiny_sae, tmp_path):
    llama, qwen = tiny_models("llama"), tiny_models("qwen2")
    with pytest.raises(GraphError, match="holds no graph.yaml"):
        Graph.load(tmp_path)
    (tmp_path / "g").mkdir()
    Graph([Add("blocks.1.hook_resid_post", vector(32))], model=llama).save(tmp_path / "g")
    (tmp_path / "g" / "tensors.safetensors").write_bytes(b"garbage")
    with pytest.raises(GraphError, match="corrupt"):
        Graph.load(tmp_path / "g")
    graph = Graph([Add("blocks.1.hook_resid_post", vector(32))], model=llama)
    graph.save(tmp_path / "h")
    with pytest.raises(ModelMismatchError, match="was made for"):
        Graph.load(tmp_path / "h", model=qwen)
    with pytest.raises(ModelMismatchError, match="was made for"):
        qwen.forward(PROMPTS, graph=Graph.load(tmp_path / "h"))
    with pytest.raises(GraphError, match="holds Python code"):
        Graph([Function("blocks.0.hook_resid_post", lambda a, c: a)]).save(tmp_path / "f")
    sae = tiny_sae(llama)
    Graph([SAEFeature(sae, [1], sae_id="mine")]).save(tmp_path / "s")
    with pytest.raises(GraphError, match="saes=\\{'mine': sae\\}"):
        Graph.load(tmp_path / "s")
    assert Graph.load(tmp_path / "s", saes=lambda name: sae)["sae_feature"].sae is sae
    with pytest.raises(GraphError, match="plain values"):
        Graph([], meta={"vector": torch.ones(2)}).save(tmp_path / "m")


def test_save_records_the_model_it_is_given(tiny_models, tmp_path):
    model = tiny_models("llama")
    Graph([Add("blocks.1.hook_resid_post", vector(32))]).save(tmp_path / "g", model=model)
    assert Graph.load(tmp_path / "g").model.fingerprint == model.fingerprint()
    Graph([Scale("blocks.1.hook_resid_post", 2.0)]).save(tmp_path / "free")
    assert Graph.load(tmp_path / "free").model is None
