"""``interv edit``: edit facts with a registered method, score every edit, save the patch.

    interv edit --method ft-m --dataset counterfact --n 20 --out runs/ftm
    interv edit --method rome --requests facts.json --hparams rome.yaml --sequential --out runs/r

Writes ``DIR/metrics.json`` (EasyEdit's per-request records), ``DIR/summary.json`` (means
before and after, seconds) and ``DIR/patch.safetensors`` (all edits as one patch; apply it with
``interv patch apply``); SERAC writes ``DIR/serac-memory.safetensors`` instead (its edits, for
``SERACMemory.load(path).apply(model)``). ``--hparams`` takes an interv recipe (``method:
ft-m``) or an EasyEdit YAML file (``alg_name: FT``); the model itself is never changed on disk.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .common import add_model_args

DATASETS = (
    "counterfact",
    "zsre",
    "mquake",
    "knowedit-zsre",
    "knowedit-wiki_recent",
    "knowedit-wiki_counterfact",
    "knowedit-wikibio",
)

HELP = "edit facts, score them, save the patch"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("edit", help=HELP)
    parser.add_argument(
        "--method", help="edit method id (e.g. ft-m, rome); default: the one in --hparams"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--requests", type=Path, help="JSON list of EasyEdit-style edit records")
    source.add_argument(
        "--dataset", choices=DATASETS, help="a shared benchmark instead of --requests"
    )
    parser.add_argument("--n", type=int, default=None, help="records to take from --dataset")
    parser.add_argument("--start", type=int, default=0, help="first record of --dataset")
    parser.add_argument(
        "--hparams", type=Path, help="interv recipe or EasyEdit hyperparameter YAML"
    )
    parser.add_argument(
        "--sequential", action="store_true", help="keep each edit for the next ones"
    )
    parser.add_argument(
        "--batch-size", type=int, default=1, help="requests per edit (batchable methods)"
    )
    parser.add_argument(
        "--generation",
        action="store_true",
        help="score by open generation instead of teacher-forced token accuracy",
    )
    parser.add_argument(
        "--fluency", action="store_true", help="also score fluency (n-gram entropy)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_model_args(parser)
    parser.set_defaults(run=_run)


def load_hparams(path: Path | None, method: str | None) -> Any:
    """Method hyperparameters from a recipe (strict) or an EasyEdit file (ignored keys warn)."""
    from ..edit.base import EDIT_METHODS
    from ..files import read_yaml

    if path is None:
        if method is None:
            raise ConfigError("Name the method with --method (or give --hparams with `method:`).")
        return EDIT_METHODS.get(method).hparams_class()
    config = read_yaml(path, "hyperparameter YAML file (--hparams)")
    if "alg_name" in config:
        from ..easyedit import HyperParams

        params = HyperParams.from_dict(config, source=str(path)).params
    else:
        declared = config.get("method") or method
        if declared is None:
            raise ConfigError(f"{path} names no method: add `method: <id>` or pass --method.")
        params = EDIT_METHODS.get(str(declared)).hparams_class.from_dict(config)
    if method is not None and EDIT_METHODS.get(method).hparams_class is not type(params):
        raise ConfigError(
            f"{path} holds hyperparameters for method {params.method!r}, not {method!r}; "
            f"pass --method {params.method} or a {method} hyperparameter file."
        )
    return params


def _requests(args: argparse.Namespace) -> list[Any]:
    from ..data import editing as data

    if args.requests is not None:
        return data.load_requests(args.requests)
    name = args.dataset
    if name.startswith("knowedit-"):
        return data.knowedit(name.removeprefix("knowedit-"), args.n, args.start)
    return {"counterfact": data.counterfact, "zsre": data.zsre, "mquake": data.mquake}[name](
        args.n, args.start
    )


def _run(args: argparse.Namespace) -> int:
    from ..edit.base import EDIT_METHODS
    from ..edit.runner import file_name, run_edits
    from ..eval.editing import evaluate, evaluate_generation, summarize
    from ..loading import load

    params = load_hparams(
        args.hparams, args.method
    )  # every input is checked before the model loads
    method = EDIT_METHODS.get(params.method)(params)
    requests = _requests(args)
    if args.batch_size > 1 and not method.batchable:
        raise ConfigError(f"{method.name} edits one request at a time; drop --batch-size.")
    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    scorer = (
        evaluate_generation if args.generation else partial(evaluate, test_generation=args.fluency)
    )
    result = run_edits(
        model,
        method,
        requests,
        scorer,
        sequential=args.sequential,
        batch_size=args.batch_size,
        progress=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(result.records, indent=1))
    edit = result.combined()
    edit.save(args.out / file_name(edit))
    summary = {
        "method": method.name,
        "n": len(requests),
        "model": model.cfg.name,
        "sequential": args.sequential,
        "batch_size": args.batch_size,
        "protocol": "generation" if args.generation else "teacher_forced",
        "pre": summarize([r["pre"] for r in result.records]),
        "post": summarize([r["post"] for r in result.records]),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "hparams": params.to_dict(),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("method", "n", "pre", "post", "seconds")}, indent=2))
    return 0
