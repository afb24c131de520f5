"""``interv bench edit`` keeps finished sections on disk when a later one fails."""

from __future__ import annotations

import argparse
import json

import pytest

from interv.bench import edit as bench_edit


def test_finished_sections_survive_a_failing_one(tiny_models, tmp_path, monkeypatch):
    import interv.loading

    monkeypatch.setattr(interv.loading, "load", lambda *a, **k: tiny_models("llama"))
    monkeypatch.setattr(bench_edit, "_stats", lambda model, args, section: {"seconds": 1.5})

    def broken(model, args, section):
        raise RuntimeError("stopped")

    monkeypatch.setattr(bench_edit, "_rome", broken)
    parser = argparse.ArgumentParser()
    bench_edit.add_arguments(parser)
    args = parser.parse_args(["--methods", "stats,rome"])
    args.model, args.device, args.dtype, args.json = (
        None,
        "cpu",
        None,
        tmp_path / "out" / "edit.json",
    )
    with pytest.raises(RuntimeError, match="stopped"):
        bench_edit.run(args)
    saved = json.loads(args.json.read_text())
    assert saved["partial"] is True and saved["stats"] == {"seconds": 1.5} and "rome" not in saved


def test_sequential_section_starts_from_its_recipe_and_takes_overrides():
    parser = argparse.ArgumentParser()
    bench_edit.add_arguments(parser)
    plain = bench_edit.make_method("alphaedit", parser.parse_args([]), "edit/alphaedit-smollm2")
    sequential = bench_edit.make_method(
        "alphaedit", parser.parse_args([]), bench_edit.SEQUENTIAL_RECIPE
    )
    assert plain.hparams.clamp_norm_factor == 0.75 and sequential.hparams.clamp_norm_factor == 0.4
    before, after = plain.hparams.to_dict(), sequential.hparams.to_dict()
    differing = {k for k, v in after.items() if before[k] != v}
    assert differing == {"clamp_norm_factor"}
    changed = bench_edit.make_method(
        "alphaedit", parser.parse_args(["--set", "alphaedit.L2=3"]), bench_edit.SEQUENTIAL_RECIPE
    )
    assert changed.hparams.L2 == 3 and changed.hparams.clamp_norm_factor == 0.4


def test_mend_section_edits_held_out_records_with_the_archive(edit_tiny, mend_archive, monkeypatch):
    from interv.requests import EditRequest
    from tests.edit.conftest import MEND_FACTS, MEND_PROBES

    facts = [EditRequest(**f, locality=MEND_PROBES) for f in MEND_FACTS]
    taken = []
    monkeypatch.setattr(bench_edit, "zsre", lambda n: taken.append(n) or facts[:n])
    parser = argparse.ArgumentParser()
    bench_edit.add_arguments(parser)
    args = parser.parse_args(["--mend-n", "2", "--set", f"mend.archive={mend_archive}"])
    result = bench_edit._learned(edit_tiny, args, "mend")
    bench_edit._check_targets(result, "mend")
    assert taken == [2] and result["n"] == 2
    assert result["pre"]["rewrite_acc"] == 0.0 and result["post"]["rewrite_acc"] == 1.0
    assert result["archive"]["trained"]["steps"] == 80 and "meets_targets" in result
    assert isinstance(result["meets_time_target"], bool)


def test_serac_section_edits_held_out_records_with_the_archive(
    edit_tiny, serac_archive, monkeypatch
):
    from interv.requests import EditRequest
    from tests.edit.conftest import MEND_FACTS, MEND_PROBES

    facts = [EditRequest(**f, locality=MEND_PROBES) for f in MEND_FACTS]
    monkeypatch.setattr(bench_edit, "zsre", lambda n: facts[:n])
    parser = argparse.ArgumentParser()
    bench_edit.add_arguments(parser)
    args = parser.parse_args(["--serac-n", "2", "--set", f"serac.archive={serac_archive}"])
    result = bench_edit._learned(edit_tiny, args, "serac")
    bench_edit._check_targets(result, "serac")
    assert result["n"] == 2 and result["post"]["locality"] == 1.0  # unrelated probes: unrouted
    assert result["hparams"]["threshold"] is None  # the archive's threshold routes
    assert 0 < result["archive"]["trained"]["scope"]["threshold"] < 1
    assert result["targets"] == {"rewrite_acc": 0.9, "locality": 0.95}
    assert "meets_time_target" not in result and not edit_tiny.patches
