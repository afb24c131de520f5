"""``interv model pull|list|verify``: offline provisioning of known models."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..provision import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    CacheError,
    cache_dir,
    ensure_model,
    verify_cache,
)

HELP = "provision and inspect known models"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help=HELP)
    actions = parser.add_subparsers(dest="action", required=True)
    pull = actions.add_parser("pull", help="fetch and convert a model into $INTERV_HOME")
    pull.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    pull.add_argument("--force", action="store_true", help="convert again even if cached")
    pull.set_defaults(run=_pull)
    listing = actions.add_parser("list", help="models interv can provision offline")
    listing.set_defaults(run=_list)
    verify = actions.add_parser("verify", help="check a cached model against its checksums")
    verify.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    verify.set_defaults(run=_verify)


def _source(name: str):
    from ..provision import known_source

    source = known_source(name)
    if source is None:
        raise ConfigError(f"Unknown model {name!r}; known models: {', '.join(KNOWN_MODELS)}.")
    return source


def _pull(args: argparse.Namespace) -> int:
    folder = ensure_model(_source(args.name), force=args.force)
    print(folder)
    return 0


def _list(args: argparse.Namespace) -> int:
    for name, source in KNOWN_MODELS.items():
        folder = cache_dir(source)
        state = "cached" if (folder / "interv-manifest.json").is_file() else "not cached"
        default = " (default)" if name == DEFAULT_MODEL else ""
        print(f"{name}{default}\t{source.requirement}\t{state}\t{folder}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    folder = cache_dir(_source(args.name))
    try:
        verify_cache(folder)
    except CacheError as err:
        print(f"FAILED: {err}\nFix: interv model pull {args.name} --force")
        return 1
    print(f"OK {folder}")
    return 0
