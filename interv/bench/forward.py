"""Forward and greedy-generation time of each backend relative to plain ``transformers``."""

from __future__ import annotations

import argparse
import platform
from typing import Any

import torch

from ..adapters.backends import BACKENDS
from ..devices import resolve_device
from ..loading import load, resolve_folder
from .timing import interleaved_medians, with_ratios

PROMPTS = [
    "The capital of France is",
    "In 1969 the first humans walked on the surface of the",
    "Photosynthesis converts light energy into",
    "The quick brown fox jumps over",
    "A good way to learn a new language is to",
    "Water boils at a temperature of",
    "The largest planet in our solar system is",
    "Shakespeare wrote many plays, including",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=40)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(args.device)
    folder, name = resolve_folder(args.model)
    plain = AutoModelForCausalLM.from_pretrained(folder).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    models = {b: load(folder, backend=b, device=device) for b in BACKENDS}
    batch = models["hf"].to_batch(PROMPTS)
    single = models["hf"].to_batch(PROMPTS[:1])
    gen = dict(
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )

    def plain_forward() -> object:
        with torch.no_grad():
            return plain(**batch.model_kwargs()).logits

    def plain_generate(b: Any) -> object:
        return plain.generate(input_ids=b.input_ids, attention_mask=b.attention_mask, **gen)

    forward = {"plain": plain_forward}
    forward |= {b: (lambda m=m: _no_grad(m.forward, batch)) for b, m in models.items()}
    results: dict[str, Any] = {
        "model": name,
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "reps": args.reps,
        "forward_batch8": with_ratios(interleaved_medians(forward, args.reps), "plain"),
    }
    for label, b in (("generate_batch1", single), ("generate_batch8", batch)):
        setups = {"plain": lambda b=b: plain_generate(b)}
        setups |= {
            k: (lambda m=m, b=b: m.backend.generate(b, {}, _config(gen))) for k, m in models.items()
        }
        results[label] = with_ratios(interleaved_medians(setups, args.reps), "plain")
    results["new_tokens"] = args.new_tokens
    return results


def _config(gen: dict[str, Any]) -> dict[str, Any]:
    from transformers import GenerationConfig

    return {"generation_config": GenerationConfig(**gen)}


def _no_grad(fn: Any, batch: Any) -> object:
    with torch.no_grad():
        return fn(batch)
