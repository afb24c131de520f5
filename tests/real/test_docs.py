"""The README's and docs/'s Python examples run as written against the default model.

Every ```python block of README.md and docs/*.md runs, one namespace per block, in the order
of its page. A block whose first line is a ``# not run: <reason>`` comment is an illustration
and is skipped (there are few). Two pages run in a fresh process instead of this one:
docs/extending.md registers new methods (its ``# file: <name>.py`` blocks are written to a
folder as modules, its other blocks run there as one script, so the session's registries stay
as they are), and docs/guarantees.md runs with ``HF_HUB_OFFLINE=1``, as it says it can. The
EasyEdit quick start (docs/easyedit-compat.md) has its own test with assertions on its output.
The README is also held to its size and every relative link of the docs to a real target.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
IN_SUBPROCESS = {"extending.md", "guarantees.md"}
EASYEDIT = DOCS / "easyedit-compat.md"
EASYEDIT_MARK = "# EasyEdit users: keep your code"
NOT_RUN = "# not run:"
FILE_MARK = "# file: "
MAX_README_LINES = 250


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


def runnable(page: Path) -> list[str]:
    return [b for b in python_blocks(page) if not b.startswith((NOT_RUN, EASYEDIT_MARK, FILE_MARK))]


def run_in_process(page: Path) -> None:
    for block in runnable(page):
        exec(compile(block, str(page), "exec"), {"__name__": "docs"})


def run_in_subprocess(page: Path, folder: Path, env: dict[str, str] | None = None) -> str:
    """The page's ``# file:`` blocks as modules in ``folder``, its other blocks as one script
    run there; returns what the script printed."""
    for block in python_blocks(page):
        if block.startswith(FILE_MARK):
            name = block.splitlines()[0].removeprefix(FILE_MARK).strip()
            (folder / name).write_text(block)
    script = folder / "example.py"
    script.write_text("\n\n".join(runnable(page)))
    environment = {**os.environ, **(env or {}), "PYTHONPATH": str(folder)}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{page.name} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


# --------------------------------------------------------------------------- the pages themselves
def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"
    linked = set(re.findall(r"\]\((docs/[^)#]+)", README.read_text()))
    assert {f"docs/{p.name}" for p in DOCS.glob("*.md")} <= linked  # every page is reachable


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # an external link
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: no heading for {target}"


def test_few_blocks_are_left_out():
    skipped = [b for page in PAGES for b in python_blocks(page) if b.startswith(NOT_RUN)]
    assert len(skipped) <= 3, skipped


# ------------------------------------------------------------------------------- the examples
@pytest.mark.real_model
@pytest.mark.parametrize(
    "page", [p for p in PAGES if p.name not in IN_SUBPROCESS], ids=lambda p: p.name
)
def test_python_examples_run(page: Path, real_model_dir, capsys):
    run_in_process(page)
    out = capsys.readouterr().out
    if page == README:
        assert "30 576" in out  # the tour's first print
        assert "Rome" in out  # the tour's edit took
    if page.name == "editing.md":
        assert "AppliedPatches(1 applied)" in out


@pytest.mark.real_model
def test_extending_examples_register_in_a_subprocess(real_model_dir, tmp_path):
    from interv.edit import EDIT_METHODS
    from interv.steer.base import STEER_METHODS

    out = run_in_subprocess(DOCS / "extending.md", tmp_path)
    assert "' Rome" in out  # the new editor wrote the fact (the block asserts the rest)
    assert "last_token_diff" not in STEER_METHODS.names()  # this session's registries
    assert "rank-one" not in EDIT_METHODS.names()  # are untouched


@pytest.mark.real_model
def test_guarantees_run_offline(real_model_dir, tmp_path):
    out = run_in_subprocess(DOCS / "guarantees.md", tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert "Unknown hook name 'blocks.6.hook_resid_psot'" in out
    assert "n_layers 12 != 30" in out


@pytest.mark.real_model
def test_easyedit_quickstart_runs(real_model_dir, capsys):
    import interv

    [block] = [b for b in python_blocks(EASYEDIT) if b.startswith(EASYEDIT_MARK)]
    namespace = {"__name__": "docs"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the one warning about EasyEdit's module keys
        exec(compile(block, str(EASYEDIT), "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    scores = [line for line in lines if "->" in line]
    assert [s.split()[0] for s in scores] == ["violin", "soccer", "Swedish"]
    posts = [float(re.findall(r"-> \[([\d.]+)\]", s)[0]) for s in scores]
    pres = [float(re.findall(r"\[([\d.]+)\] ->", s)[0]) for s in scores]
    assert sum(posts) / 3 >= 2 / 3 and sum(posts) > sum(pres)
    assert "soccer" in lines[-1]  # the generation of the edited model
    editor = namespace["editor"]
    assert not editor.applied  # revert() ran: the original weights are back
    reference = interv.load(real_model_dir, device="cpu")
    for name, param in reference.hf_model.named_parameters():
        live = editor.model.hf_model.get_parameter(name).detach()
        assert (
            hashlib.sha256(live.numpy().tobytes()).digest()
            == hashlib.sha256(param.detach().numpy().tobytes()).digest()
        ), name
