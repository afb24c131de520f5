"""One model, many callers: every call runs with exactly its own interventions.

Hooks passed to a call (``graph=``, ``hooks=``) and hooks of an open ``model.intervene`` block
belong to the calling thread or asyncio task; the model runs one call at a time (its lock), so
threads never see each other's hooks or the half-applied state of a patch. Blocks end in any
order, and a graph that is already active cannot be passed again (it would apply twice).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import torch

from interv.errors import GraphError
from interv.graph import Add, Graph
from interv.patch import PatchSet, WeightPatch
from tests.conftest import BACKENDS
from tests.reliability.matrix import hook_count

PROMPTS = ["The cat sat on", "Hello there, my"]
HOOK = "blocks.1.hook_resid_post"


def graphs(model, n: int) -> list[Graph | None]:
    """``None`` (unsteered) and ``n - 1`` graphs that push in different directions."""
    g = torch.Generator().manual_seed(0)
    vectors = [3 * torch.randn(model.cfg.d_model, generator=g) for _ in range(n - 1)]
    return [None, *(Graph([Add(HOOK, v)]) for v in vectors)]


def generate(model, graph, *, block: bool = False) -> list[str]:
    if block and graph is not None:
        with model.intervene(graph):
            return model.generate(PROMPTS, max_new_tokens=6)
    return model.generate(PROMPTS, max_new_tokens=6, graph=graph)


@pytest.mark.parametrize("block", [False, True], ids=["graph=", "intervene"])
@pytest.mark.parametrize("n_threads", [2, 8])
def test_threads_get_exactly_their_own_interventions(tiny_models, n_threads, block):
    model = tiny_models("llama")
    steering = graphs(model, n_threads)
    reference = [generate(model, g) for g in steering]
    assert len({tuple(r) for r in reference}) == n_threads  # the graphs do differ
    start = threading.Barrier(n_threads)

    def worker(i: int) -> list[list[str]]:
        start.wait()
        return [generate(model, steering[i], block=block) for _ in range(3)]

    with ThreadPoolExecutor(n_threads) as pool:
        results = list(pool.map(worker, range(n_threads)))
    for i, runs in enumerate(results):
        assert runs == [reference[i]] * 3, f"thread {i} got another thread's intervention"
    assert hook_count(model) == 1  # the run tracker only


def test_asyncio_tasks_see_only_their_own_blocks(tiny_models):
    model = tiny_models("llama")
    steering = graphs(model, 3)
    reference = [generate(model, g) for g in steering]

    async def task(graph):
        if graph is None:
            await asyncio.sleep(0.01)
            return await asyncio.to_thread(generate, model, None)
        with model.intervene(graph):
            await asyncio.sleep(0.01)  # the other tasks run here, inside this block
            return await asyncio.to_thread(generate, model, None)  # sees this task's block

    async def main():
        return await asyncio.gather(*(task(g) for g in steering))

    assert asyncio.run(main()) == reference
    assert model.active_hooks() == []


def test_a_patch_applied_from_another_thread_never_meets_a_half_run(fresh_tiny):
    model = fresh_tiny("llama")
    weight = "blocks.0.mlp.W_out"
    patch = PatchSet([WeightPatch(weight, delta=torch.randn(model.weight_shape(weight)))])
    clean = model.generate(PROMPTS, max_new_tokens=6)
    with patch.applied(model):
        edited = model.generate(PROMPTS, max_new_tokens=6)
    assert clean != edited
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            with patch.applied(model):
                pass

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        seen = [model.generate(PROMPTS, max_new_tokens=6) for _ in range(6)]
    finally:
        stop.set()
        flipper.join()
    assert all(out in (clean, edited) for out in seen)  # never a mixture
    assert not model.patches


@pytest.mark.parametrize("backend", BACKENDS)
def test_blocks_exited_out_of_order_remove_their_own_hooks(tiny_models, backend):
    model = tiny_models("gpt2", backend)
    first, second = graphs(model, 3)[1:]
    with torch.no_grad():
        only_second = model.forward(PROMPTS, graph=second)
        plain = model.forward(PROMPTS)
        outer, inner = ExitStack(), ExitStack()
        outer.enter_context(model.intervene(first))
        inner.enter_context(model.intervene(second))
        outer.close()  # the first block ends while the second is still open
        torch.testing.assert_close(model.forward(PROMPTS), only_second)
        inner.close()
        torch.testing.assert_close(model.forward(PROMPTS), plain)
    assert model.active_hooks() == []


def test_a_graph_active_in_a_block_cannot_be_passed_again(tiny_models):
    model = tiny_models("llama")
    graph = graphs(model, 2)[1]
    with model.intervene(graph):
        before = hook_count(model)
        with pytest.raises(GraphError, match="already active"):
            model.generate(PROMPTS, max_new_tokens=2, graph=graph)
        with pytest.raises(GraphError, match="already active"):
            model.forward(PROMPTS, graph=graph)
        with pytest.raises(GraphError, match="already active"), model.intervene(graph):
            pass
        assert hook_count(model) == before
    assert model.active_hooks() == []
