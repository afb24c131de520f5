"""The stack of applied edits over long random sequences (hypothesis state machine): applying,
reverting any applied set (which rebases the ones above it), merging for good, stacking
(``a + b``) and folding a steering graph, 1,000 operations in all. After every run the weights
are bit for bit those of replaying the operations still in effect, in order, on a newly loaded
model; reverting what is left, in any order, ends on the loaded bytes when nothing was merged.

The patches stand for the edits interv makes: rank-1 (ROME's shape), dense (FT), rank-4
(LoRA) and a folded Add graph, which creates Llama's absent ``mlp.b_out``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import interv
from interv.errors import PatchError
from interv.graph import Add, Graph
from interv.patch import PatchSet
from tests.interv.test_patch_properties import Spec, build, state_hash

KINDS = {"rome": 1, "ft": None, "lora": 4}
WEIGHTS = ("blocks.0.mlp.W_out", "blocks.1.mlp.W_out", "blocks.1.mlp.W_in")
SPECS = st.builds(
    Spec,
    weight=st.sampled_from(WEIGHTS),
    rank=st.sampled_from(list(KINDS.values())),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.bfloat16]),
    scale=st.sampled_from([0.01, 0.1]),
)
RUNS, STEPS = 10, 100  # 1,000 operations
DEPTH = 6  # at most this many sets applied at once: a revert re-applies the ones above it


def make_set(model, specs: list[Spec]) -> PatchSet:
    return PatchSet([build(model, s) for s in specs], method="drawn")


def folded(model, seed: int) -> PatchSet:
    g = torch.Generator().manual_seed(seed)
    vector = 0.1 * torch.randn(model.cfg.d_model, generator=g)
    return Graph([Add(f"blocks.{seed % 2}.hook_resid_post", vector)]).fold(model)


def replay(folder, live: list[tuple[str, PatchSet]]):
    reference = interv.load(folder, device="cpu")
    for kind, patch_set in live:
        if kind == "merge":
            patch_set.merge_into(reference)
        else:
            patch_set.apply(reference)
    return reference


def machine(folder, steps: list[int]):
    """The state machine on the tiny model in ``folder``; ``steps`` counts the operations."""

    class Stack(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            steps.append(-1)  # invariants run once before the first step too
            self.model = interv.load(folder, device="cpu")
            self.loaded = state_hash(self.model)
            self.live: list[tuple[str, PatchSet]] = []  # operations in effect, in order

        def applied(self) -> list[PatchSet]:
            return [s for kind, s in self.live if kind == "apply"]

        @precondition(lambda self: len(self.applied()) < DEPTH)
        @rule(specs=st.lists(SPECS, min_size=1, max_size=2))
        def apply(self, specs):
            self.live.append(("apply", make_set(self.model, specs).apply(self.model)))

        @precondition(lambda self: len(self.applied()) < DEPTH)
        @rule(first=st.lists(SPECS, min_size=1, max_size=2), second=st.lists(SPECS, max_size=2))
        def stack(self, first, second):
            both = make_set(self.model, first) + make_set(self.model, second)
            self.live.append(("apply", both.apply(self.model)))

        @precondition(lambda self: len(self.applied()) < DEPTH)
        @rule(seed=st.integers(0, 2**16))
        def fold(self, seed):
            self.live.append(("apply", folded(self.model, seed).apply(self.model)))

        @rule(specs=st.lists(SPECS, min_size=1, max_size=2))
        def merge(self, specs):
            patch_set = make_set(self.model, specs)
            patch_set.merge_into(self.model)
            self.live.append(("merge", patch_set))

        @precondition(lambda self: self.applied())
        @rule(data=st.data())
        def revert(self, data):
            victim = data.draw(st.sampled_from(self.applied()), label="victim")
            victim.revert(self.model)
            self.live = [(k, s) for k, s in self.live if s is not victim]

        @precondition(lambda self: any(kind == "merge" for kind, _ in self.live))
        @rule(data=st.data())
        def revert_a_merge(self, data):
            merged = data.draw(st.sampled_from([s for k, s in self.live if k == "merge"]))
            before = (state_hash(self.model), [id(p) for p in self.model.patches])
            with pytest.raises(PatchError, match="merged|not applied"):
                merged.revert(self.model)
            assert (state_hash(self.model), [id(p) for p in self.model.patches]) == before

        @invariant()
        def stack_matches(self):
            steps.append(1)
            on_stack = [id(p) for p in self.model.patches]
            assert [id(s) for s in self.applied()] == [
                i for i in on_stack if i in {id(s) for s in self.applied()}
            ]

        def teardown(self) -> None:
            assert state_hash(self.model) == state_hash(replay(folder, self.live))
            left = self.applied()
            for patch_set in [*left[:1], *reversed(left[1:])]:  # the oldest first: a rebase
                patch_set.revert(self.model)
            merges = [(k, s) for k, s in self.live if k == "merge"]
            assert state_hash(self.model) == state_hash(replay(folder, merges))
            if not merges:
                assert state_hash(self.model) == self.loaded

    return Stack


def test_random_stacks_of_1000_operations_replay_exactly(tiny_dirs):
    steps: list[int] = []
    run = machine(tiny_dirs["llama"], steps)
    run.TestCase.settings = settings(
        max_examples=RUNS,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    run.TestCase().runTest()
    assert sum(steps) >= RUNS * STEPS  # operations run, over every run


def test_a_merge_on_a_patched_weight_survives_reverting_the_patch(fresh_tiny):
    model = fresh_tiny("llama")
    weight = "blocks.1.mlp.W_out"
    rome = make_set(model, [Spec(weight, 1, 0, torch.float32, 0.1)])
    ft = make_set(model, [Spec(weight, None, 1, torch.float32, 0.1)])
    rome.apply(model)
    ft.merge_into(model)  # FT merged for good on the weight ROME changed
    with pytest.raises(PatchError, match="merged into the weights for good"):
        ft.revert(model)
    rome.revert(model)  # the merge is applied again, not discarded
    alone = fresh_tiny("llama")
    ft.merge_into(alone)
    assert state_hash(model) == state_hash(alone)
    assert model.patches.digest() == alone.patches.digest() != ""


def test_a_merge_on_untouched_weights_keeps_no_copy(fresh_tiny):
    model = fresh_tiny("llama")
    rome = make_set(model, [Spec("blocks.1.mlp.W_out", 1, 0, torch.float32, 0.1)])
    ft = make_set(model, [Spec("blocks.0.mlp.W_out", None, 1, torch.float32, 0.1)])
    rome.apply(model)
    ft.merge_into(model)
    assert list(model.patches) == [rome]  # no entry, no copy of the originals
    rome.revert(model)
    alone = fresh_tiny("llama")
    ft.merge_into(alone)
    assert state_hash(model) == state_hash(alone)
