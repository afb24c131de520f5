"""Causal tracing: restoring clean states undoes the subject corruption, layer by layer."""

from __future__ import annotations

import json

import pytest
import torch

from interv.analysis.causal_trace import CausalTrace, causal_trace
from interv.edit import EditRequest
from interv.edit.rome import ROME, ROMEHParams
from tests.edit.conftest import TINY

REQUESTS = [
    EditRequest(prompt="The cat sat on the", subject="The cat", target_new="x"),
    EditRequest(prompt="Hello world, this is", subject="Hello world", target_new="x"),
]


def test_trace_shapes_and_restoring_everything(edit_tiny):
    model = edit_tiny
    trace = causal_trace(model, REQUESTS, samples=2, noise=20.0)
    n = model.cfg.n_layers
    assert set(trace.effects) == {"resid", "mlp"} and trace.effects["resid"].shape == (2, n)
    assert torch.isfinite(trace.effects["mlp"]).all()
    assert (trace.corrupted != trace.clean).all()


def test_restoring_the_last_state_of_a_subject_only_prompt_restores_the_answer(edit_tiny):
    # the subject ends the prompt, so its last token's final hidden state is all the
    # unembedding reads: restoring it must bring back the clean probability exactly
    request = EditRequest(prompt="The cat", subject="The cat", target_new="x")
    trace = causal_trace(edit_tiny, [request], samples=2, noise=20.0, kinds=("resid",))
    effect = trace.effects["resid"][0]
    assert float(effect[-1]) == pytest.approx(float(trace.clean[0] - trace.corrupted[0]), abs=1e-5)
    assert abs(float(trace.clean[0] - trace.corrupted[0])) > 1e-3


def test_window_and_best_layer():
    effects = {
        "mlp": torch.tensor([[0.0, 0.1, 0.5, 0.4, 0.0, 0.0], [0.0, 0.2, 0.3, 0.6, 0.1, 0.0]])
    }
    trace = CausalTrace(["a", "b"], ["x", "y"], effects, torch.ones(2), torch.zeros(2))
    assert trace.best_layer("mlp") == 3
    assert trace.best_window("mlp", 2) == [2, 3] and trace.best_window("mlp", 3) == [1, 2, 3]
    assert trace.best_window("mlp", 10) == list(range(6))
    assert trace.to_dict()["effects"]["mlp"][1][3] == pytest.approx(0.6)


def test_plot_writes_a_png(edit_tiny, tmp_path):
    trace = causal_trace(edit_tiny, REQUESTS[:1], samples=1, kinds=("mlp",))
    path = trace.plot(tmp_path / "deep" / "trace.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments(edit_tiny):
    with pytest.raises(ValueError, match="kinds must be"):
        causal_trace(edit_tiny, REQUESTS, kinds=("attn",))
    with pytest.raises(ValueError, match="at least one prompt"):
        causal_trace(edit_tiny, [])


def test_rome_layers_auto_uses_the_trace(edit_tiny, stats_cache, monkeypatch):
    import interv.analysis.causal_trace as ct
    import interv.edit.locate as locate

    seen = []
    real = ct.causal_trace

    def spy(model, requests, **kwargs):
        seen.append(len(requests))
        return real(model, requests, samples=1, **kwargs)

    monkeypatch.setattr(locate, "causal_trace", spy)  # what layers: auto calls
    method = ROME(
        ROMEHParams(**{**TINY, "layers": "auto", "trace_prompts": 1, "v_num_grad_steps": 2}),
        stats_cache=stats_cache,
    )
    patch = method.compute(edit_tiny, REQUESTS[:1])
    method.compute(edit_tiny, REQUESTS[1:])
    assert seen == [1]  # traced once per model
    layer = method.resolve_layers(edit_tiny, REQUESTS, 1)[0]
    assert patch.weights() == [f"blocks.{layer}.mlp.W_out"]


def test_trace_cli_writes_json_and_png(edit_tiny_dir, tmp_path, capsys):
    from interv.cli.main import main

    records = [
        {"prompt": "zq Rome mat", "subject": "zq", "target_new": "Paris", "ground_truth": "Rome"}
    ]
    (tmp_path / "requests.json").write_text(json.dumps(records))
    out = tmp_path / "trace"
    code = main(
        [
            "trace",
            "--requests",
            str(tmp_path / "requests.json"),
            "--kinds",
            "mlp",
            "--samples",
            "1",
            "--model",
            str(edit_tiny_dir),
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    saved = json.loads((out / "trace.json").read_text())
    assert len(saved["effects"]["mlp"][0]) == 4  # one effect per layer of the tiny model
    assert (out / "trace.png").read_bytes()[:4] == b"\x89PNG"
    assert "mlp: strongest indirect effect at layer" in capsys.readouterr().out
