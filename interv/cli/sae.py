"""``interv sae``: list, train and inspect sparse autoencoders, and steer with their features.

interv sae list
interv sae train --hook blocks.12.hook_resid_post --features 2048 --tokens 2000000 --out DIR
interv sae train --recipe sae/smollm2-135m-res12 --out DIR
interv sae inspect --feature 123 [--html page.html]      (or --text "...")
interv sae steer --recipe steer/sta_sentiment --prompt "I think that"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..recipes import recipe_path
from .common import add_model_args, add_overwrite, index_int, positive_int

HELP = "sparse autoencoders: train, inspect, steer"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sae", help=HELP)
    commands = parser.add_subparsers(dest="sae_command", required=True)

    listing = commands.add_parser("list", help="SAEs shipped with interv")
    listing.set_defaults(run=_list)
    _register_train(commands)
    _register_inspect(commands)
    _register_steer(commands)


def _register_train(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train an SAE on one hook (sae-lens trainer)")
    add_model_args(train)
    train.add_argument("--recipe", help="training recipe (YAML file or name under recipes/)")
    train.add_argument("--hook", help="canonical hook, e.g. blocks.12.hook_resid_post")
    train.add_argument("--features", type=positive_int, help="number of SAE features (d_sae)")
    train.add_argument(
        "--tokens", type=positive_int, help="activations the trainer sees (all epochs)"
    )
    train.add_argument(
        "--distinct-tokens", type=positive_int, help="activations read from the corpus"
    )
    train.add_argument("--architecture", choices=("topk", "jumprelu"))
    train.add_argument("--k", type=positive_int, help="TopK: active features; JumpReLU: target L0")
    train.add_argument(
        "--corpus", help="text/JSONL/JSON file (default: the shared-datasets corpus)"
    )
    train.add_argument("--text-field", help="JSON(L) field holding the text")
    train.add_argument("--out", type=Path, required=True, help="folder for the sae-lens SAE")
    add_overwrite(train)
    train.set_defaults(run=_train)


def _register_inspect(commands: argparse._SubParsersAction) -> None:
    inspect = commands.add_parser(
        "inspect", help="what a feature means / which features a text uses"
    )
    add_model_args(inspect)
    inspect.add_argument(
        "--sae", default=None, help="shipped name, sae-lens folder or release:sae_id"
    )
    what = inspect.add_mutually_exclusive_group(required=True)
    what.add_argument("--feature", type=index_int, help="feature index")
    what.add_argument("--text", help="text to show the top features of, token by token")
    inspect.add_argument("--corpus", default=None, help="where to look for top contexts")
    inspect.add_argument("--docs", type=positive_int, default=2000, help="documents to scan")
    inspect.add_argument(
        "--top", type=positive_int, default=10, help="contexts / features per token"
    )
    inspect.add_argument("--html", type=Path, help="also write an HTML view here")
    inspect.add_argument("--png", type=Path, help="also write the activation histogram here")
    add_overwrite(inspect, "--html or --png file")
    inspect.set_defaults(run=_inspect)


def _register_steer(commands: argparse._SubParsersAction) -> None:
    steer = commands.add_parser("steer", help="fit sta / sae_feature from a recipe and generate")
    add_model_args(steer)
    steer.add_argument(
        "--recipe", required=True, help="steering recipe (method: sta | sae_feature)"
    )
    steer.add_argument(
        "--pairs",
        type=positive_int,
        default=None,
        help="contrastive examples for sta (default: the recipe's steer_train_data_size)",
    )
    steer.add_argument("--prompt", action="append", help="prompt(s) to continue (repeatable)")
    steer.add_argument("--multiplier", type=float, help="strength (default: the recipe's)")
    steer.add_argument("--max-new-tokens", type=positive_int, default=30)
    steer.add_argument("--save", type=Path, help="save the intervention graph in this folder")
    add_overwrite(steer, "--save folder")
    steer.set_defaults(run=_steer)


def _list(args: argparse.Namespace) -> int:
    from importlib import resources

    from ..sae import shipped

    for name in shipped():
        folder = Path(str(resources.files("interv.sae") / "pretrained" / name))
        cfg = json.loads((folder / "cfg.json").read_text())
        report = folder / "training.json"
        heldout = json.loads(report.read_text()).get("heldout", {}) if report.is_file() else {}
        hook, arch = cfg["metadata"].get("hook_name"), cfg["architecture"]
        scores = " ".join(f"{k}={v}" for k, v in heldout.items())
        print(f"{name}: {hook} d_sae={cfg['d_sae']} {arch} {scores}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ..files import check_output_folder, output_folder
    from ..loading import load
    from ..sae.training import TrainConfig, train

    values: dict[str, Any] = {}
    if args.recipe:
        values = TrainConfig.from_yaml(recipe_path(args.recipe)).to_dict()
    for key in (
        "hook",
        "features",
        "tokens",
        "distinct_tokens",
        "architecture",
        "k",
        "corpus",
        "text_field",
    ):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    cfg = TrainConfig.from_dict(values)
    check_output_folder(args.out, args.overwrite)
    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    with output_folder(args.out, args.overwrite) as out:
        _, report = train(model, cfg, out)
    print(json.dumps(report, indent=2))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from ..files import check_output_file, write_bytes, write_text
    from ..loading import load
    from ..sae import DEFAULT_SAE
    from ..sae import load as load_sae
    from ..sae.corpus import load_documents, split
    from ..sae.features import feature_report, text_report

    for path in (args.html, args.png):
        if path is not None:
            check_output_file(path, args.overwrite)
    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    sae = load_sae(args.sae or DEFAULT_SAE, model=model)
    if args.text is not None:
        report: Any = text_report(model, sae, args.text, k=args.top)
    else:
        _, heldout = split(load_documents(args.corpus))
        report = feature_report(model, sae, args.feature, heldout[: args.docs], k=args.top)
    print(report.to_text())
    if args.html:
        write_text(args.html, report.to_html())
        print(f"wrote {args.html}")
    if args.png and args.feature is not None:
        from ..sae.views import histogram_png

        write_bytes(args.png, histogram_png(report.activations, f"feature {args.feature}"))
        print(f"wrote {args.png}")
    return 0


def _steer(args: argparse.Namespace) -> int:
    from ..data.steering import sentiment_prompts
    from ..errors import ConfigError
    from ..files import check_output_folder
    from ..steer.sae_feature import SAEFeatureSteer, feature_graph
    from ..steer.sta import STA
    from ..steer.vector import SteeringVector
    from ..steer.workflow.config import load_workflow
    from ..steer.workflow.datasets import train_data
    from ..steer.workflow.generator import load_model
    from ..steer.workflow.methods import train_hparams

    if args.save is not None:
        check_output_folder(args.save, args.overwrite)
    workflow = load_workflow(recipe_path(args.recipe))
    if not workflow.train or not workflow.config.steer_train_dataset:
        raise ConfigError(
            f"{args.recipe}: name a method in steer_train_hparam_paths and its steer_train_dataset."
        )
    dataset = str(workflow.config.steer_train_dataset[0])
    method = train_hparams(workflow.train[0], workflow, dataset)
    if not isinstance(method, STA | SAEFeatureSteer):
        raise ConfigError(
            f"`interv sae steer` runs sta or sae_feature recipes, not "
            f"{method.name!r}; use `interv steer run --config` for it."
        )
    changes = {"device": args.device, "backend": args.backend}  # the command line's choices
    changes |= {"model_name_or_path": args.model} if args.model else {}
    changes |= {"torch_dtype": args.dtype} if args.dtype else {}
    workflow = workflow.with_config(**changes)
    model = load_model(workflow)
    data = None
    if method.needs_data:
        size = args.pairs or workflow.config.steer_train_data_size
        data = train_data(workflow.data_path(dataset), method.data_kind, size)
    vector = method.fit(model, data)
    assert isinstance(vector, SteeringVector) and method.sae is not None
    graph = feature_graph(vector, method.sae, args.multiplier)
    prompts = args.prompt or sentiment_prompts("neutral", 4)
    plain = model.generate(prompts, max_new_tokens=args.max_new_tokens)
    steered = model.generate(prompts, max_new_tokens=args.max_new_tokens, graph=graph)
    print(
        f"{method.name}: {len(vector.meta['features'])} features at {method.sae.hook_name}, "
        f"strength {graph.nodes[0].strength}"
    )
    for prompt, a, b in zip(prompts, plain, steered, strict=True):
        print(f"\n{prompt!r}\n  unsteered: {a!r}\n  steered:   {b!r}")
    if args.save:
        graph.save(args.save, model=model)
        print(f"\nsaved the graph to {args.save}")
    return 0
