"""Command-line behaviour that needs no model."""

from __future__ import annotations

import pytest

from interv.cli.main import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("model", "hooks", "demo", "bench"):
        assert command in out


def test_model_list(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERV_HOME", str(tmp_path))
    assert main(["model", "list"]) == 0
    out = capsys.readouterr().out
    assert "SmolLM2-135M-Instruct (default)" in out and "not cached" in out


def test_unknown_model_is_one_clear_error(capsys):
    assert main(["model", "pull", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'no-such-model'" in err and "SmolLM2-135M-Instruct" in err


def test_hooks_on_a_local_folder(tiny_dirs, capsys):
    assert main(["hooks", "--model", str(tiny_dirs["gpt2"]), "--device", "cpu"]) == 0
    names = capsys.readouterr().out.split()
    assert names[:3] == ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre"]
    assert main(["hooks", "--model", str(tiny_dirs["gpt2"]), "--device", "cpu", "--weights"]) == 0
    assert "blocks.1.mlp.W_out" in capsys.readouterr().out.split()


def test_help_and_version_import_nothing_heavy():
    """``interv --help`` lists every command from its one-line help without importing torch
    or transformers (commands import what they need when they run)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom interv.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]"), out.stdout
    assert "steer" in out.stdout and "edit" in out.stdout
    version = subprocess.run(
        [sys.executable, "-m", "interv.cli.main", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.startswith("interv ")


def test_a_command_registers_its_arguments_when_it_runs(capsys):
    with pytest.raises(SystemExit):
        main(["edit", "--help"])
    assert "--dataset" in capsys.readouterr().out
