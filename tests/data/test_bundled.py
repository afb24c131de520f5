"""The bundled data subsets: what a wheel install reads when the benchmark folder is absent
(the test suite itself runs without it). ``interv bench data`` checks the subsets against the
full files; here the check itself, and the guard against reading more than a subset holds."""

from __future__ import annotations

import json

import pytest

from interv.data import editing, steering
from interv.data.bundle import (
    BUNDLE,
    CAA_TRAIN,
    check,
    count,
    manifest,
    require,
    subset,
    write,
)
from interv.data.paths import bundled_root, data_file
from interv.errors import DataError


@pytest.mark.parametrize("relative", sorted(BUNDLE))
def test_every_bundled_subset_ships_with_the_records_it_promises(relative):
    path = bundled_root() / relative
    assert path.is_file(), f"{relative} is not bundled: run python -m interv.data.bundle"
    entry = manifest()[relative]
    held = count(path.read_text(), path.suffix)
    assert held == entry["records"] > 0
    assert BUNDLE[relative] is None or held <= BUNDLE[relative]
    assert entry["complete"] or held == BUNDLE[relative]  # a cut file holds all it promises


def test_check_reports_a_subset_that_no_longer_starts_its_file(tmp_path):
    source, target = tmp_path / "full", tmp_path / "bundled"
    for relative, n in BUNDLE.items():  # a benchmark folder whose files start with the subsets
        full = (bundled_root() / relative).read_text()
        for folder in (source, target):
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_text(full)
        (target / relative).write_text(subset(full, (source / relative).suffix, n))
    assert check(source, target) == []
    changed = "steering/caa/test/refusal/test_dataset_ab.json"
    records = json.loads((source / changed).read_text())
    records[0]["question"] = "changed"
    (source / changed).write_text(json.dumps(records))
    (target / "steering/sentiment/sst2_validation_872.jsonl").unlink()
    assert check(source, target) == [changed, "steering/sentiment/sst2_validation_872.jsonl"]


def test_subset_keeps_the_first_records_of_json_and_lines():
    assert json.loads(subset(json.dumps([1, 2, 3]), ".json", 2)) == [1, 2]
    assert subset("a\nb\nc\n", ".jsonl", 2) == "a\nb\n"
    assert subset("a\nb", ".txt", None) == "a\nb"
    assert subset("a\r\nb\r\nc\r\n", ".csv", 2) == "a\r\nb\r\n"


def test_write_copies_whole_files_byte_for_byte_and_check_sees_line_endings(tmp_path):
    source, target = tmp_path / "full", tmp_path / "bundled"
    for relative in BUNDLE:
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes((bundled_root() / relative).read_bytes())
    csv = "steering/toxicity/wordlists/profanity_en.csv"
    (source / csv).write_bytes(b"word\r\nfoo\r\n")
    write(source, target)
    assert (target / csv).read_bytes() == b"word\r\nfoo\r\n"
    assert check(source, target) == []
    (target / csv).write_bytes(b"word\nfoo\n")
    assert check(source, target) == [csv]


def test_without_the_benchmark_folder_the_bundle_serves_the_loaders():
    assert data_file("steering/caa/test/refusal/test_dataset_ab.json").is_relative_to(
        bundled_root()
    )
    assert len(steering.caa_ab("refusal", "generate", CAA_TRAIN)) == CAA_TRAIN
    assert len(steering.caa_ab("sycophancy", "test")) == 50
    assert len(steering.sentiment_prompts("neutral", 100)) == 100
    assert [r.prompt for r in editing.counterfact(5, start=2)] == [
        r.prompt for r in editing.counterfact_sample()[2:7]
    ]
    with pytest.raises(
        FileNotFoundError,
        match="positive_prompts.jsonl is neither in .* nor among the bundled subsets",
    ):
        steering.sentiment_prompts("positive", 4)


@pytest.mark.parametrize(
    ("load", "message"),
    [
        (lambda: steering.caa_ab("refusal", "generate", CAA_TRAIN + 1), "only its first 400"),
        (lambda: steering.sentiment_prompts("neutral"), "all records were asked for"),
        (lambda: editing.counterfact(41), "records up to 41"),
        (lambda: editing.zsre(5, start=38), "records up to 43"),
    ],
)
def test_asking_a_subset_for_more_than_it_holds_is_one_clear_error(load, message):
    with pytest.raises(DataError, match=message):
        load()


def test_require_lets_full_files_and_whole_bundled_files_through(tmp_path):
    relative = "steering/caa/generate/refusal/generate_dataset.json"
    require(tmp_path / relative, relative, None)  # not a bundled path: the full file
    whole = "steering/sentiment/sst2_validation_872.jsonl"
    require(bundled_root() / whole, whole, None)  # bundled whole
    with pytest.raises(DataError):
        require(bundled_root() / relative, relative, None)
