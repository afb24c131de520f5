"""The bundled data subsets: the first records of the benchmark files, read when the benchmark
folder is absent (a wheel install), identical to what the full files give for those records."""

from __future__ import annotations

import pytest

from interv.data import steering
from interv.data.bundle import BUNDLE, CAA_TRAIN, subset
from interv.data.paths import bundled_root, data_file, data_root


@pytest.mark.parametrize("relative", sorted(BUNDLE))
def test_bundled_file_is_the_start_of_the_benchmark_file(relative):
    full = data_root() / relative
    bundled = bundled_root() / relative
    assert bundled.is_file(), f"{relative} is not bundled: run python -m interv.data.bundle"
    assert bundled.read_text() == subset(full.read_text(), full.suffix, BUNDLE[relative]), (
        f"the bundled {relative} is stale: run python -m interv.data.bundle"
    )


def test_without_the_benchmark_folder_the_bundle_serves_the_same_records(tmp_path, monkeypatch):
    expected_items = steering.caa_ab("refusal", "generate", CAA_TRAIN)
    expected_test = steering.caa_ab("sycophancy", "test")
    expected_prompts = steering.sentiment_prompts("neutral", 100)
    expected_pairs = steering.convsent_pairs(100)
    monkeypatch.setenv("INTERV_DATA", str(tmp_path))  # an empty folder
    assert data_file("steering/caa/test/refusal/test_dataset_ab.json").is_relative_to(bundled_root())
    assert steering.caa_ab("refusal", "generate", CAA_TRAIN) == expected_items
    assert steering.caa_ab("sycophancy", "test") == expected_test
    assert steering.sentiment_prompts("neutral", 100) == expected_prompts
    assert steering.convsent_pairs(100) == expected_pairs
    with pytest.raises(FileNotFoundError, match="positive_prompts.jsonl is neither in .* nor among "
                                                "the bundled subsets"):
        steering.sentiment_prompts("positive", 4)
