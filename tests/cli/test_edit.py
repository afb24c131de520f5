"""``interv edit``: requests or a dataset in, metrics, summary and patch out; clear errors."""

from __future__ import annotations

import json

import pytest

from interv.cli.main import main
from interv.patch import PatchSet

RECORDS = [
    {
        "prompt": "Hello world",
        "subject": "Hello",
        "target_new": "abc",
        "ground_truth": "x",
        "rephrase_prompt": "Hi world",
        "locality_prompt": "The cat",
        "locality_ground_truth": "sat",
    },
    {
        "prompt": "The dog ran",
        "subject": "dog",
        "target_new": "far",
        "ground_truth": "home",
        "portability": {"alias": [{"prompt": "The hound ran", "ground_truth": "far"}]},
    },
]
FAST = "method: ft-m\nlayers: [1]\nlr: 0.05\nnum_steps: 20\nnorm_constraint: null\n"


@pytest.fixture
def inputs(tmp_path):
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps(RECORDS))
    hparams = tmp_path / "ftm.yaml"
    hparams.write_text(FAST)
    return requests, hparams


def run(*args: str) -> int:
    return main(["edit", *args])


def test_edit_writes_metrics_summary_and_patch(tiny_dirs, inputs, tmp_path, capsys):
    requests, hparams = inputs
    out = tmp_path / "run"
    assert (
        run(
            "--requests",
            str(requests),
            "--hparams",
            str(hparams),
            "--model",
            str(tiny_dirs["llama"]),
            "--device",
            "cpu",
            "--out",
            str(out),
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["case_id"] for m in metrics] == [0, 1]
    assert set(metrics[0]) == {"case_id", "requested_rewrite", "time", "pre", "post"}
    assert (
        metrics[0]["post"]["locality"]["neighborhood_acc"]
        and metrics[1]["post"]["portability"]["alias_acc"]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "ft-m" and summary["n"] == 2
    assert set(summary["seconds"]) >= {"stats", "edit_total", "per_edit"}
    assert summary["post"]["rewrite_acc"] == 1.0 and {"locality", "portability"} <= set(
        summary["post"]
    )
    patch = PatchSet.load(out / "patch.safetensors")
    assert (
        patch.method == "ft-m"
        and len(patch.requests) == 2
        and patch.weights() == ["blocks.1.mlp.W_out"]
    )
    assert '"post"' in capsys.readouterr().out


def test_sequential_and_batches(tiny_dirs, inputs, tmp_path):
    requests, hparams = inputs
    for flags in (["--sequential"], ["--batch-size", "2"]):
        out = tmp_path / flags[0].strip("-")
        assert (
            run(
                "--requests",
                str(requests),
                "--hparams",
                str(hparams),
                "--model",
                str(tiny_dirs["llama"]),
                "--device",
                "cpu",
                "--out",
                str(out),
                *flags,
            )
            == 0
        )
        summary = json.loads((out / "summary.json").read_text())
        assert summary["post"]["rewrite_acc"] == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--method", "nope"],
            "Unknown edit method 'nope'. Closest valid names: rome. Known methods: "
            "alphaedit, emmet, ft-l, ft-m, memit, mend, rome",
        ),
        (
            ["--method", "ft-l", "--hparams", "{hparams}"],
            "holds hyperparameters for method 'ft-m', not 'ft-l'",
        ),
        (
            ["--method", "ft-m", "--requests", "{bad}"],
            "Edit record 1 is missing field 'target_new'",
        ),
        (["--hparams", "{typo}"], "FTMHParams: unknown key 'lrr'. Did you mean 'lr'"),
    ],
)
def test_errors_are_one_line_and_write_nothing(tiny_dirs, inputs, tmp_path, capsys, args, message):
    requests, hparams = inputs
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([RECORDS[0], {"prompt": "x y"}]))
    typo = tmp_path / "typo.yaml"
    typo.write_text("method: ft-m\nlrr: 1\n")
    values = {"hparams": str(hparams), "bad": str(bad), "typo": str(typo)}
    args = [a.format(**values) for a in args]
    if "--requests" not in args:
        args += ["--requests", str(requests)]
    out = tmp_path / "run"
    assert run(*args, "--model", str(tiny_dirs["llama"]), "--device", "cpu", "--out", str(out)) == 2
    import re

    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.real_model
def test_edit_a_counterfact_slice_on_the_default_model(real_model_dir, tmp_path):
    hparams = tmp_path / "quick.yaml"
    hparams.write_text("method: ft-m\nnum_steps: 5\n")  # fewer steps: this checks the plumbing
    out = tmp_path / "cf"
    assert (
        run(
            "--dataset",
            "counterfact",
            "--n",
            "3",
            "--hparams",
            str(hparams),
            "--model",
            str(real_model_dir),
            "--device",
            "cpu",
            "--out",
            str(out),
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "interv-output.json",  # the manifest of a finished run (no INCOMPLETE marker)
        "metrics.json",
        "patch.safetensors",
        "summary.json",
    ]
    assert json.loads((out / "interv-output.json").read_text())["files"] == [
        "metrics.json",
        "patch.safetensors",
        "summary.json",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 3 and len(json.loads((out / "metrics.json").read_text())) == 3
    assert {"rewrite_acc", "rephrase_acc", "locality"} <= set(summary["post"])


def test_a_killed_run_is_marked_and_overwrite_replaces_the_whole_run(
    tiny_dirs, inputs, tmp_path, capsys, monkeypatch
):
    requests, hparams = inputs
    out = tmp_path / "run"
    args = ["--requests", str(requests), "--hparams", str(hparams), "--out", str(out)]
    args += ["--model", str(tiny_dirs["llama"]), "--device", "cpu"]

    def killed(self, path):
        raise KeyboardInterrupt  # the process dies after metrics.json, before the patch

    with monkeypatch.context() as patch:
        patch.setattr(PatchSet, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            run(*args)
    assert sorted(p.name for p in out.iterdir()) == ["INCOMPLETE", "metrics.json"]
    assert run(*args) == 2  # reused without --overwrite: refused, says the run is unfinished
    err = capsys.readouterr().err
    assert "unfinished run" in err and "--overwrite" in err
    assert run(*args, "--overwrite") == 0
    files = ["metrics.json", "patch.safetensors", "summary.json"]
    assert sorted(p.name for p in out.iterdir()) == ["interv-output.json", *files]
    # a later run that writes other files removes the earlier run's, not just some of them
    from interv.files import output_folder, write_json

    with output_folder(out, overwrite=True) as folder:
        write_json(folder / "metrics.json", [])
        write_json(folder / "other.json", {})
    assert sorted(p.name for p in out.iterdir()) == [
        "interv-output.json",
        "metrics.json",
        "other.json",
    ]
