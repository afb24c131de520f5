"""Bad files and bad command lines: each case is refused with one clear error naming the file
(and, where the parser knows them, the line and column), and leaves the model as it was
(``tests/reliability/matrix.py``). A command line that is refused writes nothing.

A file case is a function of ``Files`` (a folder of good artefacts written once, and the tiny
Llama) returning ``(call, error, words)``; a command-line case returns ``(argv, words)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from interv.errors import (
    ConfigError,
    DataError,
    GraphError,
    MissingFileError,
    PatchError,
    RequestError,
    SAEError,
    SteeringError,
)
from interv.files import write_tagged
from interv.graph import Add, Graph
from interv.patch import PatchSet, WeightPatch
from interv.record import ModelRecord
from interv.steer.vector import SteeringVector
from tests.reliability.matrix import assert_cli_refused, assert_refused

HOOK = "blocks.1.hook_resid_post"
WEIGHT = "blocks.1.mlp.W_out"
BAD_UTF8 = b'[{"prompt": "caf\xe9 is", "target_new": "x"}]'  # Latin-1 at column 17


@dataclass
class Files:
    model: Any
    root: Path
    llama: Path  # the tiny Llama's checkpoint folder

    def path(self, name: str, data: bytes | str | None = None) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        elif data is not None:
            path.write_bytes(data)
        return path

    def patch(self) -> Path:
        delta = torch.ones(self.model.weight(WEIGHT).shape)
        patch = PatchSet([WeightPatch(WEIGHT, delta=delta)], model=ModelRecord.of(self.model))
        return patch.save(self.root / "good" / "patch.safetensors")

    def vector(self) -> Path:
        vector = SteeringVector({HOOK: torch.ones(32)}, method="caa")
        return vector.save(self.root / "good" / "vector.safetensors")

    def graph(self) -> Path:
        return Graph([Add(HOOK, torch.ones(32), name="add")]).save(self.root / "good" / "graph")

    def sae(self) -> Path:
        from safetensors.torch import save_file

        folder = self.root / "good" / "sae"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cfg.json").write_text(json.dumps({"d_in": 32, "d_sae": 8}))
        weights = {"W_enc": torch.zeros(32, 8), "W_dec": torch.zeros(8, 32)}
        save_file(weights, str(folder / "sae_weights.safetensors"))
        return folder


def truncated(path: Path) -> Path:
    """``path`` cut in half, as a killed writer would have left it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt(path: Path) -> Path:
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header" + b"\x00" * 64)
    return path


# --------------------------------------------------------------------------- artefact files
def patch_corrupt(f: Files):
    path = corrupt(f.patch())
    return lambda: PatchSet.load(path).apply(f.model), PatchError, [str(path), "corrupt"]


def patch_truncated(f: Files):
    path = truncated(f.patch())
    return lambda: PatchSet.load(path).apply(f.model), PatchError, [str(path), "corrupt"]


def patch_wrong_format(f: Files):
    path = f.vector()  # a steering vector is no patch
    words = [str(path), "'interv.vector'", "'interv.patch'"]
    return lambda: PatchSet.load(path).apply(f.model), PatchError, words


def patch_lists_a_missing_tensor(f: Files):
    path = write_tagged(f.root / "p.safetensors", {}, "interv.patch", 1, {"weights": [WEIGHT]})
    return lambda: PatchSet.load(path).apply(f.model), PatchError, [str(path), WEIGHT]


def patch_missing_file(f: Files):
    path = f.root / "nowhere" / "patch.safetensors"
    return lambda: PatchSet.load(path).apply(f.model), MissingFileError, [str(path)]


def vector_corrupt(f: Files):
    path = corrupt(f.vector())
    return lambda: SteeringVector.load(path), SteeringError, [str(path), "corrupt"]


def vector_truncated(f: Files):
    path = truncated(f.vector())
    return lambda: SteeringVector.load(path), SteeringError, [str(path), "corrupt"]


def vector_lists_a_missing_hook(f: Files):
    meta = SteeringVector({HOOK: torch.ones(32)}, method="caa").metadata()
    meta["hooks"] = [HOOK, "blocks.0.hook_resid_post"]
    tensors = {HOOK: torch.ones(32)}
    path = write_tagged(f.root / "v.safetensors", tensors, "interv.vector", 1, meta)
    words = [str(path), "'blocks.0.hook_resid_post'", "hooks"]
    return lambda: SteeringVector.load(path), SteeringError, words


