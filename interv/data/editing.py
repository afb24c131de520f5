"""Edit requests from the knowledge-editing benchmarks (EasyEdit formats), validated.

Loaders return ``EditRequest`` lists: ``counterfact`` and ``zsre`` (EasyEdit's flattened files),
``knowedit`` (the KnowEdit subsets, with portability and locality probe sets) and ``mquake``
(MQuAKE-hard, multi-hop portability). The first records of each ship inside the package
(``interv.data.bundle``; ``counterfact_sample`` is the first 20 CounterFact records), so the
quick-start, the demo and small runs work without the benchmark folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, MissingFileError, RequestError
from ..files import read_json, read_jsonl
from ..requests import EditRequest, require_text
from .bundle import require
from .paths import bundled_root, data_file, data_root

COUNTERFACT = "knowledge_editing/counterfact/easyedit_counterfact-val.json"
ZSRE = "knowledge_editing/zsre/zsre_mend_eval_portability_gpt4.json"
MQUAKE = "knowledge_editing/mquake/MQuAKE-hard.json"
KNOWEDIT = {
    "zsre": "knowledge_editing/knowedit/ZsRE-test-all.json",
    "wiki_recent": "knowledge_editing/knowedit/wiki_recent_train.json",
    "wiki_counterfact": "knowledge_editing/knowedit/wiki_counterfact_train_cf.json",
    "wikibio": "knowledge_editing/knowedit/wikibio-test-all.json",
}
REQUIRED = ("prompt", "target_new")


def request_from_record(record: Any, index: int = 0) -> EditRequest:
    """An EasyEdit-style record (the ``interv edit --requests`` format) as an EditRequest.

    Fields: prompt, target_new (required), subject, ground_truth, optional rephrase_prompt (str
    or list), locality_prompt + locality_ground_truth, and portability / locality as
    ``{name: [{prompt, ground_truth}]}`` (or a single ``{prompt, ground_truth}``). Nested
    alias lists (``[["USSR", "Soviet Union"]]``) keep their first alias; probes with an empty
    answer are skipped, as in EasyEdit's KnowEdit runner. Errors name the record index.
    """
    where = f"Edit record {index}"
    if not isinstance(record, dict):
        raise RequestError(
            f"{where} must be a JSON object with fields {', '.join(REQUIRED)}; "
            f"got {type(record).__name__}."
        )
    missing = [f for f in REQUIRED if record.get(f) in (None, "", [])]
    if missing:
        raise RequestError(
            f"{where} is missing field {missing[0]!r} "
            f"(present: {', '.join(sorted(record)) or 'none'})."
        )
    try:
        rephrase = record.get("rephrase_prompt") or []
        locality = _probe_sets(record.get("locality"))
        if record.get("locality_prompt"):
            if record.get("locality_ground_truth") in (None, ""):
                raise RequestError(
                    "field 'locality_ground_truth' is missing (needed with locality_prompt)"
                )
            locality["neighborhood"] = [
                (
                    record["locality_prompt"],
                    first_answer(record["locality_ground_truth"], "locality_ground_truth"),
                )
            ]
        return EditRequest(
            prompt=require_text(record["prompt"], "prompt", "", "give the text to complete"),
            target_new=first_answer(record["target_new"], "target_new"),
            subject=record.get("subject"),
            ground_truth=first_answer(record["ground_truth"], "ground_truth")
            if record.get("ground_truth")
            else None,
            rephrase_prompts=[rephrase] if isinstance(rephrase, str) else list(rephrase),
            locality=locality,
            portability=_probe_sets(record.get("portability")),
            case_id=record.get("case_id", index),
        )
    except (RequestError, KeyError, TypeError, AttributeError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise RequestError(f"{where} ({record.get('prompt')!r}): {detail}") from None


def requests_from_records(records: Any, source: str = "the request list") -> list[EditRequest]:
    if not isinstance(records, list):
        raise RequestError(
            f"{source} must hold a JSON list of edit records, got {type(records).__name__}."
        )
    if not records:
        raise RequestError(f"{source} holds no edit records.")
    return [request_from_record(r, i) for i, r in enumerate(records)]


def load_requests(path: str | Path) -> list[EditRequest]:
    """Edit requests from a JSON file holding a list of EasyEdit-style records (or a JSONL
    file, one record per line); errors name the file (and the line and column of bad JSON)."""
    if not Path(path).is_file():
        raise MissingFileError(f"{path} does not exist; give a JSON list of edit records.")
    kind = "edit request file"
    if Path(path).suffix == ".jsonl":
        records = read_jsonl(path, kind, RequestError)
    else:
        records = read_json(path, kind, RequestError)
    try:
        return requests_from_records(records, str(path))
    except RequestError as err:
        message = str(err)
        raise RequestError(message if str(path) in message else f"{path}: {message}") from None


def _records(relative: str, n: int | None, start: int) -> list[Any]:
    """Records ``start .. start + n`` of a benchmark JSON list (all from ``start`` for None)."""
    if (n is not None and n < 1) or start < 0:
        raise ConfigError(
            f"Take n >= 1 records from start >= 0 (got n={n}, start={start}); n=None takes all."
        )
    path = data_file(relative)
    end = None if n is None else start + n
    require(path, relative, end)
    return read_json(path, "benchmark data file")[start:end]


def counterfact(n: int | None = None, start: int = 0) -> list[EditRequest]:
    """CounterFact in EasyEdit's flattened format (1919 records; offline, the first 40)."""
    return requests_from_records(_records(COUNTERFACT, n, start), "CounterFact")


