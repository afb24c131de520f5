"""Steered greedy generation: one Add node, a 5-node graph and a folded graph vs plain transformers.

Every setup generates the same number of tokens from the same prompts, round-robin, and the
report gives median seconds and the ratio to plain ``transformers`` measured in the same run.
A raw torch forward hook and a native nnsight intervention doing the same addition as the
one-node graph run alongside; ``same_text`` says whether they produced the same tokens.
"""

from __future__ import annotations

import argparse
import platform
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..adapters import architecture_for, names
from ..devices import resolve_device, resolve_dtype
from ..graph import Add, Graph
from ..loading import load, resolve_folder
from .forward import PROMPTS
from .timing import interleaved_medians, with_ratios

LAYER = 10
FIVE_LAYERS = (6, 8, 10, 12, 14)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=40)
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")


def run(args: argparse.Namespace) -> dict[str, Any]:

    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    folder, name = resolve_folder(args.model)
    bench = _Setups(folder, device, dtype, args.new_tokens)
    results: dict[str, Any] = {
        "model": name,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "reps": args.reps,
        "new_tokens": args.new_tokens,
        "one_node": f"Add at blocks.{bench.layer}.hook_resid_post",
        "five_nodes": [f"Add at {n.hooks[0]}" for n in bench.five],
        "folded": bench.folded.weights(),
    }
    for size in (int(b) for b in args.batches.split(",")):
        setups = bench.setups((PROMPTS * size)[:size])
        texts = {key: fn() for key, fn in setups.items()}  # also the warm-up
        timing: dict[str, Any] = with_ratios(
            interleaved_medians(setups, args.reps, warmup=0), "plain"
        )
        timing["same_text"] = {
            "one_add == raw_torch_hook == nnsight_native": texts["graph_one_add"]
            == texts["raw_torch_hook"]
            == texts["nnsight_native"],
            "five_nodes == folded": texts["graph_five_nodes"] == texts["graph_folded"],
        }
        results[f"generate_batch{size}"] = timing
    return results


class _Setups:
    """The models, graphs and vectors every setup shares; ``setups`` gives the timed calls."""

    def __init__(self, folder: Any, device: torch.device, dtype: torch.dtype, new_tokens: int):
        from transformers import AutoModelForCausalLM, GenerationConfig

        self.plain = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
        self.model = model = load(folder, backend="hf", device=device, dtype=dtype)
        self.native = _nnsight(folder, dtype, device, model.tokenizer)
        layers = [i for i in FIVE_LAYERS if i < model.cfg.n_layers] or [model.cfg.n_layers - 1]
        self.layer = LAYER if LAYER < model.cfg.n_layers else layers[-1]
        g = torch.Generator().manual_seed(0)
        self.vectors = {
            i: 0.5 * torch.randn(model.cfg.d_model, generator=g) for i in {self.layer, *layers}
        }
        self.one = Graph([Add(names.hook("resid_post", self.layer), self.vectors[self.layer])])
        self.five = Graph([Add(names.hook("resid_post", i), self.vectors[i]) for i in layers])
        self.folded = self.five.fold(model)
        # The native module whose output is blocks.{layer}.hook_resid_post (raw hook, nnsight).
        sites = architecture_for(model.cfg.model_type).hooks
        template = sites[names.template_of(names.hook("resid_post", 0))[0]].module
        self.path = template.format(i=self.layer)
        self.config = GenerationConfig(
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=model.tokenizer.pad_token_id,
            eos_token_id=model.tokenizer.eos_token_id,
        )
        self.kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens)

    def setups(self, prompts: list[str]) -> dict[str, Callable[[], list[str]]]:
        model, kw, batch, v = (
            self.model,
            self.kw,
            self.model.to_batch(prompts),
            self.vectors[self.layer],
        )

        def with_fold() -> list[str]:
            with self.folded.applied(model):
                return model.generate(prompts, **kw)

        return {
            "plain": lambda: self._plain(batch),
            "interv_no_graph": lambda: model.generate(prompts, **kw),
            "graph_one_add": lambda: model.generate(prompts, graph=self.one, **kw),
            "graph_five_nodes": lambda: model.generate(prompts, graph=self.five, **kw),
            "graph_folded": with_fold,
            "raw_torch_hook": lambda: self._plain(batch, _adder(v)),
            "nnsight_native": lambda: _nnsight_generate(
                self.native, batch, self.path, v, self.config
            ),
        }

    def _plain(self, batch: Any, hook: Callable[..., Any] | None = None) -> list[str]:
        block = self.plain.get_submodule(self.path)
        handle = None if hook is None else block.register_forward_hook(hook)
        try:
            with torch.no_grad():
                ids = self.plain.generate(
                    input_ids=batch.input_ids,
                    attention_mask=batch.attention_mask,
                    generation_config=self.config,
                )
        finally:
            if handle is not None:
                handle.remove()
        return self.model.tokenizer.batch_decode(
            ids[:, batch.input_ids.shape[1] :], skip_special_tokens=True
        )


def _adder(vector: Tensor) -> Callable[..., Any]:
    """A plain torch forward hook adding ``vector`` to a decoder layer's output."""
    cache: dict[Any, Tensor] = {}

    def hook(module: Any, args: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        key = (hidden.device, hidden.dtype)
        if key not in cache:
            cache[key] = vector.to(device=hidden.device, dtype=hidden.dtype)
        new = hidden + cache[key]
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


def _nnsight(folder: Any, dtype: torch.dtype, device: torch.device, tokenizer: Any) -> Any:
    from nnsight.modeling.transformers import TransformersModel
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    return TransformersModel(hf, tokenizer=tokenizer)


def _nnsight_generate(lm: Any, batch: Any, path: str, vector: Tensor, config: Any) -> list[str]:
    """The idiomatic nnsight steering loop: add the vector to a layer's output at every step."""
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    v = vector.to(device=batch.input_ids.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*was never reached.*")
        with lm.generate(generation_config=config) as tracer:
            with tracer.invoke(inputs):
                for _ in tracer.iter[:]:
                    block = lm.get(path)
                    block.output = block.output + v
            with tracer.invoke():
                ids = tracer.result.save()
    return lm.tokenizer.batch_decode(ids[:, batch.input_ids.shape[1] :], skip_special_tokens=True)
