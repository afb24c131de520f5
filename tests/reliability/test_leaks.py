"""Leaks: 10,000 intervene/forward/generate cycles on a tiny model leave no hook behind and
flat memory (resident set growth under 5 % after a warm-up).

The cycles run in a child process, which measures only its own memory and runs without the
test suite's runtime type checks (they would triple the time of each cycle).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CYCLES, WARMUP, GENERATE_EVERY = 10_000, 1_000, 25

CHILD = """
import gc, json, os, sys
import torch
import interv
from interv.graph import Add, Graph

def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def hooks(model):
    torch_hooks = sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.hf_model.modules()
    )
    return torch_hooks + len(model.active_hooks())

cycles, warmup, every = (int(a) for a in sys.argv[2:5])
torch.set_num_threads(1)
model = interv.load(sys.argv[1], device="cpu")
before = hooks(model)
g = torch.Generator().manual_seed(0)
graph = Graph([Add("blocks.1.hook_resid_post", torch.randn(model.cfg.d_model, generator=g))])
ids = torch.tensor([[5, 6, 7, 8]])
recorded = {"blocks.0.hook_resid_post": lambda act, ctx: None}
with torch.no_grad():
    for i in range(cycles):
        if i == warmup:
            gc.collect()
            start = resident()
        with model.intervene(graph):
            if i % every == 0:
                model.generate("Hi", max_new_tokens=2, hooks=recorded)
            else:
                model.forward(ids, hooks=recorded)
gc.collect()
print(json.dumps({"before": before, "after": hooks(model), "start": start, "end": resident()}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
def test_ten_thousand_cycles_leave_no_hook_and_flat_memory(tiny_dirs):
    args = [str(tiny_dirs["llama"]), str(CYCLES), str(WARMUP), str(GENERATE_EVERY)]
    run = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["after"] == seen["before"] == 1  # the run tracker on the root only
    growth = seen["end"] / seen["start"] - 1
    assert growth < 0.05, f"resident memory grew {growth:.1%} over {CYCLES - WARMUP} cycles"
