"""EasyEdit2's workflow on a tiny model: config keys, overrides, generator, applier, run, errors."""

from __future__ import annotations

import json

import pytest
import torch

from interv.record import ModelRecord
from interv.steer.vector import SteeringVector
from interv.steer.workflow import (
    BaseVectorApplier,
    BaseVectorGenerator,
    ConfigError,
    load_config,
    run,
)

AB_RECORDS = [
    {
        "question": f"Q{i}?\n(A) yes\n(B) no",
        "matching": "(A)" if i % 2 else "(B)",
        "not_matching": "(B)" if i % 2 else "(A)",
    }
    for i in range(4)
]
INPUTS = [{"input": "hi", "reference_response": ""}, {"input": "a cat", "reference_response": ""}]


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.json"
    train.write_text(json.dumps(AB_RECORDS))
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(INPUTS))
    return train, prompts


def _config(tiny_dirs, tmp_path, train, prompts, **extra):
    cfg = {
        "model_name_or_path": str(tiny_dirs["llama"]),
        "device": "cpu",
        "use_chat_template": False,
        "steer_train_hparam_paths": [{"alg_name": "caa", "layers": [1], "multipliers": [2.0]}],
        "steer_train_dataset": str(train),
        "steer_vector_output_dir": str(tmp_path / "vectors"),
        "generation_data": [str(prompts)],
        "generation_output_dir": str(tmp_path / "out"),
        "generate_orig_output": True,
        "generation_params": {"max_new_tokens": 4},
    }
    cfg.update(extra)
    return cfg


def test_generator_saves_in_easyedit2_layout_and_applier_reads_it(tiny_dirs, tmp_path, files):
    train, prompts = files
    cfg = _config(tiny_dirs, tmp_path, train, prompts)
    vectors = BaseVectorGenerator(cfg).generate_vectors()
    vector = vectors[str(train)]["caa"]
    assert isinstance(vector, SteeringVector) and vector.hooks == ["blocks.1.hook_resid_post"]
    folder = next((tmp_path / "vectors").rglob("caa_vector"))
    assert (folder / "vector.safetensors").is_file()
    apply_cfg = {
        **cfg,
        "apply_steer_hparam_paths": [{"alg_name": "caa", "multipliers": [2.0]}],
        "steer_vector_load_dir": [str(folder)],
    }
    applier = BaseVectorApplier(apply_cfg)
    steering = applier.apply_vectors()
    assert steering.graph.nodes[0].scale == 2.0
    results = applier.generate()[str(prompts)]
    assert [r["input"] for r in results] == ["hi", "a cat"]
    assert all(len(r["pred"]) == 1 and len(r["orig_pred"]) == 1 for r in results)
    written = json.loads(next((tmp_path / "out").rglob("*_results.json")).read_text())
    assert written == results
    graph = vector.to_graph(scale=2.0)
    expected = applier.model.generate(["hi", "a cat"], max_new_tokens=4, graph=graph, seed=0)
    assert [r["pred"][0] for r in results] == expected


def test_control_output_steers_with_each_vectors_random_control(tiny_dirs, tmp_path, files):
    train, prompts = files
    cfg = _config(
        tiny_dirs,
        tmp_path,
        train,
        prompts,
        generate_control_output=True,
        seed=5,
        generation_data=[str(prompts), str(train)],
    )
    vector = BaseVectorGenerator(cfg).generate_vectors()[str(train)]["caa"]
    apply = [{"alg_name": "caa", "multipliers": [2.0]}]
    applier = BaseVectorApplier({**cfg, "apply_steer_hparam_paths": apply})
    applier.apply_vectors({"caa": vector})
    (node,) = applier.control.graph.nodes
    hook = vector.hooks[0]
    control = vector.control(5)  # the config's seed
    torch.testing.assert_close(node.vector, control.directions[hook])
    assert node.scale == 2.0 and abs(float(node.vector @ vector.directions[hook])) < 1e-3
    out = applier.generate()
    texts, ab = out[str(prompts)], out[str(train)]
    expected = applier.model.generate(
        ["hi", "a cat"], max_new_tokens=4, seed=5, graph=control.to_graph(scale=2.0)
    )
    assert [r["control_pred"][0] for r in texts] == expected
    assert all("control_ab_probability" in r and 0 < r["control_ab_probability"] < 1 for r in ab)
    assert all(r["control_ab_probability"] != r["ab_probability"] for r in ab)
    prompt_only = {
        **cfg,
        "steer_train_hparam_paths": [],
        "apply_steer_hparam_paths": [{"alg_name": "prompt", "prompt": "Be kind."}],
    }
    with pytest.raises(ConfigError, match="generate_control_output needs a steering vector"):
        BaseVectorApplier(prompt_only).apply_vectors()


