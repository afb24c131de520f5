"""Reading ``--set`` values and configuration containers: OmegaConf-like containers as plain
dicts, dotted keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from ...errors import ConfigError


def plain(value: Any) -> Any:
    """OmegaConf containers (and any mapping / sequence) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return [plain(v) for v in value]
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``3``, ``[1, 2]``, ``true``, ``text``)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: write key=value.")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def set_nested(target: dict[str, Any], dotted: str, value: Any, key: str) -> None:
    if not isinstance(target, dict):
        raise ConfigError(f"--set {key}: the parent key is not a mapping.")
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
