"""EasyEdit2's documented flow, as its users write it: ``prepare_train_dataset`` /
``prepare_generation_datasets``, dict records, ``generate_vectors`` → ``apply_vectors`` →
``generate`` → ``model.reset_all()``, the generator's output folder as
``steer_vector_load_dir``, a bfloat16 vector applied in float32, hydra's command line, and
EasyEdit2's own method-file keys."""

from __future__ import annotations

import json

import pytest
import yaml

from interv.cli.main import main
from interv.errors import ArtefactError, ConfigError
from interv.steer.workflow import (
    BaseVectorApplier,
    BaseVectorGenerator,
    load_workflow,
    prepare_generation_datasets,
    prepare_train_dataset,
)
from interv.steer.workflow.config import method_spec
from interv.steer.workflow.methods import train_hparams

RECORDS = [
    {
        "question": "What do you like to do?",
        "matching": "I love it all!",
        "not_matching": "I hate it.",
    },
    {"question": "How are you today?", "matching": "Wonderful, thanks!", "not_matching": "Awful."},
]
INPUTS = [{"input": "Tell me about your day."}, {"input": "The weather is"}]


@pytest.fixture
def top_cfg(tiny_dirs, tmp_path):
    caa = tmp_path / "caa.yaml"
    caa.write_text("alg_name: caa\nlayers: [1]\nmultipliers: [8.0]\n")
    train, prompts = tmp_path / "train.json", tmp_path / "prompts.json"
    train.write_text(json.dumps(RECORDS))
    prompts.write_text(json.dumps(INPUTS))
    return {
        "model_name_or_path": str(tiny_dirs["llama"]),
        "torch_dtype": "bfloat16",  # EasyEdit2's default
        "device": "cpu",
        "use_chat_template": False,
        "steer_train_hparam_paths": [str(caa)],
        "steer_train_dataset": [str(train)],
        "steer_vector_output_dir": [str(tmp_path / "vectors")],
        "apply_steer_hparam_paths": [str(caa)],
        "steer_vector_load_dir": [str(tmp_path / "vectors")],  # the output folder itself
        "generation_data": [str(prompts)],
        "generation_output_dir": str(tmp_path / "generation"),
        "generate_orig_output": True,
        "generation_params": {"max_new_tokens": 6, "do_sample": False},
    }


def test_step_wise_flow_runs_as_easyedit2_documents_it(top_cfg, tmp_path):
    train_datasets = prepare_train_dataset(top_cfg)
    assert list(train_datasets.values()) == [RECORDS]
    generation_datasets = prepare_generation_datasets(top_cfg)
    assert [r["input"] for r in next(iter(generation_datasets.values()))] == [
        r["input"] for r in INPUTS
    ]
    custom = {"your_dataset_name": RECORDS}  # EasyEdit2's dict records, passed directly
    vectors = BaseVectorGenerator(top_cfg).generate_vectors(custom)
    assert (tmp_path / "vectors" / "your_dataset_name" / "caa_vector").is_dir()
    applier = BaseVectorApplier({**top_cfg, "torch_dtype": "float32"})  # another dtype
    for dataset in vectors:
        applier.apply_vectors(vectors[dataset])
        steered = applier.generate(generation_datasets, save_results=False)
        applier.model.reset_all()  # EasyEdit2's steering.py does this between runs
        plain = applier.generate(generation_datasets, save_results=False)
    records = next(iter(steered.values()))
    assert all(r["pred"] != r["orig_pred"] for r in records)  # the vector steers
    after = next(iter(plain.values()))
    assert [r["pred"] for r in after] == [r["orig_pred"] for r in records]  # reset: unsteered


