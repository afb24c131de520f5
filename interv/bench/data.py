"""Benchmark data checks: bundled subsets against the full files, corpus leakage, loader counts.

Reads the full benchmark folder (``$INTERV_DATA``), which the test suite never does:

* ``bundle``: every bundled subset (``interv.data.bundle``) is still the start of its benchmark
  file (``python -m interv.data.bundle`` rewrites stale ones);
* ``corpus``: the shipped statistics corpus holds none of CounterFact's or ZsRE's test prompts
  (no prompt of five or more words whose every 5-word window occurs in the corpus);
* ``loaders``: each loader reads every record of its full file.

``ok`` is false, and the command exits with an error, when any check fails.
"""

from __future__ import annotations

import argparse
import gzip
import json
from typing import Any

from ..data import editing, steering
from ..data.bundle import check
from ..data.corpus import DEFAULT_FILE
from ..data.paths import data_root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shingle", type=int, default=5, help="words per window (leakage check)")


def leaked_prompts(corpus_text: str, prompts: list[str], width: int = 5) -> list[str]:
    """The prompts of at least ``width`` words whose every ``width``-word window occurs in the
    corpus text."""
    words = corpus_text.split()
    shingles = {" ".join(words[i : i + width]) for i in range(len(words) - width + 1)}
    leaked = []
    for prompt in prompts:
        tokens = prompt.split()
        windows = [" ".join(tokens[i : i + width]) for i in range(len(tokens) - width + 1)]
        if windows and all(w in shingles for w in windows):
            leaked.append(prompt)
    return leaked


def _probe_prompts() -> list[str]:
    root = data_root()
    counterfact = json.loads((root / editing.COUNTERFACT).read_text())
    zsre = json.loads((root / editing.ZSRE).read_text())
    return (
        [r["prompt"] for r in counterfact]
        + [r["rephrase_prompt"] for r in counterfact]
        + [r["src"] for r in zsre]
    )


def _counts() -> dict[str, int]:
    counts = {
        "counterfact": len(editing.counterfact()),
        "zsre": len(editing.zsre()),
        "mquake_edits": len(editing.mquake()),
        **{f"knowedit_{s}": len(editing.knowedit(s)) for s in editing.KNOWEDIT},
        "sentiment_neutral": len(steering.sentiment_prompts("neutral")),
        "sst2": len(steering.sst2()),
        "toxic_prompts": len(steering.toxic_prompts()),
        "convsent_pairs": len(steering.convsent_pairs()),
    }
    counts |= {f"caa_{b}_generate": len(steering.caa_ab(b)) for b in steering.CAA_BEHAVIOURS}
    return counts


def run(args: argparse.Namespace) -> dict[str, Any]:
    stale = check()
    corpus = gzip.decompress(DEFAULT_FILE.read_bytes()).decode()
    leaked = leaked_prompts(corpus, _probe_prompts(), args.shingle)
    report = {
        "data_root": str(data_root()),
        "bundle_stale": stale,
        "corpus_leaked": leaked[:20],
        "n_corpus_leaked": len(leaked),
        "loader_counts": _counts(),
        "ok": not stale and not leaked,
    }
    return report
