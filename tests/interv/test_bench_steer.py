"""``interv bench steer`` runs end to end (on a tiny model) and reports every setup."""

from __future__ import annotations

import json

from interv.cli.main import main

SETUPS = {
    "plain",
    "interv_no_graph",
    "graph_one_add",
    "graph_five_nodes",
    "graph_folded",
    "raw_torch_hook",
    "nnsight_native",
}


def test_bench_steer_reports_ratios_and_agreement(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "steer.json"
    args = [
        "bench",
        "steer",
        "--model",
        str(tiny_dirs["llama"]),
        "--device",
        "cpu",
        "--json",
        str(out),
        "--reps",
        "1",
        "--new-tokens",
        "3",
        "--batches",
        "1,2",
    ]
    assert main(args) == 0
    report = json.loads(out.read_text())
    for key in ("generate_batch1", "generate_batch2"):
        timing = report[key]
        assert SETUPS <= set(timing)
        assert timing["plain"]["ratio"] == 1.0
        assert all(timing[s]["seconds"] > 0 for s in SETUPS)
        assert all(timing["same_text"].values()), timing["same_text"]
    assert report["folded"] == ["blocks.1.mlp.b_out"]
