"""The SAE tests' session SAE, ``tiny_sae_run``, lives in tests/conftest.py (the graph and steer
tests use it too); ``tiny_corpus`` stays importable from here for tests that train their own."""

from __future__ import annotations

from tests.conftest import tiny_corpus

__all__ = ["tiny_corpus"]
