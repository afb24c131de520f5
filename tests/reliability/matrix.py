"""The bad-input matrix's one assertion: interv refuses with one clear error and changes nothing.

Every case of ``tests/reliability/test_bad_input_*.py`` calls ``assert_refused`` (API and YAML
cases) or ``assert_cli_refused`` (CLI cases): the call raises the expected ``IntervError``
subclass, the message names the field (or every given word), and the model's weights hash, its
torch hook count and its stack of applied patches are what they were before the call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from interv.errors import IntervError


def weights_hash(model: Any) -> str:
    """sha256 over every parameter and buffer of the underlying transformers model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.hf_model.state_dict(keep_vars=True).items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def hook_count(model: Any) -> int:
    """Torch hooks on every module plus hook functions held by open ``model.hooks`` blocks."""
    count = 0
    for module in model.hf_model.modules():
        count += len(module._forward_hooks) + len(module._forward_pre_hooks)
        count += len(module._backward_hooks)
    return count + len(model.active_hooks())


def state(model: Any) -> tuple[str, int, int]:
    return weights_hash(model), hook_count(model), len(model.patches)


def assert_refused(
    model: Any,
    call: Callable[[], object],
    error: type[BaseException],
    names: Sequence[str] | str,
) -> IntervError:
    """``call()`` raises ``error`` (an ``IntervError``) naming every word of ``names``, and
    ``model`` is unchanged."""
    words = [names] if isinstance(names, str) else list(names)
    before = state(model)
    with pytest.raises(error) as info:
        call()
    err = info.value
    assert isinstance(err, IntervError), f"{type(err).__name__} is not an IntervError: {err}"
    message = str(err)
    for word in words:
        assert word in message, f"{word!r} not in the message: {message}"
    assert state(model) == before, "the model changed although the call was refused"
    return err


def assert_cli_refused(
    argv: Sequence[str],
    capsys: pytest.CaptureFixture[str],
    names: Sequence[str] | str,
    *,
    model: Any = None,
) -> str:
    """``interv <argv>`` exits 2 with one ``interv: error:`` line naming every word of
    ``names`` (no traceback), and ``model`` (when given) is unchanged."""
    from interv.cli.main import main

    words = [names] if isinstance(names, str) else list(names)
    before = state(model) if model is not None else None
    capsys.readouterr()
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}, stderr: {err}"
    assert "Traceback" not in err
    assert "interv: error:" in err
    for word in words:
        assert word in err, f"{word!r} not in stderr: {err}"
    if model is not None:
        assert state(model) == before
    return err