def vector_metadata_lacks_a_key(f: Files):
    meta = SteeringVector({HOOK: torch.ones(32)}, method="caa").metadata()
    del meta["recommended_scale"]
    tensors = {HOOK: torch.ones(32)}
    path = write_tagged(f.root / "v.safetensors", tensors, "interv.vector", 1, meta)
    return lambda: SteeringVector.load(path), SteeringError, [str(path), "'recommended_scale'"]


def patch_metadata_lacks_its_weights(f: Files):
    path = write_tagged(f.root / "p.safetensors", {}, "interv.patch", 1, {"method": "rome"})
    return lambda: PatchSet.load(path).apply(f.model), PatchError, [str(path), "'weights'"]


def vector_wrong_format(f: Files):
    path = f.patch()
    return lambda: SteeringVector.load(path), SteeringError, [str(path), "'interv.patch'"]


def graph_tensors_corrupt(f: Files):
    folder = f.graph()
    corrupt(folder / "tensors.safetensors")
    return lambda: Graph.load(folder), GraphError, ["tensors.safetensors", "corrupt"]


def graph_tensors_truncated(f: Files):
    folder = f.graph()
    truncated(folder / "tensors.safetensors")
    return lambda: Graph.load(folder), GraphError, ["tensors.safetensors", "corrupt"]


def graph_yaml_malformed(f: Files):
    folder = f.graph()
    text = (folder / "graph.yaml").read_text()
    (folder / "graph.yaml").write_text(text + "nodes: [unclosed\n")
    words = ["graph.yaml", "not valid YAML", "line", "column"]
    return lambda: Graph.load(folder), GraphError, words


def sae_weights_truncated(f: Files):
    from interv.sae import load

    folder = f.sae()
    truncated(folder / "sae_weights.safetensors")
    call = lambda: load(folder, model=f.model)  # noqa: E731
    return call, SAEError, [str(folder), "sae_weights.safetensors", "truncated"]


def sae_config_malformed(f: Files):
    from interv.sae import load

    folder = f.sae()
    (folder / "cfg.json").write_text('{"d_in": 32,')
    return lambda: load(folder, model=f.model), SAEError, [str(folder), "cfg.json", "JSON"]


# ---------------------------------------------------------------------- request/data files
def requests_not_utf8(f: Files):
    from interv.data.editing import load_requests

    path = f.path("requests.json", BAD_UTF8)
    words = [str(path), "UTF-8", "line 1", "column 17"]
    return lambda: load_requests(path), RequestError, words


def requests_malformed_json(f: Files):
    from interv.data.editing import load_requests

    path = f.path("requests.json", '[\n  {"prompt": "a",\n   "target_new" "b"}\n]\n')
    words = [str(path), "not valid JSON", "line 3", "column 17"]
    return lambda: load_requests(path), RequestError, words


def requests_malformed_jsonl(f: Files):
    from interv.data.editing import load_requests

    good = json.dumps({"prompt": "a", "target_new": "b"})
    path = f.path("requests.jsonl", f"{good}\n{good}\n{{oops}}\n")
    words = [str(path), "line 3", "column 2"]
    return lambda: load_requests(path), RequestError, words


def requests_bad_record_names_the_file(f: Files):
    from interv.data.editing import load_requests

    path = f.path("requests.json", json.dumps([{"prompt": "a"}]))
    return lambda: load_requests(path), RequestError, [str(path), "'target_new'", "record 0"]


def steering_data_malformed_jsonl(f: Files):
    from interv.steer.workflow.datasets import train_data

    path = f.path("pairs.jsonl", '{"positive": "a", "negative": "b"}\n{"positive": \n')
    words = [str(path), "line 2", "column"]
    return lambda: train_data(str(path), "pairs"), DataError, words


def steering_data_not_utf8(f: Files):
    from interv.steer.workflow.datasets import train_data

    path = f.path("pairs.json", BAD_UTF8)
    return lambda: train_data(str(path), "pairs"), DataError, [str(path), "UTF-8", "line 1"]


def workflow_config_malformed_yaml(f: Files):
    from interv.steer.workflow import load_workflow

    path = f.path("config.yaml", "model_name_or_path: x\nsteer_train_dataset: [a, b\n")
    words = [str(path), "not valid YAML", "line 3", "column 1"]
    return lambda: load_workflow(path), ConfigError, words


