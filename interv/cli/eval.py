"""``interv eval --input FILE --out DIR``: score an apply output (JSON + markdown table).

EasyEdit2's ``evaluate.py`` flags work too: ``--generation_dataset_path FILE --eval_methods
ppl distinctness fluency sentiment gsm toxigen realtoxicityprompts llm safeedit
[--model_name_or_path M]`` (``EASYEDIT2_METHODS`` maps each to interv's metric; ``--out``
defaults to the file's folder). ``llm`` is AxBench's judge (concept, instruction and fluency
scores, 0..2, and their harmonic mean): it needs ``--concept C`` and takes ``--judge SPEC``
(``local``, the default: offline embeddings and the reference model; ``model:NAME``, a local
chat model; ``openai:MODEL``, an OpenAI-compatible endpoint). ``safeedit`` is SafeEdit's
defence success on your own generations of its prompts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from .common import add_overwrite

# EasyEdit2's --eval_methods -> interv's metric
EASYEDIT2_METHODS = {
    "ppl": "perplexity",
    "distinctness": "distinct",
    "fluency": "fluency",
    "sentiment": "sentiment",
    "gsm": "exact_answer",
    "toxigen": "toxicity",
    "realtoxicityprompts": "toxicity",
    "safeedit": "defence_success",
    "llm": "llm",
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
        help=f"EasyEdit2's names: {', '.join(EASYEDIT2_METHODS)} (llm: the judge's concept, "
        "instruction and fluency scores, needs --concept; safeedit: SafeEdit's defence success)",
    )
    parser.add_argument(
        "--concept",
        default=None,
        help="the concept the steering aims at, for the llm metric (AxBench's concept text)",
    )
    parser.add_argument(
        "--judge",
        default=None,
        metavar="SPEC",
        help="the llm metric's judge: local (default; embeddings and the unsteered model), "
        "model:NAME (a local chat model) or openai:MODEL (OPENAI_API_KEY, "
        "INTERV_JUDGE_BASE_URL)",
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
        help="the unsteered model for perplexity and the local judge (default: the default model)",
    )
    parser.add_argument("--device", default="auto")
    add_overwrite(parser, "<name>_eval.json / .md report")
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
    return list(dict.fromkeys(EASYEDIT2_METHODS[m] for m in args.eval_methods))


def _run(args: argparse.Namespace) -> int:
    from ..eval.report import evaluate_file, markdown_table, report_paths, write_report
    from ..files import check_output_file

    metrics = metrics_of(args)
    name = args.input.stem.removesuffix("_results")
    folder = args.out or args.input.parent
    for path in report_paths(folder, name):  # before any model loads or text is scored
        check_output_file(path, args.overwrite)
    judging = "llm" in metrics
    if judging and not args.concept:
        raise ConfigError(
            "--eval_methods llm (the llm metric) judges concept relevance: give the concept "
            "with --concept, e.g. --concept 'references to rental services'."
        )
    reference, judge = None, None
    if "perplexity" in metrics or (judging and args.judge in (None, "local")):
        from ..loading import load

        reference = load(args.model, device=args.device)
    if judging:
        from ..eval.judge import judge_from
        from ..loading import load

        judge = judge_from(args.judge, reference, loader=load)
    report = evaluate_file(args.input, metrics, reference, judge=judge, concept=args.concept)
    json_path, md_path = write_report(report, folder, name)
    print(markdown_table(report))
    print(f"wrote {json_path} and {md_path}")
    return 0
