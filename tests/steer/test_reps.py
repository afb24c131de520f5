"""reps: training learns both directions (+v prefers the output, -v the rejected completion);
EasyEdit2's record names are aliases; a record without a rejected completion uses the model's
greedy continuation; bad records and hyperparameters are clear errors; the workflow reads
EasyEdit2's reps method file."""

from __future__ import annotations

import pytest
import torch

from interv.adapters import names
from interv.errors import ConfigError, SteeringError
from interv.steer.reps import RePS, RePSHParams, _texts
from interv.steer.sft import output_logprobs
from interv.steer.workflow import BaseVectorGenerator
from interv.tokens import answer_ids

HOOK = names.hook("resid_post", 1)
RECORDS = [
    {"input": "hello there", "output": "good great fine", "rejected": "bad awful poor"},
    {"input": "a cat sat", "output": "good great fine", "rejected": "on the mat now"},
    {"input": "the dog", "output": "good great fine", "rejected": "ran off to sea"},
]
ALIASED = [
    {"question": r["input"], "matching": r["output"], "not_matching": r["rejected"]}
    for r in RECORDS
]


def _margin(model, pairs, vector, sign: float) -> float:
    """Mean over records of lp(output) - lp(rejected) with ``sign * vector`` added."""

    def add(act, ctx):
        return act + sign * vector

    with torch.no_grad():
        chosen = output_logprobs(model, [(p.prompt, p.chosen) for p in pairs], [(HOOK, add)])
        rejected = output_logprobs(model, [(p.prompt, p.rejected) for p in pairs], [(HOOK, add)])
    return float((chosen - rejected).mean())


@pytest.mark.parametrize("suppression", ["subtract", "null"])
def test_training_learns_both_directions(tiny_models, suppression):
    model = tiny_models("llama")
    hp = RePSHParams(layers=[1], n_epochs=12, batch_size=3, lr=1.0, suppression=suppression)
    method = RePS(hp, progress=False)
    vector = method.fit(model, RECORDS)
    losses = vector.meta["losses"]
    assert len(losses) == 12 and losses[-1] < losses[0]
    assert all(p.requires_grad for p in model.hf_model.parameters())  # restored
    pairs, generated = method.pairs(model, RECORDS)
    assert generated == 0 and vector.meta["n_generated"] == 0
    v = vector.directions[HOOK]
    plain = _margin(model, pairs, v, 0.0)
    assert _margin(model, pairs, v, 1.0) > plain + 0.3  # +v prefers the steered output
    if suppression == "subtract":  # -v prefers the original completion: trained directly
        assert -_margin(model, pairs, v, -1.0) > -plain + 0.3


def test_easyedit2_names_are_aliases(tiny_models):
    model = tiny_models("llama")
    hp = RePSHParams(layers=[0, 1], n_epochs=1, batch_size=2, dropout=0.1)
    a = RePS(hp, progress=False).fit(model, RECORDS)
    b = RePS(hp, progress=False).fit(model, ALIASED)
    assert a.hooks == b.hooks and a.meta == b.meta
    assert all(torch.equal(a.directions[h], b.directions[h]) for h in a.hooks)


@pytest.mark.parametrize("chat_template", [False, True])
def test_missing_rejected_is_the_models_greedy_continuation(tiny_models, chat_template):
    model = tiny_models("llama")
    hp = RePSHParams(layers=[1], output_length=6, chat_template=chat_template)
    records = [
        {"input": "the dog", "output": "good"},
        RECORDS[0],
        {"input": "a cat", "output": "x"},
    ]
    pairs, generated = RePS(hp, progress=False).pairs(model, records)
    texts = model.generate(
        ["the dog", "a cat"], max_new_tokens=6, do_sample=False, chat_template=chat_template
    )
    expected = [answer_ids(model, t.strip())[:6] for t in texts]  # tokenised like `output`
    assert generated == 2
    assert [pairs[0].rejected, pairs[2].rejected] == expected
    assert pairs[1].rejected == answer_ids(model, "bad awful poor")[:6]
    assert all(p.beta_pos >= 1.0 and p.beta_neg >= 1.0 for p in pairs)  # beta_floor


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([RECORDS[0], {"input": "hello"}], "record 1 needs an `input`"),
        ([{"output": "fine", "rejected": "bad"}], "record 0 needs an `input`"),
        ([{"input": "hi", "output": "fine", "rejected": "  "}], "none of them empty"),
        ([{"input": "hi", "output": "fine", "rejected": "fine"}], "same completion"),
        ([{"input": "hi", "output": ["fine"]}], "`output` must be text"),
        ([], "empty"),
    ],
)
def test_bad_records_are_one_clear_error(tiny_models, records, message):
    with pytest.raises(SteeringError, match=message):
        RePS(RePSHParams(layers=[1]), progress=False).fit(tiny_models("llama"), records)


def test_an_empty_greedy_continuation_is_a_clear_error(tiny_models, monkeypatch):
    model = tiny_models("llama")
    monkeypatch.setattr(model, "generate", lambda inputs, **options: [" \n"] * len(inputs))
    with pytest.raises(SteeringError, match="record 1: the model's greedy continuation"):
        RePS(RePSHParams(layers=[1]), progress=False).fit(
            model, [RECORDS[0], {"input": "a", "output": "b"}]
        )


def test_a_record_that_is_not_a_mapping_is_a_clear_error():
    with pytest.raises(SteeringError, match="record 2 is a str"):
        _texts(2, "hello")  # fit's type check catches it first under the test-time checker


def test_bad_hyperparameters():
    with pytest.raises(ConfigError, match="steering_factors must be positive"):
        RePSHParams(steering_factors=[0.0, 2.0])
    with pytest.raises(ConfigError, match="suppression must be one of subtract, null"):
        RePSHParams(suppression="null_it_out")
    with pytest.raises(ConfigError, match="beta_floor must be positive"):
        RePSHParams(beta_floor=0.0)


def test_easyedit2_reps_file_trains_through_the_workflow(tiny_dirs):
    reps = {  # EasyEdit2's RePS hyperparameters (keys interv has no use for are logged)
        "alg_name": "reps",
        "layers": [1],
        "batch_size": 3,
        "n_epochs": 1,
        "lr": 0.08,
        "loss_type": "scaled_simpo",
        "simpo_scaler": 1.0,
        "steering_factors": [0.0, 2.0],
        "substraction_type": "null_it_out",
        "preference_pairs": ["orig_add", "orig_sub"],
        "reference_free": False,
        "low_rank_dimension": 1,
        "intervention_positions_dropout": 0.0,
    }
    cfg = {
        "model_name_or_path": str(tiny_dirs["llama"]),
        "device": "cpu",
        "steer_train_hparam_paths": [reps],
        "save_vectors": False,
    }
    vector = BaseVectorGenerator(cfg).generate_vectors({"concept": ALIASED})["concept"]["reps"]
    assert vector.hooks == [HOOK] and float(vector.directions[HOOK].norm()) > 0
    hp = vector.meta["hparams"]
    assert hp["suppression"] == "null" and hp["steering_factors"] == [2.0]
    cfg["steer_train_hparam_paths"] = [{**reps, "loss_type": "dpo"}]
    with pytest.raises(ConfigError, match="loss_type scaled_simpo"):
        BaseVectorGenerator(cfg).generate_vectors({"concept": ALIASED})
