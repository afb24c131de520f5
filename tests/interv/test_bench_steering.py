"""``interv bench steering``: the sentiment summary arithmetic behind the quality targets."""

from __future__ import annotations

from interv.bench.steering import _summary


def test_summary_reports_shift_in_points_and_the_distinct_ratio():
    plain = {"vader_positive_share": 0.5, "vader_negative_share": 0.2, "distinct_2": 0.9}
    steered = {"vader_positive_share": 0.85, "vader_negative_share": 0.0, "distinct_2": 0.72}
    row = _summary(steered, plain)
    assert row["shift_points"] == 35.0 and row["distinct_2_ratio"] == 0.8
    assert _summary(plain, plain)["shift_points"] == 0.0
