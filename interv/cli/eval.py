"""``interv eval --input FILE --out DIR``: score an apply output (JSON + markdown table).

EasyEdit2's ``evaluate.py`` flags work too: ``--generation_dataset_path FILE --eval_methods
ppl distinctness fluency sentiment gsm toxigen realtoxicityprompts [--model_name_or_path M]``
(``EASYEDIT2_METHODS`` maps each to interv's metric; ``--out`` defaults to the file's folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError

# EasyEdit2's --eval_methods -> interv's metric (None: not available in interv yet)
EASYEDIT2_METHODS = {
    "ppl": "perplexity",
    "distinctness": "distinct",
    "fluency": "fluency",
    "sentiment": "sentiment",
    "gsm": "exact_answer",
    "toxigen": "toxicity",
    "realtoxicityprompts": "toxicity",
    "safeedit": None,
    "llm": None,
}

HELP = "evaluate steered generations (the JSON `interv steer apply` writes)"


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..eval.report import ALL_METRICS, DEFAULT_METRICS

    parser = subparsers.add_parser("eval", help=HELP)
    parser.add_argument(
        "--input",
        "--generation_dataset_path",
        dest="input",
        type=Path,
        required=True,
        help="<dataset>_results.json from the apply step",
    )
    parser.add_argument(
        "--metrics",
        default=None,
        help=f"comma-separated, from {', '.join(ALL_METRICS)} (default: "
        f"{','.join(DEFAULT_METRICS)})",
    )
    parser.add_argument(
        "--eval_methods",
        nargs="+",
        default=None,
        metavar="METHOD",
        help=f"EasyEdit2's names: {', '.join(EASYEDIT2_METHODS)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for <name>_eval.json and .md (default: the input's folder)",
    )
    parser.add_argument(
        "--model",
        "--model_name_or_path",
        dest="model",
        default=None,
        help="the unsteered model for perplexity (default: the default model)",
    )
    parser.add_argument("--device", default="auto")
    parser.set_defaults(run=_run)


def metrics_of(args: argparse.Namespace) -> list[str]:
    """interv's metric names from ``--metrics`` or EasyEdit2's ``--eval_methods``."""
    from ..eval.report import DEFAULT_METRICS

    if args.metrics is not None and args.eval_methods is not None:
        raise ConfigError("Give --metrics or --eval_methods, not both.")
    if args.eval_methods is None:
        given = args.metrics or ",".join(DEFAULT_METRICS)
        return [m.strip() for m in given.split(",") if m.strip()]
    unknown = [m for m in args.eval_methods if m not in EASYEDIT2_METHODS]
    if unknown:
        raise ConfigError(
            f"Unknown --eval_methods {', '.join(unknown)}; EasyEdit2's are "
            f"{', '.join(EASYEDIT2_METHODS)}."
        )
    missing = [m for m in args.eval_methods if EASYEDIT2_METHODS[m] is None]
    if missing:
        raise ConfigError(
            f"--eval_methods {', '.join(missing)} is not available in interv yet (the LLM judge "
            "and SafeEdit's defence success); drop it, or score those with EasyEdit2."
        )
    return list(dict.fromkeys(str(EASYEDIT2_METHODS[m]) for m in args.eval_methods))


def _run(args: argparse.Namespace) -> int:
    from ..eval.report import evaluate_file, markdown_table, write_report

    metrics = metrics_of(args)
    reference = None
    if "perplexity" in metrics:
        from ..loading import load

        reference = load(args.model, device=args.device)
    report = evaluate_file(args.input, metrics, reference)
    name = args.input.stem.removesuffix("_results")
    json_path, md_path = write_report(report, args.out or args.input.parent, name)
    print(markdown_table(report))
    print(f"wrote {json_path} and {md_path}")
    return 0
