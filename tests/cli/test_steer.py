"""``interv steer generate|apply|run`` and ``interv eval`` on a tiny model, from YAML configs."""

from __future__ import annotations

import json

import yaml

from interv.cli.main import main

AB = [
    {
        "question": f"Q{i}?\n(A) yes\n(B) no",
        "matching": "(A)" if i % 2 else "(B)",
        "not_matching": "(B)" if i % 2 else "(A)",
    }
    for i in range(4)
]


def _files(tmp_path, tiny_dirs):
    (tmp_path / "train.json").write_text(json.dumps(AB))
    (tmp_path / "prompts.json").write_text(json.dumps([{"input": "hi"}, {"input": "a dog"}]))
    (tmp_path / "caa.yaml").write_text(
        yaml.safe_dump({"alg_name": "caa", "layers": [1], "multipliers": [3.0]})
    )
    config = {
        "model_name_or_path": str(tiny_dirs["llama"]),
        "device": "cpu",
        "steer_train_hparam_paths": ["caa.yaml"],
        "steer_train_dataset": "train.json",
        "steer_vector_output_dir": "vectors",
        "apply_steer_hparam_paths": ["caa.yaml"],
        "steer_vector_load_dir": ["vectors/train/caa_vector"],
        "generation_data": ["prompts.json"],
        "generation_output_dir": "out",
        "generate_orig_output": True,
        "generation_params": {"max_new_tokens": 4},
        "eval_metrics": ["distinct", "fluency"],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_generate_then_apply_then_eval(tmp_path, tiny_dirs, capsys, monkeypatch):
    config = _files(tmp_path, tiny_dirs)
    monkeypatch.chdir(tmp_path)
    assert main(["steer", "generate", "--config", str(config)]) == 0
    assert "train.json\tcaa\tvector (blocks.1.hook_resid_post" in capsys.readouterr().out
    assert (tmp_path / "vectors" / "train" / "caa_vector" / "vector.safetensors").is_file()
    assert (
        main(
            [
                "steer",
                "apply",
                "--config",
                str(config),
                "--set",
                "generation_params.max_new_tokens=3",
            ]
        )
        == 0
    )
    records = json.loads((tmp_path / "out" / "prompts_results.json").read_text())
    assert [r["input"] for r in records] == ["hi", "a dog"] and all(r["pred"] for r in records)
    assert (
        main(
            [
                "eval",
                "--input",
                "out/prompts_results.json",
                "--metrics",
                "distinct,sentiment",
                "--out",
                "report",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "| distinct_2 |" in table and "| vader_positive_share |" in table
    report = json.loads((tmp_path / "report" / "prompts_eval.json").read_text())
    assert set(report) >= {"steered", "unsteered", "n_records"} and report["n_records"] == 2


def test_run_prints_the_evaluation_table(tmp_path, tiny_dirs, capsys, monkeypatch):
    config = _files(tmp_path, tiny_dirs)
    monkeypatch.chdir(tmp_path)
    assert main(["steer", "run", "--config", str(config), "--set", "steer_vector_load_dir=[]"]) == 0
    out = capsys.readouterr().out
    assert "prompts.json: evaluation" in out and "| fluency |" in out
    assert (tmp_path / "out" / "prompts_eval.md").is_file()


def test_bad_config_is_one_error_line(tmp_path, tiny_dirs, capsys, monkeypatch):
    config = _files(tmp_path, tiny_dirs)
    monkeypatch.chdir(tmp_path)  # the config's relative outputs land under tmp_path
    assert main(["steer", "generate", "--config", str(config), "--set", "caa.layers=[9]"]) == 2
    errors = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("interv: error:")
    ]
    assert len(errors) == 1 and "out of range" in errors[0]
    assert main(["steer", "run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "vectors").exists()


def test_calibrate_sweeps_plots_and_writes_the_chosen_strength(
    tmp_path, tiny_dirs, capsys, monkeypatch
):
    config = _files(tmp_path, tiny_dirs)
    monkeypatch.chdir(tmp_path)
    block = [
        "calibration.prompts=prompts.json",
        "calibration.metric=distinct_1",
        "calibration.scales=[1, 2]",
        "calibration.layers=[0, 1]",
        "calibration.fluency_floor=0.1",
        "calibration.max_new_tokens=3",
    ]
    args = ["steer", "calibrate", "--config", str(config), "--plot", "sweep.png", "--write"]
    for item in block:
        args += ["--set", item]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("layer ") >= 4 and "best: layer" in out
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    from interv.steer.vector import SteeringVector

    vector = SteeringVector.load(
        tmp_path / "vectors" / "train" / "caa_vector" / "vector.safetensors"
    )
    assert len(vector.layers) == 1 and vector.recommended_scale in (1.0, 2.0)
    assert vector.meta["calibration"]["metric"] == "distinct_1"


def test_an_existing_vector_is_replaced_only_with_overwrite(
    tmp_path, tiny_dirs, capsys, monkeypatch
):
    config = _files(tmp_path, tiny_dirs)
    monkeypatch.chdir(tmp_path)
    saved = tmp_path / "vectors" / "train" / "caa_vector" / "vector.safetensors"
    assert main(["steer", "generate", "--config", str(config)]) == 0
    before = saved.read_bytes()
    capsys.readouterr()
    assert main(["steer", "generate", "--config", str(config), "--set", "caa.layers=[0]"]) == 2
    err = capsys.readouterr().err
    assert str(saved.relative_to(tmp_path)) in err and "--overwrite" in err
    assert saved.read_bytes() == before  # refused before anything was fitted or written
    assert main(["steer", "generate", "--config", str(config), "--set", "caa.layers=[0]",
                 "--overwrite"]) == 0  # fmt: skip
    from interv.steer.vector import SteeringVector

    assert SteeringVector.load(saved).layers == [0]
    assert [p.name for p in saved.parent.iterdir()] == ["vector.safetensors"]


def _library(tmp_path, monkeypatch, checkout: bool):
    """A stand-in for the package's shipped vectors folder (``interv.vectors``), with a
    ``pyproject.toml`` beside it when it plays a source checkout."""
    import interv.steer.library as library

    root = tmp_path / "package" / "vectors"
    root.mkdir(parents=True)
    if checkout:
        (root.parent / "pyproject.toml").write_text("[project]\n")
    monkeypatch.setattr(library, "library_root", lambda: root)
    return root


def test_an_installed_package_s_vectors_are_never_an_output(
    tmp_path, tiny_dirs, capsys, monkeypatch
):
    config = _files(tmp_path, tiny_dirs)
    monkeypatch.chdir(tmp_path)
    root = _library(tmp_path, monkeypatch, checkout=False)
    into = ["--set", f"steer_vector_output_dir={root / 'tiny'}"]
    for extra in ([], ["--overwrite"]):
        assert main(["steer", "generate", "--config", str(config), *into, *extra]) == 2
        err = capsys.readouterr().err
        assert "shipped vector library" in err and "never writes" in err
    assert not (root / "tiny").exists()


def test_a_checkout_regenerates_a_shipped_vector_only_with_overwrite(
    tmp_path, tiny_dirs, capsys, monkeypatch
):
    config = _files(tmp_path, tiny_dirs)
    monkeypatch.chdir(tmp_path)
    root = _library(tmp_path, monkeypatch, checkout=True)
    into = ["--set", f"steer_vector_output_dir={root / 'tiny'}"]
    assert main(["steer", "generate", "--config", str(config), *into]) == 2
    assert "needs --overwrite" in capsys.readouterr().err and not (root / "tiny").exists()
    assert main(["steer", "generate", "--config", str(config), *into, "--overwrite"]) == 0
    assert (root / "tiny" / "train" / "caa_vector" / "vector.safetensors").is_file()


def test_recipes_write_under_the_working_directory_never_into_the_library(tmp_path, monkeypatch):
    """Running a recipe as its comment says writes under ``results/`` of the working
    directory, wherever interv is installed: the shipped artefacts are never a default output."""
    from interv.recipes import recipe_path
    from interv.steer.library import in_shipped_library
    from interv.steer.workflow import load_workflow
    from interv.steer.workflow.outputs import output_dirs, report_folder, results_file

    monkeypatch.chdir(tmp_path)
    recipes = sorted(recipe_path("steer/refusal").parent.glob("*.yaml"))
    assert len(recipes) >= 10
    for recipe in recipes:
        workflow = load_workflow(recipe)
        outputs = [d for d in output_dirs(workflow) if d is not None]
        outputs += [results_file(workflow, "x"), report_folder(workflow)]
        for path in outputs:
            assert path is not None and not in_shipped_library(path), (recipe.name, path)
            assert path.resolve().is_relative_to(tmp_path.resolve()), (recipe.name, path)
