"""``interv edit``: edit facts with a registered method, score every edit, save the patch.

    interv edit --method ft-m --dataset counterfact --n 20 --out runs/ftm
    interv edit --method rome --requests facts.json --hparams rome.yaml --sequential --out runs/r

Writes ``DIR/metrics.json`` (EasyEdit's per-request records), ``DIR/summary.json`` (means
before and after, seconds) and ``DIR/patch.safetensors`` (all edits as one patch; apply it with
``interv patch apply``); SERAC writes ``DIR/serac-memory.safetensors`` instead (its edits, for
``SERACMemory.load(path).apply(model)``). ``--hparams`` takes an interv recipe (``method:
ft-m``) or an EasyEdit YAML file (``alg_name: FT``); the model itself is never changed on disk.
An existing non-empty ``--out`` is refused unless ``--overwrite`` is given (then the files the
earlier run listed in its ``interv-output.json`` are removed first); while the outputs are
written the folder holds an ``INCOMPLETE`` marker, which a finished run replaces by
``interv-output.json``, so a killed run is recognisable.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .common import add_model_args, add_overwrite, index_int, positive_int

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
    parser.add_argument(
        "--n", type=positive_int, default=None, help="records to take from --dataset"
    )
    parser.add_argument("--start", type=index_int, default=0, help="first record of --dataset")
    parser.add_argument(
        "--hparams", type=Path, help="interv recipe or EasyEdit hyperparameter YAML"
    )
    parser.add_argument(
        "--sequential", action="store_true", help="keep each edit for the next ones"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=1, help="requests per edit (batchable methods)"
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
    add_overwrite(parser)
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
    from ..files import check_output_folder, output_folder, write_json
    from ..loading import load

    # every input, and the output folder, is checked before the model loads
    params = load_hparams(args.hparams, args.method)
    method = EDIT_METHODS.get(params.method)(params)
    requests = _requests(args)
    if args.batch_size > 1 and not method.batchable:
        raise ConfigError(f"{method.name} edits one request at a time; drop --batch-size.")
    check_output_folder(args.out, args.overwrite)
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
    edit = result.combined()
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
    with output_folder(args.out, args.overwrite) as out:
        write_json(out / "metrics.json", result.records, indent=1)
        edit.save(out / file_name(edit))
        write_json(out / "summary.json", summary)
    print(json.dumps({k: summary[k] for k in ("method", "n", "pre", "post", "seconds")}, indent=2))
    return 0
