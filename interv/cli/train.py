"""``interv train``: train a learned editor for a model and save its archive.

    interv train mend --dataset zsre --out runs/mend
    interv train mend --dataset zsre --out runs/mend --set max_iters=2000 --set rank=64
    interv train serac --dataset zsre --out runs/serac

Training reads the shared benchmark files (``INTERV_DATA``). The first ``--held-out`` records of
the dataset are never used for training: the bench scores on them. Validation uses the
``--val`` records after them, and the rest is for training. ``DIR/mend.safetensors`` (or
``DIR/serac.safetensors``) is the archive that ``archive:`` in the editor's hyperparameters
points to. For MEND, ``DIR/checkpoint.pt`` lets a stopped run continue (``--no-resume`` starts
again), and ``DIR/history.json`` is the validation curve; SERAC trains in minutes and writes
its validation scores into the archive and ``DIR/serac.json``. A folder holding a stopped MEND
run's checkpoint continues it; any other non-empty ``--out`` needs ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .common import add_model_args, add_overwrite, index_int, positive_int

HELP = "train a learned editor (MEND, SERAC) and save its archive"
CHECKPOINT = "checkpoint.pt"  # where MEND's training keeps its resumable state
DATASETS = ("zsre", "counterfact")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help=HELP)
    parser.add_argument("editor", choices=("mend", "serac"), help="the editor to train")
    parser.add_argument("--dataset", choices=DATASETS, default="zsre", help="edit records")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--hparams", type=Path, help="the editor's recipe or EasyEdit YAML")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a key"
    )
    parser.add_argument(
        "--held-out", type=index_int, default=100, help="records kept for the bench"
    )
    parser.add_argument(
        "--val", type=positive_int, default=50, help="validation records after them"
    )
    parser.add_argument("--no-resume", action="store_true", help="ignore DIR/checkpoint.pt")
    add_overwrite(parser)
    add_model_args(parser, backend=False)
    parser.set_defaults(run=_run)


def overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, each value read as YAML (``rank=64`` is an int)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}.")
        out[key.strip()] = yaml.safe_load(value)
    return out


def split(dataset: str, held_out: int, val: int) -> tuple[list, list, dict[str, Any]]:
    """``(train, val, description)``: records after the held-out and validation ones. For ZsRE
    the KnowEdit ZsRE records whose question is not among the held-out ones are added."""
    from ..data import editing as data

    if held_out < 0 or val < 1:
        raise ConfigError("--held-out must be >= 0 and --val at least 1.")
    loader = {"zsre": data.zsre, "counterfact": data.counterfact}[dataset]
    records = loader()
    if len(records) <= held_out + val:
        raise ConfigError(
            f"{dataset} has {len(records)} records; --held-out {held_out} and --val {val} leave "
            "none to train on."
        )
    kept = {r.prompt for r in records[:held_out]}
    val_set = records[held_out : held_out + val]
    seen = kept | {r.prompt for r in val_set}
    train_set = records[held_out + val :]
    extra = []
    if dataset == "zsre":
        extra = [r for r in data.knowedit("zsre") if r.prompt not in seen]
    described = {
        "dataset": dataset,
        "held_out": f"records 0..{held_out - 1} (never trained on)",
        "val": f"records {held_out}..{held_out + val - 1}",
        "train": f"records {held_out + val}.. ({len(train_set)})"
        + (f" + {len(extra)} KnowEdit ZsRE records not among the others" if extra else ""),
    }
    return train_set + extra, val_set, described


def _run(args: argparse.Namespace) -> int:
    from ..files import check_output_folder, output_folder
    from ..loading import load
    from .edit import load_hparams

    params = load_hparams(args.hparams, args.editor)
    if args.set:  # through from_dict: values are checked and converted ("5e-4" is a float)
        params = type(params).from_dict({**params.to_dict(), **overrides(args.set)})
    train_set, val_set, described = split(args.dataset, args.held_out, args.val)
    # a stopped MEND run continues in its folder; anything else there needs --overwrite
    resume = args.editor == "mend" and not args.no_resume and (args.out / CHECKPOINT).is_file()
    check_output_folder(args.out, args.overwrite or resume)
    model = load(args.model, device=args.device, dtype=args.dtype)
    if args.editor == "serac":
        with output_folder(args.out, args.overwrite) as out:
            return _serac(model, train_set, val_set, params, out, described)
    from ..edit.mend_training import train

    with output_folder(args.out, args.overwrite, resume=resume) as out:
        result = train(
            model, train_set, val_set, params, out, data_meta=described, resume=not args.no_resume
        )
    print(json.dumps({"archive": str(result.path), "last": result.history[-1]}, indent=2))
    return 0


def _serac(
    model: Any, train_set: list, val_set: list, params: Any, out: Path, described: dict
) -> int:
    from ..edit.serac_training import train
    from ..files import write_json

    path, meta = train(model, train_set, val_set, params, out, data_meta=described)
    write_json(out / "serac.json", meta, default=str)
    print(json.dumps({"archive": str(path), **meta["trained"]["scope"]}, indent=2))
    return 0
