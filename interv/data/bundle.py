"""Write the bundled data subsets (``interv/data/bundled/``) from the benchmark folder.

Each entry keeps the first ``n`` records of one benchmark file (all of it for ``None``), under
the same relative path, so code that reads the first ``n`` records gets identical data from the
bundle and from the full file. The sizes cover what the shipped recipes train on (CAA A/B
items, ConvSent pairs, SST-2), the held-out sets the steering benchmark and ``interv steer
run`` evaluate on, and the offline toxicity word list. Provenance and licences: the benchmark
folder's ``SOURCES.md`` (``bundled/README.md`` repeats them for these files).

Run ``python -m interv.data.bundle`` after changing a recipe's training size.
"""

from __future__ import annotations

import json
from pathlib import Path

from .paths import bundled_root, data_root

CAA_FOLDERS = ("coordinate-other-ais", "corrigible-neutral-HHH", "hallucination", "myopic-reward",
               "refusal", "survival-instinct", "sycophancy")
CAA_TRAIN = 400  # A/B items per behaviour the shipped CAA recipes train on (at most)

BUNDLE: dict[str, int | None] = {
    **{f"steering/caa/generate/{b}/generate_dataset.json": CAA_TRAIN for b in CAA_FOLDERS},
    **{f"steering/caa/test/{b}/test_dataset_ab.json": None for b in CAA_FOLDERS},
    "steering/sentiment/sentiment_prompts-10k/neutral_prompts.jsonl": 100,
    "steering/sentiment/sst2_validation_872.jsonl": None,
    # all of it: the loader shuffles every pair before taking the first n
    "steering/sentiment/convsent_blender_test.json": None,
    "steering/toxicity/wordlists/ldnoobw-en.txt": None,
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


def write(source: Path | None = None, target: Path | None = None) -> list[Path]:
    source, target = source or data_root(), target or bundled_root()
    written = []
    for relative, n in BUNDLE.items():
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(subset((source / relative).read_text(), out.suffix, n))
        written.append(out)
    return written


if __name__ == "__main__":
    for path in write():
        print(f"{path.stat().st_size:>9,d}  {path}")
