"""Share the editing fixtures (tiny editable model, statistics cache)."""

from tests.edit.conftest import (  # noqa: F401
    edit_tiny,
    edit_tiny_dir,
    mend_archive,
    real_stats,
    serac_archive,
    stats_cache,
)
