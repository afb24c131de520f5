"""``interv demo``: the main job, on the default model."""

from __future__ import annotations

import argparse

from .common import add_model_args, positive_int

PROMPTS = ["The capital of France is", "The Eiffel Tower is located in the city of"]

HELP = "load the default model, show hooks, generate"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help=HELP)
    add_model_args(parser)
    parser.add_argument("--max-new-tokens", type=positive_int, default=20)
    parser.add_argument("--no-edit", action="store_true", help="skip the knowledge-editing section")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from ..adapters import names
    from ..loading import load

    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    _section(f"{model}")
    cfg = model.cfg
    print(
        f"d_mlp={cfg.d_mlp} n_heads={cfg.n_heads} n_kv_heads={cfg.n_kv_heads} d_vocab={cfg.d_vocab}"
    )
    _section("Canonical hook points (the same on every backend)")
    hooks = [names.template_of(n) for n in model.hook_names()]
    per_layer = [template for template, layer in hooks if layer == 0]
    outside = [template for template, layer in hooks if layer is None]
    print(f"{len(hooks)} hooks: {', '.join(outside)}, and per layer (x{cfg.n_layers}):")
    for name in per_layer:
        print(f"  {name}")
    _section("Greedy generation (batched, left-padded)")
    for prompt, text in zip(
        PROMPTS, model.generate(PROMPTS, max_new_tokens=args.max_new_tokens), strict=True
    ):
        print(f"  {prompt!r} -> {text.strip()!r}")
    _section("A hook at work: zero-ablating the MLP output of blocks 0-3")
    zero = {names.hook("mlp_out", i): (lambda act, ctx: act * 0) for i in range(4)}
    text = model.generate(PROMPTS[0], max_new_tokens=args.max_new_tokens, hooks=zero)[0]
    print(f"  {PROMPTS[0]!r} -> {text.strip()!r}")
    if not args.no_edit:
        _edit(model, args.max_new_tokens)
    _steer_sentiment(model, args.max_new_tokens)
    return 0


EDIT_PROMPTS = [
    "The Eiffel Tower is located in the city of",  # the edited prompt
    "Where is the Eiffel Tower? It is in",  # a paraphrase
    "The Louvre is located in the city of",  # a neighbour that should not change
]
DEMO_STATS_TOKENS = 20_000  # a small statistics sample keeps the first demo run fast


def _edit(model, max_new_tokens: int) -> None:
    import time

    import torch

    from ..adapters import names
    from ..edit.rome import ROME, ROMEHParams
    from ..requests import EditRequest

    request = EditRequest(prompt=EDIT_PROMPTS[0], subject="Eiffel Tower", target_new="Rome")
    method = ROME(ROMEHParams(mom2_n_samples=DEMO_STATS_TOKENS))
    layer = method.hparams.layers[0]
    weight = names.weight("mlp.W_out", layer)
    _section(f"Knowledge editing: ROME writes 'Eiffel Tower -> Rome' into {weight}")
    start = time.perf_counter()
    method.second_moment(model, [layer])  # cached under $INTERV_HOME/stats after the first run
    seconds = time.perf_counter() - start
    print(f"  key statistics ({DEMO_STATS_TOKENS:,} tokens of the shipped corpus): {seconds:.1f} s")
    print(
        f"  (a small sample for the demo; `interv edit` and the recipes read "
        f"{ROMEHParams().mom2_n_samples:,} tokens, computed once and cached as well)"
    )
    before = model.generate(EDIT_PROMPTS, max_new_tokens=max_new_tokens)
    start = time.perf_counter()
    patch = method.compute(model, [request])
    print(f"  computed a {patch.summary()[0]['kind']} patch in {time.perf_counter() - start:.1f} s")
    original = model.weight(patch.weights()[0]).detach().clone()
    with patch.applied(model):
        after = model.generate(EDIT_PROMPTS, max_new_tokens=max_new_tokens)
    for prompt, old, new in zip(EDIT_PROMPTS, before, after, strict=True):
        print(f"  {prompt!r}\n      before: {old.strip()!r}\n      after:  {new.strip()!r}")
    restored = torch.equal(model.weight(patch.weights()[0]), original)
    print(f"  patch reverted; {patch.weights()[0]} restored bit-exactly: {restored}")


STEER_PROMPTS = 4  # neutral prompts of the bundled DExperts set
STEER_SEED = 0


def _steer_sentiment(model, max_new_tokens: int) -> None:
    """The shipped sentiment vectors at their recommended layer and strength, on a few neutral
    prompts sampled with the same seed, each text with its VADER compound score (-1..1)."""
    import statistics

    from ..data.steering import sentiment_prompts
    from ..eval.classifiers import vader_compound
    from ..steer import library

    _section("Steering sentiment with the shipped vectors (interv vectors list)")
    prompts = sentiment_prompts("neutral", STEER_PROMPTS)
    runs = {"unsteered": None}
    for name in ("sentiment_positive", "sentiment_negative"):
        vector = library.load(name)
        graph = vector.to_graph(scale=vector.recommended_scale, model=model)
        runs[f"{name} (layer {vector.layers[0]}, x{vector.recommended_scale:g})"] = graph
    means = {}
    for label, graph in runs.items():
        texts = model.generate(
            prompts, max_new_tokens=max_new_tokens, do_sample=True, seed=STEER_SEED, graph=graph
        )
        scores = vader_compound(texts)
        means[label] = statistics.fmean(scores)
        print(f"  {label}: mean VADER {means[label]:+.2f}")
        for prompt, text, score in zip(prompts, texts, scores, strict=True):
            print(f"    {score:+.2f}  {prompt.strip()!r} -> {text.strip()!r}")
    base = means.pop("unsteered")
    shifts = ", ".join(f"{label.split()[0]} {mean - base:+.2f}" for label, mean in means.items())
    print(f"  shift of the mean score against unsteered (same prompts, same seed): {shifts}")


def _section(title: str) -> None:
    print(f"\n== {title}")
