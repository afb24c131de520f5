"""The EasyEdit-compatible facade: hparams files, BaseEditor.edit/batch_edit, EasyEdit's metric
dicts."""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

import pytest
import torch

import interv.easyedit as easyedit
from interv.easyedit import BaseEditor, FTHyperParams, HyperParams
from interv.easyedit.hparams import _class_named
from interv.edit import EDIT_METHODS, EditMethod, RequestError
from interv.hparams import HParams
from interv.patch import WeightPatch

EASYEDIT_FT = """alg_name: "FT"
model_name: "./hugging_cache/llama-2-7b"
device: 0
layers: [21]
num_steps: 25
batch_size: 1
max_length: 40
lr: 5e-4
weight_decay: 0
kl_factor: 0
norm_constraint: false
objective_optimization: "{objective}"
rewrite_module_tmp: "model.layers.{{}}.mlp.down_proj.weight"
layer_module_tmp: "model.layers.{{}}"
mlp_module_tmp: "model.layers.{{}}.mlp"
attn_module_tmp: "model.layers.{{}}.self_attn"
ln_f_module: "model.norm"
lm_head_module: "lm_head"
model_parallel: false
"""
PROMPTS = ["Hello world", "The cat sat"]
TARGETS = ["abc", "dog"]
SUBJECTS = ["Hello", "cat"]
LOCALITY = {"neighborhood": {"prompt": ["Some text", "Other text"], "ground_truth": ["zz", "yy"]}}


