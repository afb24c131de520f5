"""Evaluating an apply step's JSON: steered vs unsteered metrics, A/B probability, GSM answers."""

from __future__ import annotations

import json

import pytest

from interv.eval.report import (
    evaluate_file,
    evaluate_results,
    exact_answer,
    markdown_table,
    write_report,
)

RECORDS = [
    {
        "input": "Today",
        "pred": ["I love this wonderful day"],
        "orig_pred": ["it rained and I hate it"],
        "complete_output": ["TodayI love this wonderful day"],
        "reference_response": "",
        "ab_probability": 0.8,
        "orig_ab_probability": 0.5,
        "matching": "(A)",
        "not_matching": "(B)",
    },
    {
        "input": "Then",
        "pred": ["great fun, happy people"],
        "orig_pred": ["a table stood there"],
        "complete_output": ["Thengreat fun, happy people"],
        "reference_response": "",
        "ab_probability": 0.6,
        "orig_ab_probability": 0.3,
        "matching": "(B)",
        "not_matching": "(A)",
    },
]


def test_steered_and_unsteered_are_scored_side_by_side(tmp_path):
    report = evaluate_results(RECORDS, ["distinct", "sentiment", "ab"])
    assert report["n_records"] == 2
    assert report["steered"]["vader_positive_share"] == 1.0
    assert report["unsteered"]["vader_positive_share"] == 0.0
    assert report["steered"]["ab_matching_probability"] == 0.7
    assert report["unsteered"]["ab_matching_probability"] == 0.4
    assert report["steered"]["ab_matching_probability_A"] == 0.8  # the items matching with A
    assert report["unsteered"]["ab_matching_probability_B"] == 0.3
    table = markdown_table(report)
    assert "| vader_positive_share | 0 | 1 | +1 |" in table
    json_path, md_path = write_report(report, tmp_path, "toy")
    assert json.loads(json_path.read_text()) == report and md_path.read_text().startswith(
        "# toy: 2 records"
    )


def test_control_generations_get_their_own_column():
    records = [
        {**r, "control_pred": [text], "control_ab_probability": q}
        for r, text, q in zip(
            RECORDS, ["sad, I hate rain", "I hate it, awful"], (0.5, 0.2), strict=True
        )
    ]
    report = evaluate_results(records, ["sentiment", "ab"])
    assert report["control"]["vader_positive_share"] == 0.0
    assert report["control"]["ab_matching_probability"] == 0.35
    assert report["control"]["ab_matching_probability_B"] == 0.2
    table = markdown_table(report)
    assert table.startswith("| metric | unsteered | steered | Δ | control | Δ control |")
    assert "| ab_matching_probability | 0.4 | 0.7 | +0.3 | 0.35 | -0.05 |" in table
    assert "control" not in evaluate_results(RECORDS, ["sentiment"])


def test_file_input_and_errors(tmp_path):
    path = tmp_path / "toy_results.json"
    path.write_text(json.dumps(RECORDS))
    assert evaluate_file(path, ["distinct"])["steered"]["distinct_1"] > 0
    with pytest.raises(ValueError, match="Unknown metric\\(s\\) vibes"):
        evaluate_results(RECORDS, ["vibes"])
    with pytest.raises(ValueError, match="needs the unsteered model"):
        evaluate_results(RECORDS, ["perplexity"])
    with pytest.raises(ValueError, match="No records"):
        evaluate_results([], ["distinct"])
    (tmp_path / "bad.json").write_text(json.dumps({"pred": 1}))
    with pytest.raises(ValueError, match="not an apply output"):
        evaluate_file(tmp_path / "bad.json")


def test_exact_answer_reads_the_final_number():
    refs = ["She has 3 + 4 = 7 apples.\n#### 7", "#### 1,200"]
    assert exact_answer(["so the answer is 7", "\\boxed{1200}"], refs) == 1.0
    assert exact_answer(["maybe 8", "1200 or 1300"], refs) == 0.0
