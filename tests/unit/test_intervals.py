"""sparkify.intervals: which days and files an interval needs, and which intervals a run may have."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from sparkify import intervals


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("start", "end", "days"), [
    (utc(2018, 11, 5, 10), utc(2018, 11, 5, 11), [date(2018, 11, 5)]),
    (utc(2018, 11, 5, 23), utc(2018, 11, 6, 0), [date(2018, 11, 5)]),  # ends at midnight: not the next day
    (utc(2018, 11, 5), utc(2018, 11, 8), [date(2018, 11, 5), date(2018, 11, 6), date(2018, 11, 7)]),
    (utc(2018, 11, 5, 13), utc(2018, 11, 7, 5), [date(2018, 11, 5), date(2018, 11, 6), date(2018, 11, 7)]),
    (utc(2018, 11, 30, 20), utc(2018, 12, 1, 2), [date(2018, 11, 30), date(2018, 12, 1)]),
])
def test_days_an_interval_touches(start, end, days):
    assert intervals.days(start.replace(tzinfo=None), end.replace(tzinfo=None)) == days
    assert intervals.event_log_keys("log_data", start, end) == [
        f"log_data/{d:%Y/%m}/{d:%Y-%m-%d}-events.json" for d in days]


def test_times_in_another_zone_are_read_in_utc():
    from zoneinfo import ZoneInfo

    start = datetime(2018, 11, 5, 20, tzinfo=ZoneInfo("America/New_York"))  # 2018-11-06T01:00Z
    assert intervals.event_log_keys("p", start, start + timedelta(hours=1)) == ["p/2018/11/2018-11-06-events.json"]


def test_late_keys_are_the_days_before_the_first_day():
    assert intervals.late_event_log_keys("log_data", utc(2018, 12, 1, 5), 2) == [
        "log_data/2018/11/2018-11-30-events.json", "log_data/2018/11/2018-11-29-events.json"]
    assert intervals.late_event_log_keys("log_data", utc(2018, 12, 1, 5), 0) == []


@pytest.mark.parametrize(("start", "end"), [
    (utc(2018, 11, 5, 10), utc(2018, 11, 5, 11)),
    (utc(2018, 11, 5, 13), utc(2018, 11, 7, 5)),
    (utc(2018, 11, 1), utc(2018, 12, 2)),  # 31 days: the default maximum
])
def test_whole_hours_up_to_the_maximum_are_accepted(start, end, monkeypatch):
    monkeypatch.delenv(intervals.MAX_DAYS_SETTING, raising=False)
    intervals.check(start, end)


@pytest.mark.parametrize(("start", "end", "message"), [
    (utc(2018, 11, 5, 10, 30), utc(2018, 11, 5, 12), "is not a whole number of hours"),
    (utc(2018, 11, 5, 10), utc(2018, 11, 5, 10, 0, 1), "is not a whole number of hours"),
    (utc(2018, 11, 5, 10), utc(2018, 11, 5, 10), "is empty"),
    (utc(2018, 11, 5, 10), utc(2018, 11, 5, 9), "is empty"),
    (utc(2018, 11, 1), utc(2018, 12, 2, 1), "745 hours wide, wider than this deployment allows "
                                            "(SPARKIFY_MAX_INTERVAL_DAYS=31 days)"),
])
def test_other_intervals_are_refused_naming_them(start, end, message, monkeypatch):
    monkeypatch.delenv(intervals.MAX_DAYS_SETTING, raising=False)
    with pytest.raises(intervals.IntervalError) as info:
        intervals.check(start, end)
    assert f"data interval [{start.isoformat()}, {end.isoformat()})" in str(info.value)
    assert message in str(info.value)


def test_the_maximum_is_the_deployments_setting(monkeypatch):
    monkeypatch.setenv(intervals.MAX_DAYS_SETTING, "1")
    intervals.check(utc(2018, 11, 5), utc(2018, 11, 6))
    with pytest.raises(intervals.IntervalError, match="SPARKIFY_MAX_INTERVAL_DAYS=1 days"):
        intervals.check(utc(2018, 11, 5), utc(2018, 11, 6, 1))
    for bad in ("soon", "0", "-2"):
        monkeypatch.setenv(intervals.MAX_DAYS_SETTING, bad)
        with pytest.raises(intervals.IntervalError, match=f"SPARKIFY_MAX_INTERVAL_DAYS='{bad}'"):
            intervals.check(utc(2018, 11, 5), utc(2018, 11, 6))