def weights_hash(model) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.hf_model.named_parameters()):
        digest.update(name.encode() + param.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def ft_file(tmp_path: Path, objective: str = "target_new") -> Path:
    path = tmp_path / "hparams" / "FT" / "llama-7b.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EASYEDIT_FT.format(objective=objective))
    return path


def editor_for(tiny_dirs, batch_size: int = 1, **changes) -> BaseEditor:
    config = {
        "alg_name": "FT",
        "model_name": str(tiny_dirs["llama"]),
        "layers": [1],
        "lr": 5e-2,
        "num_steps": 20,
        "norm_constraint": None,
        "objective_optimization": "target_new",
        "batch_size": batch_size,
        **changes,
    }
    return BaseEditor.from_hparams(HyperParams.from_dict(config), device="cpu")


# ------------------------------------------------------------------------ hyperparameters
@pytest.mark.parametrize(("objective", "method"), [("prompt_last", "ft-l"), ("target_new", "ft-m")])
def test_easyedit_ft_files_load_with_one_warning(tmp_path, objective, method):
    path = ft_file(tmp_path, objective)
    with pytest.warns(UserWarning) as caught:
        hp = FTHyperParams.from_hparams(str(path).removesuffix(".yaml"))  # EasyEdit drops .yaml
    assert len(caught) == 1
    message = str(caught[0].message)
    for key in ("device", "rewrite_module_tmp", "lm_head_module", "model_parallel", "kl_factor"):
        assert key in message
    assert hp.method == method and type(hp) is FTHyperParams and hp.alg_name == "FT"
    assert hp.params.method == method and hp.layers == [21] and hp.lr == 5e-4
    assert (
        hp.norm_constraint is None
        and hp.batch_size == 1
        and hp.model_name == "./hugging_cache/llama-2-7b"
    )
    hp.layers = [3]  # EasyEdit scripts set attributes; they go through validation again
    assert hp.params.layers == [3]
    with pytest.raises(ValueError, match="num_steps must be at least 1"):
        hp.num_steps = 0


def test_interv_recipes_and_shipped_easyedit_files_load(tmp_path):
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "edit" / "ft-m-smollm2.yaml"
    assert HyperParams.from_hparams(recipe).method == "ft-m"
    with warnings.catch_warnings(record=True):
        shipped = FTHyperParams.from_hparams("./hparams/FT/smollm2-135m")  # from any folder
    assert shipped.model_name == "SmolLM2-135M-Instruct" and shipped.method == "ft-m"
    with pytest.raises(FileNotFoundError, match="interv ships hparams/FT/smollm2-135m"):
        FTHyperParams.from_hparams(tmp_path / "hparams" / "FT" / "nothing")


@dataclasses.dataclass(kw_only=True)
class FakeRomeHParams(HParams):
    method = "rome"
    layers: list[int] = dataclasses.field(default_factory=lambda: [5])
    v_lr: float = 0.5
    mom2_dataset: str = "default"


class FakeRome(EditMethod):
    name = "rome"
    hparams_class = FakeRomeHParams

    def compute(self, model, requests):
        weight = f"blocks.{self.hparams.layers[0]}.mlp.W_out"
        return self.patch_set(
            model, requests, [WeightPatch(weight, delta=torch.ones_like(model.weight(weight)))]
        )


@pytest.fixture
def fake_rome(monkeypatch):
    """A registered 'rome' (until the real one is merged) to test class generation and errors."""
    EDIT_METHODS._load()
    monkeypatch.setitem(EDIT_METHODS._items, "rome", FakeRome)
    _class_named.cache_clear()
    yield FakeRome
    _class_named.cache_clear()


def test_classes_are_generated_from_the_registry(fake_rome, tmp_path):
    from interv.easyedit import R_ROMEHyperParams, ROMEHyperParams

    assert easyedit.ROMEHyperParams is ROMEHyperParams and "ROMEHyperParams" in dir(easyedit)
    path = tmp_path / "rome.yaml"
    path.write_text("alg_name: ROME\nmodel_name: m\nlayers: [3]\nv_lr: 1e-1\nstats_dir: ./data\n")
    with pytest.warns(UserWarning, match="stats_dir"):
        hp = ROMEHyperParams.from_hparams(path)
    assert hp.method == "rome" and hp.params == FakeRomeHParams(layers=[3], v_lr=0.1)
    path.write_text("alg_name: ROME\nmom2_dataset: wikipedia\n")  # a hub download: dropped
    with pytest.warns(UserWarning, match="mom2_dataset"):
        assert ROMEHyperParams.from_hparams(path).mom2_dataset == "default"
    path.write_text("alg_name: ROME\nmom2_dataset: my_corpus.txt\n")
    assert ROMEHyperParams.from_hparams(path).mom2_dataset == "my_corpus.txt"
    path.write_text("alg_name: R-ROME\nmodel_name: m\nlayers: [3]\n")
    assert R_ROMEHyperParams.from_hparams(path).method == "rome"  # R-ROME is an option of ROME
    with pytest.raises(
        ValueError, match=r"for 'R-ROME' .*FTHyperParams loads FT; use ROMEHyperParams"
    ):
        FTHyperParams.from_hparams(path)
    with pytest.raises(ValueError, match="hyperparameters for 'FT'.*use FTHyperParams"):
        ROMEHyperParams.from_hparams(ft_file(tmp_path))


def test_unknown_methods_and_classes_are_clear_errors(tmp_path):
    with pytest.raises(
        ImportError, match="no GRACEHyperParams.*Available: .*FTHyperParams.*ROMEHyperParams"
    ):
        from interv.easyedit import GRACEHyperParams  # noqa: F401
    path = tmp_path / "grace.yaml"
    path.write_text("alg_name: GRACE\nmodel_name: m\n")
    with pytest.raises(
        ValueError,
        match="EasyEdit method .GRACE. is not available in interv; available: .*FT.*ROME",
    ):
        HyperParams.from_hparams(path)
    path.write_text("alg_name: FT\nobjective_optimization: sideways\n")
    with pytest.raises(ValueError, match="objective_optimization 'sideways' is not supported"):
        HyperParams.from_hparams(path)
    path.write_text("alg_name: FT\nevaluation_type: vibes\n")
    with pytest.raises(ValueError, match="evaluation_type 'vibes' is not supported"):
        HyperParams.from_hparams(path)


# ----------------------------------------------------------------------------- editing
def test_edit_returns_easyedit_metrics_and_a_model_with_the_edits(tiny_dirs):
    editor = editor_for(tiny_dirs)
    model = editor.model
    original = weights_hash(model)
    w_out = model.weight("blocks.1.mlp.W_out").detach().clone()
    metrics, edited, weights_copy = editor.edit(
        prompts=PROMPTS,
        ground_truth=["x", "y"],
        target_new=TARGETS,
        subject=SUBJECTS,
        rephrase_prompts=["Hi world", "A cat sat"],
        locality_inputs=LOCALITY,
        verbose=False,
    )
    assert edited is model and edited.hf_model is model.hf_model
    assert [m["case_id"] for m in metrics] == [0, 1]
    first = metrics[0]
    assert set(first) == {"case_id", "requested_rewrite", "time", "pre", "post"}
    assert first["requested_rewrite"] == {
        "prompt": "Hello world",
        "target_new": "abc",
        "ground_truth": "x",
        "portability": {},
        "locality": {"neighborhood": {"prompt": "Some text", "ground_truth": "zz"}},
        "subject": "Hello",
        "rephrase_prompt": "Hi world",
    }
    assert (
        set(first["pre"])
        == set(first["post"])
        == {"rewrite_acc", "rephrase_acc", "locality", "portability"}
    )
    assert set(first["pre"]["locality"]) == {"neighborhood_output"}
    assert set(first["post"]["locality"]) == {"neighborhood_output", "neighborhood_acc"}
    assert [m["post"]["rewrite_acc"] for m in metrics] == [[1.0], [1.0]]
    # the returned model carries both edits; weights_copy holds the originals, native names
    assert weights_hash(model) != original
    assert list(weights_copy) == ["model.layers.1.mlp.down_proj.weight"]
    assert torch.equal(weights_copy["model.layers.1.mlp.down_proj.weight"], w_out.T)
    assert len(editor.applied) == 1 and editor.patch.weights() == ["blocks.1.mlp.W_out"]
    editor.revert()
    assert weights_hash(model) == original


def test_revert_is_exact_with_a_user_patch_on_top(tiny_dirs, fresh_tiny):
    from interv.patch import PatchSet, WeightPatch

    editor = editor_for(tiny_dirs)
    model = editor.model
    original = weights_hash(model)
    weight = "blocks.1.mlp.W_out"  # the weight the editor changed
    user = PatchSet([WeightPatch(weight, delta=torch.randn(model.weight_shape(weight)))])
    editor.edit(PROMPTS, TARGETS, sequential_edit=True, verbose=False)
    user.apply(model)  # on top of the editor's two edits
    editor.revert()  # rebases the user's patch: the weights are the original plus it
    assert list(model.patches) == [user] and not editor.applied
    alone = fresh_tiny("llama")
    user.apply(alone)
    assert weights_hash(model) == weights_hash(alone)
    user.revert(model)
    assert weights_hash(model) == original


def test_non_sequential_scores_each_edit_against_the_original(tiny_dirs):
    editor = editor_for(tiny_dirs)
    metrics, _, _ = editor.edit(PROMPTS, TARGETS, locality_inputs=LOCALITY, verbose=False)
    editor.revert()
    single, _, _ = editor.edit(
        PROMPTS[1:],
        TARGETS[1:],
        locality_inputs={"neighborhood": {"prompt": ["Other text"], "ground_truth": ["yy"]}},
        verbose=False,
    )
    assert single[0]["post"] == metrics[1]["post"]  # the first edit did not influence the second
    with pytest.warns(UserWarning, match="1 earlier edit"):
        editor.edit(PROMPTS[:1], TARGETS[:1], verbose=False)
    editor.revert()


def test_sequential_edits_accumulate_and_are_scored_after_their_own_edit(tiny_dirs):
    editor = editor_for(tiny_dirs)
    model = editor.model
    original = weights_hash(model)
    w_out = model.weight("blocks.1.mlp.W_out").detach().clone()
    metrics, edited, weights_copy = editor.edit(
        PROMPTS, TARGETS, locality_inputs=LOCALITY, sequential_edit=True, verbose=False
    )
    assert len(editor.applied) == 2 and weights_hash(edited) != original
    assert torch.equal(weights_copy["model.layers.1.mlp.down_proj.weight"], w_out.T)
    # request 0 was scored before request 1 was edited: undo the last edit to reproduce it
    last = editor.applied.pop()
    last.revert(model)
    from interv.easyedit.requests import to_edit_request
    from interv.eval.editing import evaluate

    again = evaluate(
        model, [to_edit_request(metrics[0]["requested_rewrite"], 0)], reference=[metrics[0]["pre"]]
    )
    assert again[0] == metrics[0]["post"]
    editor.revert()
    assert weights_hash(model) == original


def test_batch_edit_chunks_by_batch_size(tiny_dirs):
    editor = editor_for(tiny_dirs, batch_size=2)
    prompts, targets = PROMPTS + ["One more"], TARGETS + ["xyz"]
    metrics, _, _ = editor.batch_edit(prompts, targets, verbose=False)
    assert [m["case_id"] for m in metrics] == [0, 1, 2]
    assert metrics[0]["time"] == metrics[1]["time"] != metrics[2]["time"]  # one patch per chunk
    assert len(editor.applied) == 1 and len(editor.patch.requests) == 3
    editor.revert()


def test_batch_edit_needs_a_batchable_method(fake_rome, tiny_dirs):
    editor = BaseEditor(
        HyperParams.from_dict({"alg_name": "ROME", "layers": [1]}),
        model=editor_for(tiny_dirs).model,
    )
    with pytest.raises(ValueError, match="cannot batch edit"):
        editor.batch_edit(PROMPTS, TARGETS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(prompts=PROMPTS, target_new=TARGETS[:1]), "target_new has 1 entries for 2 prompts"),
        (
            dict(prompts=PROMPTS, target_new=TARGETS, subject=["Hello", "dog"]),
            r"Request 1 \('The cat sat'\): Subject 'dog'",
        ),
        (dict(prompts=PROMPTS, target_new=["abc", " "]), "Request 1.*empty `target_new`"),
        (
            dict(prompts=PROMPTS, target_new=TARGETS, locality_inputs={"n": {"prompt": ["a"]}}),
            r"locality_inputs\['n'\] must be a dict with 'prompt' and 'ground_truth'",
        ),
        (
            dict(prompts=PROMPTS, target_new=TARGETS, eval_metric="ppl"),
            "eval_metric 'ppl' is not supported",
        ),
    ],
)
def test_bad_input_is_one_error_and_leaves_the_model(tiny_dirs, kwargs, message):
    editor = editor_for(tiny_dirs)
    original = weights_hash(editor.model)
    with pytest.raises((ValueError, RequestError), match=message):
        editor.edit(**kwargs, verbose=False)
    assert weights_hash(editor.model) == original and not editor.applied


