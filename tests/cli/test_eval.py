"""``interv eval`` with EasyEdit2's flags (--generation_dataset_path, --eval_methods,
--model_name_or_path): each method maps to interv's metric; values checked by hand."""

from __future__ import annotations

import json

from interv.cli.main import main

RECORDS = [
    {
        "input": "What is 40 + 2?",
        "pred": ["a b a b so 42"],
        "orig_pred": ["I think 41"],
        "reference_response": "40 + 2 = 42\n#### 42",
    },
    {
        "input": "What is 3 * 3?",
        "pred": ["c d gives 8"],
        "orig_pred": ["9"],
        "reference_response": "#### 9",
    },
]


def test_easyedit2_flags_score_by_hand(tmp_path, capsys):
    path = tmp_path / "gsm_results.json"
    path.write_text(json.dumps(RECORDS))
    code = main(
        ["eval", "--generation_dataset_path", str(path), "--eval_methods", "distinctness", "gsm"]
    )
    assert code == 0
    report = json.loads((tmp_path / "gsm_eval.json").read_text())  # beside the input
    assert report["metrics"] == ["distinct", "exact_answer"]
    steered, plain = report["steered"], report["unsteered"]
    assert steered["exact_answer"] == 0.5 and plain["exact_answer"] == 0.5  # 42 right, 8 wrong
    # bigrams of "a b a b so 42" and "c d gives 8": 5 + 3 = 8, of which "a b" twice: 7 unique
    assert steered["distinct_2"] == round(7 / 8, 4)


def test_unknown_and_unavailable_methods_are_clear_errors(tmp_path, capsys):
    path = tmp_path / "gsm_results.json"
    path.write_text(json.dumps(RECORDS))
    assert main(["eval", "--input", str(path), "--eval_methods", "perplexityy"]) != 0
    assert "Unknown --eval_methods perplexityy" in capsys.readouterr().err
    assert main(["eval", "--input", str(path), "--eval_methods", "llm", "gsm"]) != 0
    assert "llm is not available in interv yet" in capsys.readouterr().err
    args = ["eval", "--input", str(path), "--metrics", "distinct", "--eval_methods", "gsm"]
    assert main(args) != 0 and "not both" in capsys.readouterr().err
