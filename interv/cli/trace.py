"""``interv trace``: causal tracing of edit prompts, per layer, with a heatmap.

    interv trace --dataset counterfact --n 8 --out runs/trace

writes ``trace.json`` (per-prompt and mean indirect effects per layer and kind) and
``trace.png``, and prints the layer where the MLP effect peaks: the layer ROME edits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_model_args, add_overwrite, index_int, positive_int
from .edit import DATASETS, _requests

HELP = "causal tracing: which layers recall the subject's facts"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("trace", help=HELP)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--requests", type=Path, help="JSON list of EasyEdit-style records (prompt, subject)"
    )
    source.add_argument(
        "--dataset", choices=DATASETS, help="a shared benchmark instead of --requests"
    )
    parser.add_argument("--n", type=positive_int, default=8, help="records to take from --dataset")
    parser.add_argument("--start", type=index_int, default=0, help="first record of --dataset")
    parser.add_argument("--kinds", default="resid,mlp", help="restored sites: resid, mlp or both")
    parser.add_argument("--samples", type=positive_int, default=3, help="noise samples per prompt")
    parser.add_argument("--noise", type=float, default=3.0, help="noise scale (x embedding std)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_overwrite(parser)
    add_model_args(parser)
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from ..analysis.causal_trace import causal_trace
    from ..files import check_output_folder, output_folder, write_json
    from ..loading import load

    requests = _requests(args)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    check_output_folder(args.out, args.overwrite)
    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    trace = causal_trace(model, requests, kinds=kinds, samples=args.samples, noise=args.noise)
    with output_folder(args.out, args.overwrite) as out:
        write_json(out / "trace.json", trace.to_dict(), indent=1)
        png = trace.plot(out / "trace.png")
    for kind in kinds:
        print(f"{kind}: strongest indirect effect at layer {trace.best_layer(kind)}")
    print(f"wrote {args.out / 'trace.json'} and {png}")
    return 0