def test_generation_protocol_and_fluency(tiny_dirs):
    editor = editor_for(tiny_dirs, evaluation_type="LLM-judge", num_steps=2)
    metrics, _, _ = editor.edit(PROMPTS, TARGETS, locality_inputs=LOCALITY, verbose=False)
    assert {"rewrite_acc", "rewrite_gen_content"} <= set(metrics[0]["pre"])
    assert set(metrics[0]["pre"]["locality"]) == {"neighborhood_gen_content"}
    assert set(metrics[0]["post"]["locality"]) == {"neighborhood_gen_content", "neighborhood_acc"}
    editor.revert()
    plain = editor_for(tiny_dirs, num_steps=2)
    metrics, _, _ = plain.edit(PROMPTS, TARGETS, test_generation=True, verbose=False)
    assert (
        "ngram_entropy" in metrics[0]["pre"]["fluency"]
        and "ngram_entropy" in metrics[0]["post"]["fluency"]
    )


def test_pre_edit_results_are_reused(tiny_dirs):
    editor = editor_for(tiny_dirs, num_steps=2)
    metrics, _, _ = editor.edit(PROMPTS, TARGETS, locality_inputs=LOCALITY, verbose=False)
    editor.revert()
    fake_pre = [{"pre": {**m["pre"], "rewrite_acc": [0.5]}} for m in metrics]
    again, _, _ = editor.edit(
        PROMPTS, TARGETS, locality_inputs=LOCALITY, pre_edit=fake_pre, verbose=False
    )
    assert [m["pre"]["rewrite_acc"] for m in again] == [[0.5], [0.5]]
    editor.revert()