def workflow_config_not_utf8(f: Files):
    from interv.steer.workflow import load_workflow

    path = f.path("config.yaml", b"system_prompt: caf\xe9\n")
    return lambda: load_workflow(path), ConfigError, [str(path), "UTF-8", "line 1", "column 19"]


CASES = [
    patch_corrupt,
    patch_truncated,
    patch_wrong_format,
    patch_lists_a_missing_tensor,
    patch_missing_file,
    vector_corrupt,
    vector_truncated,
    vector_lists_a_missing_hook,
    vector_wrong_format,
    vector_metadata_lacks_a_key,
    patch_metadata_lacks_its_weights,
    graph_tensors_corrupt,
    graph_tensors_truncated,
    graph_yaml_malformed,
    sae_weights_truncated,
    sae_config_malformed,
    requests_not_utf8,
    requests_malformed_json,
    requests_malformed_jsonl,
    requests_bad_record_names_the_file,
    steering_data_malformed_jsonl,
    steering_data_not_utf8,
    workflow_config_malformed_yaml,
    workflow_config_not_utf8,
]


@pytest.fixture
def files(tiny_models, tiny_dirs, tmp_path) -> Files:
    return Files(tiny_models("llama"), tmp_path, tiny_dirs["llama"])


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_bad_file_is_refused(files: Files, case: Callable[[Files], Any]):
    call, error, words = case(files)
    assert_refused(files.model, call, error, words)


@pytest.mark.parametrize("damage", [corrupt, truncated], ids=["corrupt", "truncated"])
def test_a_bad_statistics_entry_is_recomputed_never_trusted(files: Files, damage, caplog):
    """The statistics cache is not an input to refuse: an entry that does not check out is
    computed again, with a warning naming it, and the model is left as it was."""
    from interv.stats import StatsCache, layer_stats
    from tests.reliability.matrix import state

    corpus = files.path(
        "corpus.txt", "\n\n".join(f"Sentence {i} about topic {i % 5}." for i in range(200))
    )
    cache = StatsCache(files.root / "stats")
    run = lambda: layer_stats(files.model, [WEIGHT], corpus, 256, cache=cache, progress=False)  # noqa: E731
    good = run()[WEIGHT]
    (entry,) = cache.root.rglob("*.safetensors")
    damage(entry)
    before = state(files.model)
    again = run()[WEIGHT]
    assert f"Ignoring unreadable statistics file {entry}" in caplog.text
    assert torch.equal(again.mom2, good.mom2) and state(files.model) == before


# ------------------------------------------------------------------------- command lines
def cli_n_negative(f: Files):
    argv = ["edit", "--method", "ft-m", "--dataset", "counterfact", "--n", "-5", "--out", "x"]
    return argv, ["--n", "positive integer", "'-5'"]


def cli_n_zero(f: Files):
    argv = ["trace", "--dataset", "counterfact", "--n", "0", "--out", "x"]
    return argv, ["--n", "positive integer", "'0'"]


def cli_count_not_a_number(f: Files):
    return ["stats", "--n-tokens", "lots"], ["--n-tokens", "'lots'"]


def cli_existing_out_without_overwrite(f: Files):
    requests = f.path("requests.json", json.dumps([{"prompt": "a", "target_new": "b"}]))
    f.path("run/metrics.json", "{}")  # an earlier run's output
    argv = ["edit", "--method", "ft-m", "--requests", str(requests), "--out", str(f.root / "run")]
    argv += ["--model", str(f.llama), "--device", "cpu"]
    return argv, [str(f.root / "run"), "metrics.json", "--overwrite"]


def cli_hparams_malformed_yaml(f: Files):
    hparams = f.path("rome.yaml", "method: rome\nlayers: [4\nv_lr: 0.5\n")
    requests = f.path("requests.json", json.dumps([{"prompt": "a", "target_new": "b"}]))
    argv = ["edit", "--hparams", str(hparams), "--requests", str(requests), "--out", "x"]
    return argv, [str(hparams), "not valid YAML", "line 3", "column"]


def cli_requests_not_utf8(f: Files):
    requests = f.path("requests.json", BAD_UTF8)
    argv = ["edit", "--method", "ft-m", "--requests", str(requests), "--out", "x"]
    return argv, [str(requests), "UTF-8", "line 1", "column 17"]


