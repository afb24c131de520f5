"""sft: training lowers the outputs' loss with the vector applied; bad records; the workflow
reads EasyEdit2's sft method file."""

from __future__ import annotations

import pytest
import torch

from interv.adapters import names
from interv.steer.sft import SFT, SFTHParams, output_nll
from interv.steer.workflow import BaseVectorGenerator

HOOK = names.hook("resid_post", 1)
RECORDS = [
    {"input": "hello there", "output": "good great fine"},
    {"input": "a cat sat", "output": "good great fine"},
    {"input": "the dog", "output": "good great fine"},
]


def test_training_lowers_the_output_loss(tiny_models):
    model = tiny_models("llama")
    method = SFT(SFTHParams(layers=[1], n_epochs=30, batch_size=3, lr=1.0))
    vector = method.fit(model, RECORDS)
    rows = [method._row(model, r) for r in RECORDS]
    zero = {HOOK: torch.zeros_like(vector.directions[HOOK])}
    with torch.no_grad():
        before = float(output_nll(model, rows, zero))
        after = float(output_nll(model, rows, vector.directions))
    losses = vector.meta["losses"]
    assert len(losses) == 30 and losses[-1] < losses[0]
    assert after < 0.7 * before  # the vector makes the model say the outputs
    assert all(p.requires_grad for p in model.hf_model.parameters())  # restored


def test_bad_records_are_clear_errors(tiny_models):
    model = tiny_models("llama")
    method = SFT(SFTHParams(layers=[1]))
    with pytest.raises(ValueError, match="needs an `input` and the `output`"):
        method.fit(model, [{"input": "hello"}])
    with pytest.raises(ValueError, match="needs an `input` and the `output`"):
        method.fit(model, [{"output": "fine"}])
    with pytest.raises(ValueError, match="lr must be positive"):
        SFTHParams(lr=0)


def test_easyedit2_sft_file_trains_through_the_workflow(tiny_dirs):
    sft = {  # EasyEdit2's generate_sft_vector.yaml keys (the intervention keys are logged)
        "alg_name": "sft",
        "layers": [1],
        "batch_size": 2,
        "lr": 0.08,
        "n_epochs": 1,
        "weight_decay": 0.0,
        "dropout": 0.1,
        "preference_pairs": ["orig_add", "orig_sub"],
        "intervention_method": "vector",
        "low_rank_dimension": 1,
        "steering_factors": [2.0, 4.0],
    }
    cfg = {
        "model_name_or_path": str(tiny_dirs["llama"]),
        "device": "cpu",
        "steer_train_hparam_paths": [sft],
        "save_vectors": False,
    }
    vectors = BaseVectorGenerator(cfg).generate_vectors({"concept": RECORDS})
    vector = vectors["concept"]["sft"]
    assert vector.hooks == [HOOK] and float(vector.directions[HOOK].norm()) > 0
