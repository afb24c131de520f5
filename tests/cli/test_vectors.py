"""``interv vectors list|show|export|import|control``: the library, conversion, controls."""

from __future__ import annotations

import json

import pytest
import torch

from interv.cli.main import main
from interv.steer import library
from interv.steer.interop import load_gguf
from interv.steer.vector import SteeringVector


def test_list_and_show_the_shipped_library(capsys):
    assert main(["vectors", "list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("name\tmodel\tmethod\tlayers\trecommended_scale")
    names = {row.split("\t")[0] for row in rows[1:]}
    assert {"sentiment_positive", "refusal", "formality"} <= names
    assert all("recipes/steer/" in row for row in rows[1:])
    assert main(["vectors", "show", "refusal/caa"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["method"] == "caa" and meta["model"]["name"] and meta["norms"]
    assert main(["vectors", "show", "sst2_label"]) == 0  # LM-Steer: a graph, not a vector
    meta = json.loads(capsys.readouterr().out)
    assert meta["kind"] == "graph" and meta["method"] == "lm_steer"
    assert meta["hooks"] == ["ln_final.hook_normalized"]
    folder = library.find("sst2_label").path.parent.parent  # the dataset folder, by path
    assert main(["vectors", "show", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "lm_steer"
    assert main(["vectors", "show", "refusal"]) == 2  # a CAA and a RepE vector share the name
    assert "'refusal' is ambiguous" in capsys.readouterr().err
    assert main(["vectors", "show", "no_such_vector"]) == 2
    assert "Unknown library vector name 'no_such_vector'" in capsys.readouterr().err


def test_export_gguf_and_import_easyedit(tmp_path, capsys):
    out = tmp_path / "refusal.gguf"
    assert main(["vectors", "export", "refusal/caa", "--gguf", str(out), "--scale", "2"]) == 0
    exported = load_gguf(out)
    shipped = library.load("refusal/caa")
    hook = shipped.hooks[0]
    torch.testing.assert_close(exported.directions[hook], 2 * shipped.directions[hook])
    folder = tmp_path / "ee2" / "caa_vector"
    folder.mkdir(parents=True)
    torch.save(torch.ones(1, 8), folder / "layer_4.pt")
    target = tmp_path / "imported.safetensors"
    assert main(["vectors", "import", str(folder), "--out", str(target)]) == 0
    assert SteeringVector.load(target).hooks == ["blocks.4.hook_resid_post"]


def test_control_of_a_shipped_vector(tmp_path, capsys):
    shipped = library.load("refusal/caa")
    out = tmp_path / "control.safetensors"
    assert main(["vectors", "control", "refusal/caa", "--seed", "3", "--out", str(out)]) == 0
    control = SteeringVector.load(out)
    assert control.hooks == shipped.hooks and control.meta["control"]["seed"] == 3
    for hook in shipped.hooks:
        a, b = shipped.directions[hook].float(), control.directions[hook].float()
        assert float(b.norm()) == pytest.approx(float(a.norm()), rel=1e-3)
        assert abs(float(a @ b)) < 1e-3 * float(a.norm() * b.norm())
    again = ["vectors", "control", "refusal/caa", "--any-angle", "--out", str(out)]
    assert main(again) == 2  # an existing output is replaced only on request
    assert "--overwrite" in capsys.readouterr().err
    assert SteeringVector.load(out).meta["control"]["orthogonal"] is True
    assert main([*again, "--overwrite"]) == 0
    assert SteeringVector.load(out).meta["control"]["orthogonal"] is False
