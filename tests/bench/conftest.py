"""Share the editing fixtures (tiny editable model, statistics cache)."""

from tests.edit.conftest import edit_tiny, edit_tiny_dir, real_stats, stats_cache  # noqa: F401
