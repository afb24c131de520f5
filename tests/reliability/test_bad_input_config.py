"""Bad hyperparameters, edit requests and generation arguments: each is refused at the boundary
with one ``ConfigError`` (or ``RequestError``) naming the field and the value, and leaves the
model as it was (``tests/reliability/matrix.py``).

A case is a function of ``tmp_path`` and the tiny model returning ``(call, error, words)``:
the call, the expected ``IntervError`` subclass and the words its message must hold.

The suite's runtime type checker (jaxtyping + beartype on every annotated interv function,
pytest addopts) would refuse most of these calls first, with its own ``TypeCheckError``; users
run without it, and these cases are about what they see, so it is off here.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jaxtyping
import pytest

from interv.adapters.generation import check_generation_params
from interv.data.editing import load_requests
from interv.easyedit import ROMEHyperParams
from interv.easyedit.requests import to_edit_request
from interv.edit.ft import FTLHParams
from interv.edit.memit import MEMITHParams
from interv.edit.rome import ROMEHParams
from interv.errors import ConfigError, RequestError
from interv.requests import EditRequest
from interv.sae.training import TrainConfig
from interv.steer.apply import ApplyHParams
from interv.steer.caa import CAAHParams
from interv.steer.workflow import load_workflow
from interv.steer.workflow.config import SteerConfig
from tests.reliability.matrix import assert_refused

Case = tuple[Callable[[], object], type[BaseException], list[str]]
NAN, INF = float("nan"), float("inf")


def _yaml(tmp: Path, text: str, name: str = "hp.yaml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def _api(cls: type, field: str, value: Any, *words: str) -> Callable[[Path, Any], Case]:
    """``cls(field=value)`` refused, the message naming the class, the field and ``words``."""
    return lambda tmp, model: (
        lambda: cls(**{field: value}),
        ConfigError,
        [cls.__name__, field, *words],
    )


def _from_yaml(cls: type, text: str, field: str, *words: str) -> Callable[[Path, Any], Case]:
    """``cls.from_yaml`` of a file holding ``text``: the message names the file and the field."""

    def case(tmp: Path, model: Any) -> Case:
        path = _yaml(tmp, text)
        return lambda: cls.from_yaml(path), ConfigError, [str(path), field, *words]

    return case


def _generate(words: list[str], **kwargs: Any) -> Callable[[Path, Any], Case]:
    return lambda tmp, model: (
        lambda: model.generate(["Hello world"], **kwargs),
        ConfigError,
        words,
    )


# ----------------------------------------------------------------------------- other paths
def easyedit_file_inf(tmp: Path, model: Any) -> Case:
    path = _yaml(tmp, "alg_name: ROME\nmodel_name: x\nlayers: [1]\nkl_factor: .inf\n", "rome.yaml")

    def call() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the facade warns about model_name-style keys
            return ROMEHyperParams.from_hparams(path)

    return call, ConfigError, [str(path), "kl_factor", "inf", "finite"]


def easyedit_facade_setattr(tmp: Path, model: Any) -> Case:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hparams = ROMEHyperParams.from_hparams("./hparams/ROME/smollm2-135m")

    def call() -> None:
        hparams.v_num_grad_steps = 2.7

    return call, ConfigError, ["v_num_grad_steps", "2.7", "whole number"]


def easyedit_facade_batch_size(tmp: Path, model: Any) -> Case:
    path = _yaml(tmp, "alg_name: ROME\nlayers: [1]\nbatch_size: '8'\n", "rome.yaml")

    def call() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ROMEHyperParams.from_hparams(path)

    return call, ConfigError, ["batch_size", "'8'"]


def workflow_generation_params(tmp: Path, model: Any) -> Case:
    path = _yaml(tmp, "generation_params: {max_new_tokens: '5', do_sample: false}\n", "cfg.yaml")
    return (
        lambda: load_workflow(path),
        ConfigError,
        [str(path), "generation_params.max_new_tokens", "'5'"],
    )


def workflow_generation_seed(tmp: Path, model: Any) -> Case:
    config = {"generation_params": {"max_new_tokens": 4, "seed": 3}}
    return lambda: load_workflow(config), ConfigError, ["generation_params.seed", "top-level"]


def workflow_calibration_tokens(tmp: Path, model: Any) -> Case:
    path = _yaml(tmp, "calibration: {max_new_tokens: 2.5}\n", "cfg.yaml")
    return lambda: load_workflow(path), ConfigError, ["calibration", "max_new_tokens", "2.5"]


def request_file_number_target(tmp: Path, model: Any) -> Case:
    path = tmp / "requests.json"
    records = [{"prompt": "a b", "target_new": "c"}, {"prompt": "d e", "target_new": 5}]
    path.write_text(json.dumps(records))
    return lambda: load_requests(path), RequestError, ["Edit record 1", "target_new", "5 (int)"]


def request_file_null_probe_answer(tmp: Path, model: Any) -> Case:
    path = tmp / "requests.json"
    probe = {"neighbour": [{"prompt": "x y", "ground_truth": None}]}
    path.write_text(json.dumps([{"prompt": "a b", "target_new": "c", "locality": probe}]))
    return lambda: load_requests(path), RequestError, ["Edit record 0", "neighbour", "None"]


def easyedit_request_number_target(tmp: Path, model: Any) -> Case:
    return (
        lambda: to_edit_request({"prompt": "a b", "target_new": 5}, 3),
        RequestError,
        ["Request 3", "target_new", "int"],
    )


def _request(words: list[str], **fields: Any) -> Callable[[Path, Any], Case]:
    return lambda tmp, model: (lambda: EditRequest(**fields), RequestError, words)


CASES: dict[str, Callable[[Path, Any], Case]] = {
    # hyperparameters through the API
    "rome-steps-float": _api(ROMEHParams, "v_num_grad_steps", 2.7, "2.7 (float)", "an int"),
    "rome-steps-bool": _api(ROMEHParams, "v_num_grad_steps", True, "True (bool)"),
    "rome-steps-list": _api(ROMEHParams, "v_num_grad_steps", [20], "[20] (list)"),
    "rome-clamp-nan": _api(ROMEHParams, "clamp_norm_factor", NAN, "nan", "finite"),
    "rome-flag-int": _api(ROMEHParams, "mom2_adjustment", 1, "true or false"),
    "rome-fact-token-empty": _api(ROMEHParams, "fact_token", " ", "empty", "subject_last"),
    "rome-model-dims-str": _api(ROMEHParams, "model_dims", {"d_model": "576"}, "'576'"),
    "memit-layers-scalar": _api(MEMITHParams, "layers", 5, "[5]"),
    "memit-layers-item": _api(MEMITHParams, "layers", [3, "4"], "item 1", "'4'"),
    "ft-norm-constraint-str": _api(FTLHParams, "norm_constraint", "small", "or null"),
    "caa-hook-int": _api(CAAHParams, "hook", 12, "a string", "12 (int)"),
    "apply-multiplier-inf": _api(ApplyHParams, "multipliers", [INF], "inf"),
    "steer-config-seed-float": _api(SteerConfig, "seed", 1.5, "1.5", "or null"),
    "sae-k-str": _api(TrainConfig, "k", "32", "'32' (str)"),
    # hyperparameter files
    "yaml-steps-float": _from_yaml(ROMEHParams, "v_num_grad_steps: 2.7\n", "v_num_grad_steps"),
    "yaml-steps-bool": _from_yaml(ROMEHParams, "v_num_grad_steps: true\n", "v_num_grad_steps"),
    "yaml-steps-list": _from_yaml(ROMEHParams, "v_num_grad_steps: [20]\n", "v_num_grad_steps"),
    "yaml-clamp-nan": _from_yaml(ROMEHParams, "clamp_norm_factor: .nan\n", "clamp_norm_factor"),
    "yaml-lr-word": _from_yaml(ROMEHParams, "v_lr: fast\n", "v_lr", "'fast'"),
    "yaml-flag-quoted": _from_yaml(ROMEHParams, "key_gains: 'yes'\n", "key_gains", "unquoted"),
    "yaml-memit-layers-scalar": _from_yaml(MEMITHParams, "layers: 5\n", "layers", "[5]"),
    "yaml-range-names-file": _from_yaml(ROMEHParams, "v_lr: -1.0\n", "v_lr", "positive"),
    "yaml-sae-features-fraction": _from_yaml(TrainConfig, "features: 2048.5\n", "features"),
    "yaml-easyedit-inf": easyedit_file_inf,
    "easyedit-setattr-float": easyedit_facade_setattr,
    "easyedit-batch-size-str": easyedit_facade_batch_size,
    "workflow-generation-str": workflow_generation_params,
    "workflow-generation-seed": workflow_generation_seed,
    "workflow-calibration-tokens": workflow_calibration_tokens,
    # edit requests
    "request-target-number": _request(["target_new", "5 (int)"], prompt="a b", target_new=5),
    "request-prompt-number": _request(["prompt", "3 (int)"], prompt=3, target_new="x"),
    "request-target-blank": _request(["empty `target_new`"], prompt="a b", target_new="  "),
    "request-subject-number": _request(
        ["subject", "7 (int)"], prompt="a b", target_new="c", subject=7
    ),
    "request-file-target-number": request_file_number_target,
    "request-file-null-answer": request_file_null_probe_answer,
    "easyedit-request-target-number": easyedit_request_number_target,
    # generation arguments on the tiny model
    "generate-tokens-str": _generate(["max_new_tokens", "'5'"], max_new_tokens="5"),
    "generate-tokens-float": _generate(["max_new_tokens", "2.5"], max_new_tokens=2.5),
    "generate-tokens-bool": _generate(["max_new_tokens", "True"], max_new_tokens=True),
    "generate-tokens-zero": _generate(["max_new_tokens", ">= 1"], max_new_tokens=0),
    "generate-sample-str": _generate(["do_sample", "'yes'"], do_sample="yes"),
    "generate-temperature-zero": _generate(["temperature", "> 0"], do_sample=True, temperature=0),
    "generate-temperature-nan": _generate(["temperature", "nan"], do_sample=True, temperature=NAN),
    "generate-top-p-high": _generate(["top_p", "1.5"], do_sample=True, top_p=1.5),
    "generate-top-k-zero": _generate(["top_k", "0 (int)"], do_sample=True, top_k=0),
    "generate-top-k-float": _generate(["top_k", "2.0"], do_sample=True, top_k=2.0),
    "generate-seed-str": _generate(["seed", "'1'"], seed="1"),
}


@pytest.fixture
def no_runtime_typechecker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jaxtyping.config, "jaxtyping_disable", True)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_config_is_refused_at_the_boundary(name, tiny_models, tmp_path, no_runtime_typechecker):
    model = tiny_models("llama")
    call, error, words = CASES[name](tmp_path, model)
    assert_refused(model, call, error, words)


def test_valid_generation_settings_still_pass(tiny_models, no_runtime_typechecker):
    """The counterpart of the generate cases: what HookedModel.generate documents still works
    (greedy decoding ignores temperature, so 0 is accepted there; top_k None; any int seed)."""
    model = tiny_models("llama")
    texts = model.generate(["Hello"], max_new_tokens=2, temperature=0, top_k=None, seed=-1)
    assert len(texts) == 1
    sampled = model.generate(
        ["Hello"], max_new_tokens=1, do_sample=True, temperature=1, top_p=1.0, top_k=5, seed=0
    )
    assert len(sampled) == 1
    check_generation_params({"max_new_tokens": 30, "do_sample": False, "repetition_penalty": 1.1})