def cli_revert_a_patch_never_applied(f: Files):
    patch = f.patch()
    argv = ["patch", "revert", str(patch), "--model", str(f.llama), "--out", str(f.root / "o")]
    argv += ["--device", "cpu"]
    return argv, [str(patch), str(f.llama), "does not carry"]


def cli_vector_import_onto_an_existing_file(f: Files):
    vector, out = f.vector(), f.path("exists.safetensors", b"x")
    return ["vectors", "import", str(vector), "--out", str(out)], [str(out), "--overwrite"]


def cli_missing_requests_file(f: Files):
    missing = f.root / "no-such-requests.json"
    argv = ["edit", "--method", "ft-m", "--requests", str(missing), "--out", "x"]
    return argv, [str(missing), "does not exist"]


def cli_steer_run_onto_existing_results(f: Files):
    (f.root / "out").mkdir()
    f.path("out/prompts_results.json", "[]")
    config = {
        "model_name_or_path": str(f.llama),
        "device": "cpu",
        "steer_train_hparam_paths": [{"alg_name": "caa", "layers": [1]}],
        "steer_train_dataset": "train.json",
        "steer_vector_output_dir": str(f.root / "vectors"),
        "generation_data": [str(f.path("prompts.json", json.dumps([{"input": "hi"}])))],
        "generation_output_dir": str(f.root / "out"),
    }
    path = f.path("config.yaml", yaml.safe_dump(config))
    return ["steer", "run", "--config", str(path)], ["prompts_results.json", "--overwrite"]


CLI_CASES = [
    cli_n_negative,
    cli_n_zero,
    cli_count_not_a_number,
    cli_existing_out_without_overwrite,
    cli_hparams_malformed_yaml,
    cli_requests_not_utf8,
    cli_revert_a_patch_never_applied,
    cli_vector_import_onto_an_existing_file,
    cli_missing_requests_file,
    cli_steer_run_onto_existing_results,
]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda case: case.__name__)
def test_bad_command_line_is_refused(files: Files, case, capsys, monkeypatch):
    monkeypatch.chdir(files.root)  # relative outputs ("x") land in the case's folder
    argv, words = case(files)
    before = sorted(p for p in files.root.rglob("*"))
    assert_cli_refused(argv, capsys, words, model=files.model)
    assert sorted(p for p in files.root.rglob("*")) == before  # nothing written


# ----------------------------------------------------------------------- loaders in the source
ROOT = Path(__file__).resolve().parents[2]
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "shelve", "marshal", "joblib", "cloudpickle"}


def unsafe_loads(source: str, where: str) -> list[str]:
    """Calls that can run code from a file: ``torch.load`` without ``weights_only=True``,
    ``yaml.load``/``unsafe_load``/``full_load``, ``numpy.load(allow_pickle=True)``, and any
    import of a pickle-like module."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            modules += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{where}:{node.lineno} imports {m}" for m in modules if m in UNSAFE_MODULES]
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
        true = {k.arg for k in node.keywords if isinstance(k.value, ast.Constant) and k.value.value}
        call = f"{owner}.{node.func.attr}"
        if call == "torch.load" and "weights_only" not in true:
            found.append(f"{where}:{node.lineno} torch.load without weights_only=True")
        elif call in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
            found.append(f"{where}:{node.lineno} {call} (use yaml.safe_load)")
        elif call in ("np.load", "numpy.load") and "allow_pickle" in true:
            found.append(f"{where}:{node.lineno} {call} with allow_pickle=True")
    return found


def test_every_loader_in_the_source_is_safe():
    files = [p for folder in ("interv", "adapters", "sae") for p in (ROOT / folder).rglob("*.py")]
    assert len(files) > 100
    found = [f for p in files for f in unsafe_loads(p.read_text(), str(p.relative_to(ROOT)))]
    assert not found, "\n".join(found)


def test_the_loader_scan_finds_unsafe_loaders():
    bad = (
        "import pickle\nimport torch, yaml\ntorch.load(path)\n"
        "torch.load(path, weights_only=False)\nyaml.load(text)\n"
        "torch.load(path, weights_only=True)\nyaml.safe_load(text)\n"
    )
    assert [f.split(" ", 1)[0] for f in unsafe_loads(bad, "x")] == ["x:1", "x:3", "x:4", "x:5"]
