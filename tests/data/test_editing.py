"""Benchmark loaders: CounterFact, ZsRE, KnowEdit, MQuAKE, the shipped sample, bad records."""

from __future__ import annotations

import json

import pytest

from interv.data.editing import (
    counterfact,
    counterfact_sample,
    knowedit,
    load_requests,
    mquake,
    request_from_record,
    zsre,
)
from interv.edit import RequestError
from interv.errors import DataError


def test_counterfact_and_zsre_records():
    cf = counterfact(3)
    assert len(cf) == 3 and cf[0].subject in cf[0].prompt and cf[0].case_id == 10
    assert cf[0].rephrase_prompts and cf[0].locality["neighborhood"][0][1] == "BBC"
    zs = zsre(2)
    assert zs[0].portability["one_hop"][0][1] == "Athletics" and zs[0].locality["nq"]


def test_shipped_sample_is_the_first_twenty_records(tmp_path, monkeypatch):
    sample = counterfact_sample()
    assert len(sample) == 20
    assert [r.to_dict() for r in sample] == [r.to_dict() for r in counterfact(20)]
    monkeypatch.setenv("INTERV_DATA", str(tmp_path))  # no benchmark folder: the bundle serves
    assert [r.prompt for r in counterfact(5, start=2)] == [r.prompt for r in sample[2:7]]
    with pytest.raises(DataError, match="only its first 40 records ship"):
        counterfact(41)


def test_knowedit_subsets_keep_their_probe_sets():
    wiki = knowedit("wiki_counterfact", 40)
    assert {"Reasoning", "Subject_Aliasing"} <= set(wiki[0].portability)
    assert any("Logical_Generalization" in r.portability for r in wiki)
    assert any("Forgetfulness" in r.locality for r in wiki)
    recent = knowedit("wiki_recent", 1)[0]  # nested alias lists keep the first alias
    assert (
        "The name of the country of citizenship of Ingrīda Amantova is",
        "Soviet Union",
    ) in recent.locality["Relation_Specificity"]
    zs = knowedit("zsre", 1)[0]
    assert zs.ground_truth == "Aspidoceratidae" and zs.rephrase_prompts == [
        "What family are Epaspidoceras?"
    ]
    assert zs.portability["Reasoning"] == [
        ("What is the common name for the family Epaspidoceras belongs to?", "Owlet moths")
    ]
    bio = knowedit("wikibio", 1)[0]  # text / labels / concept
    assert bio.subject == "john russell reynolds" and bio.prompt.startswith(
        "This is a Wikipedia passage"
    )
    with pytest.raises(ValueError, match="Unknown KnowEdit subset 'wiki'"):
        knowedit("wiki")


def test_mquake_cases_carry_multi_hop_portability_on_their_last_edit():
    requests = mquake(2)
    assert len(requests) == 8
    first = requests[:4]
    assert first[0].prompt == "Hey Jude was performed by" and first[0].target_new == "Madonna"
    assert first[0].ground_truth == "The Beatles" and first[0].case_id == "7417:0"
    assert not any(r.portability for r in first[:3])
    hops = first[3].portability["multi_hop"]
    assert len(hops) == 3 and {a for _, a in hops} == {"Arabic"}


def test_records_with_portability_lists_and_aliases():
    record = {
        "prompt": "The capital of X is",
        "subject": "X",
        "target_new": ["Rome"],
        "ground_truth": "Paris",
        "portability": {
            "alias": [
                {"prompt": "Y's capital is", "ground_truth": [["Rome", "Roma"]]},
                {"prompt": "skipped", "ground_truth": ""},
            ]
        },
    }
    request = request_from_record(record)
    assert request.target_new == "Rome" and request.portability == {
        "alias": [("Y's capital is", "Rome")]
    }


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"prompt": "a b", "subject": "a"}], "Edit record 0 is missing field 'target_new'"),
        (
            [{"prompt": "a b", "target_new": "c"}, {"target_new": "c"}],
            "Edit record 1 is missing field 'prompt'",
        ),
        (
            [{"prompt": "a b", "target_new": "c", "subject": "z"}],
            r"Edit record 0 \('a b'\): Subject 'z' does not occur",
        ),
        (
            [{"prompt": "a b", "target_new": "c", "locality_prompt": "q"}],
            "Edit record 0.*locality_ground_truth",
        ),
        (["just a string"], "Edit record 0 must be a JSON object"),
        ({"prompt": "a"}, "must hold a JSON list"),
        ([], "holds no edit records"),
    ],
)
def test_malformed_records_name_the_field_and_index(tmp_path, records, message):
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(records))
    with pytest.raises(RequestError, match=message):
        load_requests(path)


def test_invalid_json_is_one_clear_error(tmp_path):
    path = tmp_path / "requests.json"
    path.write_text("[{")
    with pytest.raises(RequestError, match="is not valid JSON"):
        load_requests(path)