def counterfact_sample() -> list[EditRequest]:
    """The first 20 CounterFact records, from the copy that ships with interv."""
    records = read_json(bundled_root() / COUNTERFACT, "benchmark data file")[:20]
    return requests_from_records(records, "the shipped CounterFact sample")


def zsre(n: int | None = None, start: int = 0) -> list[EditRequest]:
    """ZsRE with portability questions (EasyEdit's "one hop" file, 1037 records)."""
    records = _records(ZSRE, n, start)
    out = []
    for i, r in enumerate(records, start):
        port = r.get("portability") or {}
        out.append(
            EditRequest(
                prompt=r["src"],
                target_new=r["alt"],
                subject=r["subject"] if r["subject"] in r["src"] else None,
                ground_truth=first_answer(r["answers"]),
                rephrase_prompts=[r["rephrase"]] if r.get("rephrase") else [],
                locality={"nq": [(r["loc"], r["loc_ans"])]} if r.get("loc") else {},
                portability={"one_hop": [(port["New Question"], port["New Answer"])]}
                if port.get("New Question")
                else {},
                case_id=i,
            )
        )
    return out


def knowedit(subset: str, n: int | None = None, start: int = 0) -> list[EditRequest]:
    """A KnowEdit subset: ``zsre``, ``wiki_recent``, ``wiki_counterfact`` or ``wikibio``.

    Portability sets keep KnowEdit's names (``Reasoning``, ``Subject_Aliasing``,
    ``Logical_Generalization``), locality sets too (``Relation_Specificity``,
    ``Forgetfulness``). WikiBio's ``text``/``labels``/``concept`` become prompt/target/subject.
    """
    if subset not in KNOWEDIT:
        raise ConfigError(
            f"Unknown KnowEdit subset {subset!r}; choose one of {', '.join(KNOWEDIT)}."
        )
    raw = _records(KNOWEDIT[subset], n, start)
    records = [
        {
            **r,
            "subject": r.get("subject", r.get("concept")),
            "prompt": r.get("prompt", r.get("text")),
            "target_new": r.get("target_new", r.get("labels")),
            "case_id": i,
        }
        for i, r in enumerate(raw, start)
    ]
    return requests_from_records(records, f"KnowEdit {subset}")


def mquake(n: int | None = None, start: int = 0) -> list[EditRequest]:
    """MQuAKE-hard (429 cases of 4 chained edits): one request per edit, case by case.

    Each case's multi-hop questions (answer: ``new_answer``) are the ``multi_hop`` portability
    set of the case's last edit, so they are scored once all four edits are in: edit with
    ``--batch-size 4`` (batch editing, one case per batch) or sequentially. ``n`` counts cases.
    """
    cases = _records(MQUAKE, n, start)
    out = []
    for case in cases:
        edits = case["requested_rewrite"]
        for k, edit in enumerate(edits):
            last = k == len(edits) - 1
            out.append(
                EditRequest(
                    prompt=edit["prompt"].format(edit["subject"]),
                    subject=edit["subject"],
                    target_new=edit["target_new"]["str"],
                    ground_truth=edit["target_true"]["str"],
                    rephrase_prompts=[edit["question"]] if edit.get("question") else [],
                    portability={"multi_hop": [(q, case["new_answer"]) for q in case["questions"]]}
                    if last
                    else {},
                    case_id=f"{case['case_id']}:{k}",
                )
            )
    return out


def benchmark_available() -> bool:
    """Whether the full benchmark folder (not only the bundled subsets) is there."""
    try:
        return (data_root() / COUNTERFACT).is_file()
    except MissingFileError:
        return False


def _probe_sets(sets: Any) -> dict[str, list[tuple[str, str]]]:
    if not sets:
        return {}
    if not isinstance(sets, dict):
        raise RequestError(
            "portability/locality must map a set name to {prompt, ground_truth} items"
        )
    out: dict[str, list[tuple[str, str]]] = {}
    for name, items in sets.items():
        pairs = [
            (
                _probe_prompt(item["prompt"], name),
                first_answer(item["ground_truth"], f"{name}.ground_truth"),
            )
            for item in _as_list(items)
        ]
        pairs = [(p, a) for p, a in pairs if a.strip()]
        if pairs:
            out[name] = pairs
    return out


def first_answer(value: Any, name: str = "ground_truth") -> str:
    """The first answer of an EasyEdit answer field (a string, or nested lists of aliases).

    Anything else (a number, null) is refused, naming the field ``name``: turned into text it
    would score the edit against "5" or "None"."""
    while isinstance(value, list):
        if not value:
            return ""
        value = value[0]
    if not isinstance(value, str):
        raise RequestError(
            f"`{name}` must be a string (or a list of alias strings), got {value!r} "
            f'({type(value).__name__}); write it as text (quote a number: "5").'
        )
    return value


def _probe_prompt(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise RequestError(
            f"probe set {name!r}: `prompt` must be a string, got {value!r} "
            f"({type(value).__name__})."
        )
    return value


def _as_list(items: Any) -> list[dict[str, Any]]:
    return items if isinstance(items, list) else [items]
