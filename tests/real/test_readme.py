"""The README's Python examples run as written against the default model."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_model

README = Path(__file__).resolve().parents[2] / "README.md"
EASYEDIT_MARK = "# EasyEdit users: keep your code"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_examples_run(real_model_dir, capsys):
    blocks = [b for b in python_blocks() if not b.startswith(EASYEDIT_MARK)]
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    assert "30 576" in capsys.readouterr().out


def test_easyedit_quickstart_runs(real_model_dir, capsys):
    import interv

    [block] = [b for b in python_blocks() if b.startswith(EASYEDIT_MARK)]
    namespace = {"__name__": "readme"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the one warning about EasyEdit's module keys
        exec(compile(block, str(README), "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    scores = [line for line in lines if "->" in line]
    assert [s.split()[0] for s in scores] == ["violin", "soccer", "Swedish"]
    posts = [float(re.findall(r"-> \[([\d.]+)\]", s)[0]) for s in scores]
    pres = [float(re.findall(r"\[([\d.]+)\] ->", s)[0]) for s in scores]
    assert sum(posts) / 3 >= 2 / 3 and sum(posts) > sum(pres)
    assert "soccer" in lines[-1]  # the generation of the edited model
    editor = namespace["editor"]
    assert not editor.applied  # revert() ran: the original weights are back
    reference = interv.load(real_model_dir, device="cpu")
    for name, param in reference.hf_model.named_parameters():
        live = editor.model.hf_model.get_parameter(name).detach()
        assert hashlib.sha256(live.numpy().tobytes()).digest() == hashlib.sha256(
            param.detach().numpy().tobytes()
        ).digest(), name
