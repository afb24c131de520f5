"""``interv steer generate|apply|run|calibrate|methods``: EasyEdit2's steering workflow.

Every subcommand takes an EasyEdit2-style top-level config (``--config FILE``, or hydra's
``--config-path DIR --config-name NAME`` as EasyEdit2's scripts take it) and ``--set key=value``
overrides; hydra-style ``key=value`` arguments after the options are overrides too (see
``interv.steer.workflow.config``).

    interv steer run --config hparams/Steer/config.yaml --set device=cpu
    interv steer run --config-path hparams/Steer --config-name config device=cpu
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError
from .common import add_overwrite

HELP = "generate, apply and evaluate steering (EasyEdit2 configs)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("steer", help=HELP)
    actions = parser.add_subparsers(dest="action", required=True)
    for name, helptext, fn in (
        ("generate", "generate steering vectors from a config", _generate),
        ("apply", "apply saved vectors and generate from the config's datasets", _apply),
        ("run", "generate, apply, generate text and evaluate, in one go", _run),
        (
            "calibrate",
            "sweep strength x layer for the config's vector and pick the strength",
            _calibrate,
        ),
    ):
        sub = actions.add_parser(name, help=helptext)
        sub.add_argument("--config", type=Path, help="top-level YAML config")
        sub.add_argument("--config-path", type=Path, help="hydra style: the config's folder")
        sub.add_argument("--config-name", help="hydra style: the config's name (.yaml optional)")
        sub.add_argument(
            "hydra_overrides", nargs="*", metavar="KEY=VALUE", help="hydra-style overrides"
        )
        sub.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key (repeatable; dotted for nested keys)",
        )
        add_overwrite(sub, "vector, results or report file (the config's overwrite: true)")
        sub.set_defaults(run=fn)
    calibrate = actions.choices["calibrate"]
    calibrate.add_argument("--plot", type=Path, default=None, help="where to write the sweep PNG")
    calibrate.add_argument(
        "--write",
        action="store_true",
        help="save the vector at the chosen layer with the chosen recommended scale",
    )
    methods = actions.add_parser("methods", help="list the registered steering methods")
    methods.set_defaults(run=_methods)


def config_of(args: argparse.Namespace) -> Path:
    """The config file from ``--config`` or hydra's ``--config-path``/``--config-name``; the
    hydra-style overrides join ``--set``'s."""
    args.overrides = [*args.overrides, *args.hydra_overrides]
    if args.overwrite:
        args.overrides.append("overwrite=true")
    hydra = args.config_path is not None or args.config_name is not None
    if args.config is not None and hydra:
        raise ConfigError("Give --config FILE or --config-path/--config-name, not both.")
    if args.config is not None:
        return args.config
    if args.config_name is None:
        raise ConfigError(
            "Name the config: --config FILE, or --config-path DIR --config-name NAME (hydra)."
        )
    path = (args.config_path or Path(".")) / args.config_name
    return path if path.suffix in (".yaml", ".yml") else path.with_name(path.name + ".yaml")


def _generate(args: argparse.Namespace) -> int:
    from ..steer.workflow import BaseVectorGenerator

    vectors = BaseVectorGenerator(config_of(args), args.overrides).generate_vectors()
    for dataset, methods in vectors.items():
        for alg, artefact in methods.items():
            print(f"{dataset}\t{alg}\t{_describe(artefact)}")
    return 0


def _apply(args: argparse.Namespace) -> int:
    from ..steer.workflow import BaseVectorApplier

    applier = BaseVectorApplier(config_of(args), args.overrides)
    applier.apply_vectors()
    results = applier.generate()
    _show(results)
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..eval.report import markdown_table
    from ..steer.workflow import run

    out = run(config_of(args), args.overrides)
    _show(out["results"])
    for name, report in out["evaluation"].items():
        print(f"\n== {name}: evaluation\n{markdown_table(report)}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from ..files import check_output_file
    from ..steer.workflow.calibration import calibrate_config

    if args.plot:
        check_output_file(args.plot, args.overwrite)
    result, written = calibrate_config(config_of(args), args.overrides, write=args.write)
    for point in result.points:
        mark = "" if point.allowed else "  (below the fluency floor)"
        print(
            f"layer {point.layer}\tscale {point.scale:g}\t{result.metric_name} {point.metric:.3f}\t"
            f"{result.fluency_name} {point.fluency:.3f}{mark}"
        )
    print(
        f"unsteered\t\t{result.metric_name} {result.baseline_metric:.3f}\t"
        f"{result.fluency_name} {result.baseline_fluency:.3f}"
    )
    best = result.best
    print(
        "best: none passed the fluency floor"
        if best is None
        else f"best: layer {best.layer}, scale {best.scale:g}"
    )
    if args.plot:
        print(f"plot: {result.plot(args.plot)}")
    if written is not None:
        print(f"wrote {written}")
    return 0


def _methods(args: argparse.Namespace) -> int:
    from ..steer.base import STEER_METHODS

    for name in STEER_METHODS.names():
        cls = STEER_METHODS.get(name)
        doc = (cls.__module__ and __import__(cls.__module__, fromlist=["_"]).__doc__ or "").strip()
        print(f"{name}\t{doc.splitlines()[0] if doc else ''}")
    return 0


def _describe(artefact: object) -> str:
    from ..graph import Graph
    from ..steer.vector import SteeringVector

    if isinstance(artefact, SteeringVector):
        norms = ", ".join(f"{h}: {n:.2f}" for h, n in artefact.norms().items())
        return f"vector ({norms}), recommended scale {artefact.recommended_scale:g}"
    if isinstance(artefact, Graph):
        return f"graph with nodes {artefact.names()}"
    return repr(artefact)


def _show(results: dict) -> None:
    for name, records in results.items():
        print(f"\n== {name}: {len(records)} records")
        for record in records[:3]:
            print(
                json.dumps(
                    {
                        "input": record["input"],
                        "orig_pred": record["orig_pred"],
                        "pred": record["pred"],
                    },
                    ensure_ascii=False,
                )
            )