def test_an_hparams_dataclass_or_a_model_can_be_passed(tiny_dirs):
    model = editor_for(tiny_dirs).model
    params = EDIT_METHODS.get("ft-m").hparams_class(layers=[1], num_steps=1)
    editor = BaseEditor(params, model=model)
    assert editor.hparams.method == "ft-m" and editor.model is model
    assert editor.method.hparams is params


@pytest.mark.real_model
def test_facade_round_trip_on_the_default_model(real_model_dir):
    with warnings.catch_warnings(record=True):
        hparams = FTHyperParams.from_hparams("./hparams/FT/smollm2-135m")
    hparams.model_name = str(real_model_dir)
    editor = BaseEditor.from_hparams(hparams, device="cpu")
    original = weights_hash(editor.model)
    metrics, edited, _ = editor.edit(
        prompts=["The Eiffel Tower is located in the city of"],
        ground_truth=["Paris"],
        target_new=["Rome"],
        subject=["Eiffel Tower"],
        verbose=False,
    )
    assert metrics[0]["pre"]["rewrite_acc"] == [0.0] and metrics[0]["post"]["rewrite_acc"] == [1.0]
    assert (
        edited.generate("The Eiffel Tower is located in the city of", max_new_tokens=3)[0]
        .strip()
        .startswith("Rome")
    )
    editor.revert()
    assert weights_hash(editor.model) == original