def test_ab_form_answer_scores_the_answer_text(tiny_dirs, tmp_path, files):
    from interv.data.steering import ABItem
    from interv.eval.steering import ab_answer_probability

    train, prompts = files
    cfg = _config(
        tiny_dirs, tmp_path, train, prompts, ab_form="answer", generation_data=[str(train)]
    )
    vector = BaseVectorGenerator(cfg).generate_vectors()[str(train)]["caa"]
    applier = BaseVectorApplier({**cfg, "apply_steer_hparam_paths": [{"alg_name": "caa"}]})
    applier.apply_vectors({"caa": vector})
    records = applier.generate(save_results=False)[str(train)]
    items = [ABItem(r["question"], r["matching"], r["not_matching"]) for r in AB_RECORDS]
    plain = ab_answer_probability(applier.model, items, chat_template=False)
    assert [r["orig_ab_probability"] for r in records] == pytest.approx(plain, abs=1e-6)
    with pytest.raises(ConfigError, match="ab_form must be one of letter, answer, got 'cloze'"):
        load_config({**cfg, "ab_form": "cloze"})


def test_run_generates_applies_and_evaluates(tiny_dirs, tmp_path, files):
    train, prompts = files
    cfg = _config(
        tiny_dirs, tmp_path, train, prompts, eval_metrics=["distinct", "fluency"], num_responses=2
    )
    out = run(cfg, ["caa.multipliers=[0.0]"])
    ((name, records),) = out["results"].items()
    assert all(r["pred"][0] == r["orig_pred"][0] for r in records)  # multiplier 0 is a no-op
    assert all(len(r["pred"]) == 2 for r in records)
    report = out["evaluation"][name]
    assert report["steered"]["distinct_1"] >= 0 and "fluency" in report["unsteered"]
    assert list((tmp_path / "out").glob("*_eval.md"))


def test_overrides_and_easyedit2_keys(tiny_dirs, tmp_path, files):
    train, prompts = files
    cfg = _config(tiny_dirs, tmp_path, train, prompts, vllm_enable=False, dtype="float32")
    workflow = load_config(
        cfg, ["generation_params.max_new_tokens=7", "caa.layers=[0, 1]", "seed=3"]
    )
    config = workflow.config
    assert config.generation_params["max_new_tokens"] == 7 and config.seed == 3
    assert config.torch_dtype == "float32"
    assert workflow.train[0].values["layers"] == [0, 1]
    path = tmp_path / "cfg.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    assert load_config(path).config.model_name_or_path == str(tiny_dirs["llama"])


@pytest.mark.parametrize(
    ("change", "overrides", "message"),
    [
        (
            {"steer_train_datset": "x"},
            [],
            "unknown key 'steer_train_datset'. Did you mean 'steer_train_dataset'",
        ),
        ({"calibration": {"promts": "x"}}, [], "calibration: unknown key 'promts'"),
        ({"dtype": "float16", "torch_dtype": "float32"}, [], "contradicting keys dtype"),
        ({"steer_train_hparam_paths": [{"alg_name": "cca"}]}, [], "Unknown steer method 'cca'"),
        (
            {"steer_train_hparam_paths": [{"alg_name": "caa", "method": "repe"}]},
            [],
            "contradicting keys alg_name",
        ),
        (
            {"steer_train_hparam_paths": [{"alg_name": "caa", "layerz": [1]}]},
            [],
            "caa: unknown key 'layerz'. Did you mean 'layers'",
        ),
        (
            {
                "steer_train_hparam_paths": [{"alg_name": "caa", "chat_template": True}],
                "use_chat_template": False,
            },
            [],
            "contradicting keys: top-level use_chat_template",
        ),
        ({}, ["repe.layers=[1]"], "--set for method\\(s\\) repe"),
        (
            {
                "steer_from_end_position": True,
                "steer_train_hparam_paths": [{"alg_name": "caa", "positions": "prompt"}],
            },
            [],
            "contradicts the top-level",
        ),
    ],
)
def test_config_errors_are_one_clear_message(
    tiny_dirs, tmp_path, files, change, overrides, message
):
    train, prompts = files
    cfg = _config(tiny_dirs, tmp_path, train, prompts, **change)
    with pytest.raises((ConfigError, KeyError), match=message):
        workflow = load_config(cfg, overrides)
        from interv.steer.workflow.methods import apply_hparams, train_hparams

        train_hparams(workflow.train[0], workflow, "x")
        workflow.apply_from_train()
        apply_hparams(workflow.apply[0], workflow)


def test_vector_for_another_model_fails_before_generation(tiny_dirs, tmp_path, files):
    train, prompts = files
    other = SteeringVector(
        {"blocks.1.hook_resid_post": torch.ones(32)},
        method="caa",
        model=ModelRecord(name="other", fingerprint="0" * 16),
    )
    folder = tmp_path / "other" / "caa_vector"
    other.save(folder / "vector.safetensors")
    cfg = _config(
        tiny_dirs,
        tmp_path,
        train,
        prompts,
        apply_steer_hparam_paths=[{"alg_name": "caa"}],
        steer_vector_load_dir=[str(folder)],
    )
    applier = BaseVectorApplier(cfg)
    with pytest.raises(Exception, match="made for|computed on"):
        applier.apply_vectors()
    assert not (tmp_path / "out").exists()