def test_load_dir_may_be_the_generators_output_folder(top_cfg, tmp_path):
    BaseVectorGenerator(top_cfg).generate_vectors({"one": RECORDS})
    applier = BaseVectorApplier({**top_cfg, "torch_dtype": "float32"})
    steering = applier.apply_vectors()
    assert len(steering.graph) == 1  # the one vector below vectors/one/caa_vector
    BaseVectorGenerator(top_cfg).generate_vectors({"two": RECORDS})
    with pytest.raises(ArtefactError, match="several vectors .*one/caa_vector.*two/caa_vector"):
        BaseVectorApplier(top_cfg).apply_vectors()


def test_hydra_command_line_is_an_alias_of_config(top_cfg, tmp_path, capsys):
    folder = tmp_path / "hparams" / "Steer"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({**top_cfg, "generation_params": {}}))
    args = ["--config-path", str(folder), "--config-name", "config"]
    assert main(["steer", "generate", *args, "steer_train_data_size=2"]) == 0
    assert "caa" in capsys.readouterr().out
    code = main(["steer", "generate", "--config", str(folder / "config.yaml"), *args])
    assert code != 0 and "not both" in capsys.readouterr().err
    assert main(["steer", "generate"]) != 0
    assert "--config-path DIR --config-name NAME" in capsys.readouterr().err


def test_easyedit2_method_file_keys_are_accepted(top_cfg, tmp_path):
    workflow = load_workflow({k: v for k, v in top_cfg.items() if k != "use_chat_template"})
    files = {
        "sae_feature": {
            "alg_name": "sae_feature",
            "layer": 1,
            "sae_path": "runs/my-sae",
            "position_ids": [0, 3],
            "strengths": [0.5, 1.0],
            "save_activations": True,
        },
        "sae_feature_release": {
            "alg_name": "sae_feature",
            "release": "gemma-scope-9b-pt-res-canonical",
            "sae_id": "layer_24/width_16k/canonical",
            "position_ids": [7],
            "strengths": [1.0],
        },
        "sta": {
            "alg_name": "sta",
            "layers": [1],
            "sae_paths": ["runs/my-sae"],
            "trims": [0.5],
            "mode": "act_and_freq",
            "multiple_choice": False,
        },
        "prompt": {
            "alg_name": "prompt",
            "prompt": "Be kind.",
            "generate_prompt_params": {"use_chat_template": True, "max_new_tokens": 50, "top_p": 1},
        },
        "merge_vector": {"alg_name": "merge_vector", "method": "ties", "desities": [0.3, 0.6]},
    }
    built = {
        name: train_hparams(method_spec(entry, workflow, "generate"), workflow, "x").hparams
        for name, entry in files.items()
    }
    assert built["sae_feature"].sae == "runs/my-sae" and built["sae_feature"].features == [0, 3]
    assert built["sae_feature_release"].sae == (
        "gemma-scope-9b-pt-res-canonical:layer_24/width_16k/canonical"
    )
    assert built["sta"].sae == "runs/my-sae" and built["sta"].trim == 0.5
    assert built["prompt"].chat_template is True and built["prompt"].max_new_tokens == 50
    assert built["merge_vector"].densities == [0.3, 0.6] and built["merge_vector"].mode == "ties"
    bad = {**files["sta"], "trims": [0.5, 0.65]}
    with pytest.raises(ConfigError, match="trims lists 2 values"):
        train_hparams(method_spec(bad, workflow, "generate"), workflow, "x")
    half = {**files["sae_feature_release"], "sae_id": None}
    half.pop("sae_id")
    with pytest.raises(ConfigError, match="release and sae_id go together"):
        train_hparams(method_spec(half, workflow, "generate"), workflow, "x")


def test_records_without_the_needed_fields_name_the_format(top_cfg):
    with pytest.raises(ValueError, match=r"\{question, matching, not_matching\}"):
        BaseVectorGenerator(top_cfg).generate_vectors({"bad": [{"text": "no contrast here"}]})


def test_the_toxicity_name_says_which_file_to_pass(top_cfg):
    with pytest.raises(ValueError, match="toxicity training set is not published"):
        BaseVectorGenerator({**top_cfg, "steer_train_dataset": ["toxicity"]}).generate_vectors()
