"""``interv sae``: train, inspect and list from the command line, on a tiny model."""

from __future__ import annotations

import json

from interv.cli.main import main
from tests.sae.conftest import tiny_corpus


def test_train_command_writes_a_loadable_sae(tiny_dirs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("INTERV_HOME", str(tmp_path / "home"))
    out = tmp_path / "sae"
    code = main(
        [
            "sae",
            "train",
            "--model",
            str(tiny_dirs["llama"]),
            "--device",
            "cpu",
            "--hook",
            "blocks.0.hook_resid_post",
            "--features",
            "16",
            "--k",
            "2",
            "--tokens",
            "1024",
            "--corpus",
            str(tiny_corpus(tmp_path / "c.txt", 30)),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert '"explained_variance"' in capsys.readouterr().out
    report = json.loads((out / "training.json").read_text())
    assert report["hook"] == "blocks.0.hook_resid_post" and report["heldout"]["l0"] <= 2
    assert (out / "cfg.json").is_file() and (out / "sae_weights.safetensors").is_file()


def test_inspect_feature_and_text(tiny_sae_run, tiny_dirs, tmp_path, capsys):
    _, _, report, folder = tiny_sae_run
    common = [
        "sae",
        "inspect",
        "--model",
        str(tiny_dirs["llama"]),
        "--device",
        "cpu",
        "--sae",
        str(folder),
        "--corpus",
        report["config"]["corpus"],
        "--docs",
        "20",
    ]
    page, png = tmp_path / "f.html", tmp_path / "f.png"
    assert main([*common, "--feature", "3", "--html", str(page), "--png", str(png)]) == 0
    assert "Feature 3 of SAE" in capsys.readouterr().out
    assert page.read_text().startswith("<!doctype html>") and png.read_bytes()[:4] == b"\x89PNG"
    assert main([*common, "--text", "the cat sat"]) == 0
    assert "Top features per token" in capsys.readouterr().out


def test_list_shows_the_shipped_sae(capsys):
    assert main(["sae", "list"]) == 0
    assert "smollm2-135m-res12: blocks.12.hook_resid_post" in capsys.readouterr().out


def test_shipped_recipes_parse_and_match_the_shipped_sae():
    from interv.recipes import recipe_path
    from interv.sae import shipped
    from interv.sae.training import TrainConfig
    from interv.steer.sae_feature import SAEFeatureHParams
    from interv.steer.sta import STAHParams
    from interv.steer.workflow.config import load_workflow
    from interv.steer.workflow.methods import train_hparams

    train = TrainConfig.from_yaml(recipe_path("sae/smollm2-135m-res12"))
    from interv.sae.loading import shipped_folder

    shipped_report = json.loads(
        (shipped_folder("smollm2-135m-res12") / "training.json").read_text()
    )
    assert shipped_report["config"] == train.to_dict()  # the shipped SAE is the recipe's output
    for name, cls in (
        ("steer/sta_sentiment", STAHParams),
        ("steer/sae_feature_positive", SAEFeatureHParams),
    ):
        workflow = load_workflow(recipe_path(name))  # steering recipes are workflow configs
        method = train_hparams(workflow.train[0], workflow, "x")
        assert isinstance(method.hparams, cls) and method.hparams.sae in shipped()
