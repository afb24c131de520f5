"""``interv eval --input FILE --out DIR``: score an apply output (JSON + markdown table)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate steered generations (the JSON `interv steer apply` writes)"


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..eval.report import ALL_METRICS, DEFAULT_METRICS

    parser = subparsers.add_parser("eval", help=HELP)
    parser.add_argument(
        "--input", type=Path, required=True, help="<dataset>_results.json from the apply step"
    )
    parser.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help=f"comma-separated, from {', '.join(ALL_METRICS)}",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for <name>_eval.json and .md"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="the unsteered model for perplexity (default: the default model)",
    )
    parser.add_argument("--device", default="auto")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from ..eval.report import evaluate_file, markdown_table, write_report

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    reference = None
    if "perplexity" in metrics:
        from ..loading import load

        reference = load(args.model, device=args.device)
    report = evaluate_file(args.input, metrics, reference)
    name = args.input.stem.removesuffix("_results")
    json_path, md_path = write_report(report, args.out, name)
    print(markdown_table(report))
    print(f"wrote {json_path} and {md_path}")
    return 0
