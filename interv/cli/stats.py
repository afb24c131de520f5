"""``interv stats``: compute (or show cached) layer statistics for editing methods."""

from __future__ import annotations

import argparse
import time

from ..errors import ConfigError
from .common import add_model_args, positive_int

HELP = "second moments of weight inputs (cached under $INTERV_HOME/stats)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stats", help=HELP)
    add_model_args(parser)
    parser.add_argument(
        "--layers", default="4", help="layers, e.g. 4 or 3-7 or 3,5 (W_out of each)"
    )
    parser.add_argument("--weight", default="mlp.W_out", help="weight within each block")
    parser.add_argument(
        "--corpus", default="default", help="'default' or a .txt / .jsonl / .json file"
    )
    parser.add_argument("--text-field", default=None, help="JSON field holding the text")
    parser.add_argument("--n-tokens", type=positive_int, default=100_000)
    parser.add_argument("--seq-len", type=positive_int, default=128)
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.set_defaults(run=_run)


def parse_layers(text: str) -> list[int]:
    layers: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = part.split("-")
                layers += list(range(int(lo), int(hi) + 1))
            elif part.strip():
                layers.append(int(part))
    except ValueError:
        layers = []  # reported below, with the forms that work
    if not layers:
        raise ConfigError(f"--layers {text!r} names no layer; use e.g. 4, 3-7 or 3,5.")
    return layers


def _run(args: argparse.Namespace) -> int:
    from ..adapters import names
    from ..data.corpus import load_corpus
    from ..loading import load
    from ..stats import StatsCache, layer_stats

    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    corpus = load_corpus(args.corpus, args.text_field)
    weights = [names.weight(args.weight, layer) for layer in parse_layers(args.layers)]
    start = time.perf_counter()
    stats = layer_stats(
        model, weights, corpus, args.n_tokens, seq_len=args.seq_len, batch_size=args.batch_size
    )
    seconds = time.perf_counter() - start
    cache = StatsCache()
    for weight, item in stats.items():
        path = cache.path(model, weight, corpus.digest(), args.n_tokens, args.seq_len, "float32")
        print(f"{weight}: {item.count} tokens of {corpus.name!r} -> {path}")
    computed = any(item.seconds for item in stats.values())
    rate = f", {args.n_tokens / seconds:.0f} tokens/s" if computed else " (cached)"
    print(f"{len(weights)} weight(s) in {seconds:.1f} s{rate}")
    return 0
