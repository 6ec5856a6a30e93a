"""The timetable document: validation, locating instants, lesson boundaries across DST."""

import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.timetable import (
    DayException,
    ExamWindow,
    Period,
    Slot,
    Term,
    Timetable,
    TimetableError,
    exam_at,
    is_school_day,
    load_timetable_toml,
    locate,
    next_change,
    parse_timetable,
    to_document,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "timetable.toml"
LONDON = ZoneInfo("Europe/London")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


@pytest.fixture(scope="module")
def school() -> Timetable:
    return load_timetable_toml(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))


def minimal(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"timezone": "Europe/London",
                           "periods": [{"name": "P1", "start": "08:50", "end": "09:50"},
                                       {"name": "P2", "start": "10:00", "end": "11:00"}]}
    doc.update(extra)
    return doc


# ---------------------------------------------------------------- the example file

def test_example_parses_to_the_documented_day(school: Timetable):
    assert school.timezone == "Europe/London"
    assert school.weekdays == ("mon", "tue", "wed", "thu", "fri")
    assert [(p.name, p.span(), p.days) for p in school.periods] == [
        ("P1", "08:50-09:50", None), ("P2", "09:50-10:50", None),
        ("P3", "11:10-12:10", None), ("P4", "13:00-14:00", None),
        ("P5", "14:00-15:00", None), ("Enrichment", "15:10-16:10", ("wed",))]
    assert [t.name for t in school.terms] == ["Autumn 1", "Autumn 2", "Spring 1", "Spring 2",
                                             "Summer 1", "Summer 2"]
    assert school.exceptions[0] == DayException(date(2026, 11, 27), True, "INSET day")
    assert school.exam_windows == (ExamWindow(datetime(2027, 5, 11, 9), datetime(2027, 5, 11, 12),
                                              "GCSE maths"),)


def test_document_round_trips_through_json(school: Timetable):
    doc = to_document(school)
    assert parse_timetable(json.loads(json.dumps(doc))) == school
    assert doc["periods"][5] == {"name": "Enrichment", "start": "15:10", "end": "16:10",
                                 "days": ["wed"]}
    assert "days" not in doc["periods"][0]
    assert doc["exam_windows"] == [{"start": "2027-05-11T09:00", "end": "2027-05-11T12:00",
                                    "note": "GCSE maths"}]


@pytest.mark.parametrize(("when", "slot"), [
    # Thursday 2026-10-22, British Summer Time (UTC+1): 07:55 UTC is 08:55 local.
    (utc(2026, 10, 22, 7, 55), Slot(True, "P1", True, False)),
    (utc(2026, 10, 22, 9, 55), Slot(True, None, False, False)),   # break 10:55
    (utc(2026, 10, 22, 11, 30), Slot(True, None, False, False)),  # lunch 12:30
    (utc(2026, 10, 22, 12, 0), Slot(True, "P4", True, False)),    # 13:00 exactly: P4 starts
    (utc(2026, 10, 22, 13, 59), Slot(True, "P5", True, False)),   # 14:59
    (utc(2026, 10, 22, 14, 0), Slot(True, None, False, False)),   # 15:00: P5 has ended
    (utc(2026, 10, 21, 14, 30), Slot(True, "Enrichment", True, False)),  # a Wednesday
    (utc(2026, 10, 22, 14, 30), Slot(True, None, False, False)),  # not on Thursdays
    (utc(2026, 10, 24, 9, 0), Slot(False, None, False, False)),   # Saturday
    (utc(2026, 10, 27, 9, 0), Slot(False, None, False, False)),   # half term (a Tuesday)
    (utc(2026, 11, 2, 8, 55), Slot(True, "P1", True, False)),     # GMT now: 08:55 local
    (utc(2026, 11, 2, 10, 0), Slot(True, "P2", True, False)),     # 10:00 local
    (utc(2026, 11, 27, 9, 0), Slot(False, None, False, False)),   # INSET day (a Friday)
    (utc(2026, 12, 18, 14, 30), Slot(True, "P5", True, False)),   # last day: inclusive
    (utc(2026, 12, 21, 9, 0), Slot(False, None, False, False)),   # Christmas holidays
    (utc(2027, 5, 3, 9, 0), Slot(False, None, False, False)),     # bank holiday
    (utc(2027, 5, 11, 8, 0), Slot(True, "P1", True, True)),       # 09:00 BST: exam starts
    (utc(2027, 5, 11, 10, 59), Slot(True, "P3", True, True)),     # 11:59 BST
    (utc(2027, 5, 11, 11, 0), Slot(True, "P3", True, False)),     # 12:00: exam over
    (utc(2027, 5, 11, 7, 59), Slot(True, "P1", True, False)),    # 08:59: P1, before exam
])
def test_locate(school: Timetable, when: datetime, slot: Slot):
    assert locate(school, when) == slot


def test_locate_converts_any_zone(school: Timetable):
    new_york = datetime(2026, 10, 22, 3, 55, tzinfo=ZoneInfo("America/New_York"))  # 08:55 BST
    assert locate(school, new_york).period == "P1"
    fixed = datetime(2026, 11, 2, 11, 0, tzinfo=timezone(timedelta(hours=1)))  # 10:00 GMT
    assert locate(school, fixed).period == "P2"


def test_naive_times_are_refused(school: Timetable):
    with pytest.raises(ValueError, match=r"2026-10-22T08:55:00 has no time zone"):
        locate(school, datetime(2026, 10, 22, 8, 55))
    with pytest.raises(ValueError, match="no time zone"):
        next_change(school, datetime(2026, 10, 22, 8, 55))


def test_exam_at_names_the_window(school: Timetable):
    window = exam_at(school, london(2027, 5, 11, 10, 0))
    assert window is not None and window.note == "GCSE maths"
    assert exam_at(school, london(2027, 5, 11, 12, 0)) is None


# ---------------------------------------------------------------- DST and boundaries

@pytest.mark.parametrize(("when", "expected"), [
    (london(2026, 10, 22, 15, 30), utc(2026, 10, 23, 7, 50)),   # Thu -> Fri 08:50 BST
    (london(2026, 10, 22, 8, 50), utc(2026, 10, 22, 8, 50)),    # at P1 start -> P1 end
    (london(2026, 10, 22, 10, 50), utc(2026, 10, 22, 10, 10)),  # P2 end -> P3 start 11:10
    (london(2026, 10, 21, 15, 0), utc(2026, 10, 21, 14, 10)),   # Wed: Enrichment 15:10
    (london(2026, 11, 26, 16, 0), utc(2026, 11, 30, 8, 50)),    # Thu -> (INSET Fri) -> Mon
])
def test_next_change_in_the_school_calendar(school: Timetable, when: datetime,
                                            expected: datetime):
    assert next_change(school, when) == expected


def test_next_change_looks_8_days_ahead_over_half_term(school: Timetable):
    # Autumn 1 ends Friday 23 Oct (BST); Autumn 2 starts Monday 2 Nov (GMT).
    assert next_change(school, london(2026, 10, 23, 15, 30)) is None  # 9 days away
    assert next_change(school, london(2026, 10, 25, 9, 0)) == utc(2026, 11, 2, 8, 50)


def every_weekday() -> Timetable:
    return parse_timetable(minimal())


@pytest.mark.parametrize(("friday", "monday_p1_utc"), [
    (date(2026, 10, 23), utc(2026, 10, 26, 8, 50)),  # clocks go back Sun 25 Oct: GMT
    (date(2027, 3, 26), utc(2027, 3, 29, 7, 50)),    # clocks go forward Sun 28 Mar: BST
])
def test_lesson_start_follows_the_wall_clock_across_dst(friday: date, monday_p1_utc: datetime):
    tt = every_weekday()
    after_school = datetime.combine(friday, time(16, 0), tzinfo=LONDON)
    assert next_change(tt, after_school) == monday_p1_utc
    assert next_change(tt, after_school).tzinfo is UTC  # type: ignore[union-attr]
    assert locate(tt, monday_p1_utc) == Slot(True, "P1", True, False)
    assert locate(tt, monday_p1_utc - timedelta(seconds=1)).in_lesson is False
    # The Friday's lesson, an hour away in UTC terms, is on the other offset.
    friday_p1 = datetime.combine(friday, time(8, 50), tzinfo=LONDON).astimezone(UTC)
    assert (monday_p1_utc - friday_p1) != timedelta(days=3)
    assert locate(tt, friday_p1).period == "P1"


def test_clock_change_night_itself():
    tt = parse_timetable(minimal(weekdays=["sun", "mon"]))
    # 2026-10-25 01:30 happens twice in London; neither is in a lesson.
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)   # 01:30 BST
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 01:30 GMT
    assert locate(tt, first) == locate(tt, second) == Slot(True, None, False, False)
    assert next_change(tt, first) == utc(2026, 10, 25, 8, 50)
    # Spring: 01:00-02:00 does not exist on 2027-03-28; P1 there is 08:50 BST.
    assert next_change(tt, utc(2027, 3, 28, 0, 59)) == utc(2027, 3, 28, 7, 50)


def test_next_change_none_without_lessons_in_8_days():
    tt = parse_timetable(minimal(terms=[{"name": "T", "start": "2026-09-01",
                                         "end": "2026-09-04"}]))
    assert next_change(tt, london(2026, 9, 4, 9, 0)) == utc(2026, 9, 4, 8, 50)  # P1 end, BST
    assert next_change(tt, london(2026, 9, 4, 11, 0)) is None


def test_weekdays_exceptions_and_period_days():
    tt = parse_timetable(minimal(
        weekdays=["Sat", "mon", "tue", "wed", "thu", "fri"],
        periods=[{"name": "P1", "start": "08:50", "end": "09:50",
                  "days": ["mon", "tue", "wed", "thu", "fri"]},
                 {"name": "Sat club", "start": "09:00", "end": "12:00", "days": ["sat"]}],
        exceptions=[{"date": "2026-10-11", "closed": False, "note": "open day (Sunday)"},
                    {"date": "2026-10-12", "note": "closed: boiler"}]))
    assert tt.weekdays == ("mon", "tue", "wed", "thu", "fri", "sat")
    assert locate(tt, london(2026, 10, 10, 9, 30)) == Slot(True, "Sat club", True, False)
    assert locate(tt, london(2026, 10, 9, 9, 30)) == Slot(True, "P1", True, False)  # Fri
    assert locate(tt, london(2026, 10, 9, 10, 0)) == Slot(True, None, False, False)
    # An open Sunday is a school day; P1 (mon-fri) and Sat club do not run on it.
    assert locate(tt, london(2026, 10, 11, 9, 30)) == Slot(True, None, False, False)
    assert locate(tt, london(2026, 10, 12, 9, 0)) == Slot(False, None, False, False)
    assert is_school_day(tt, date(2026, 10, 18)) is False  # an ordinary Sunday


def test_term_boundaries_are_inclusive():
    tt = parse_timetable(minimal(terms=[{"name": "A", "start": "2026-09-07",
                                         "end": "2026-09-11"}]))
    assert [is_school_day(tt, date(2026, 9, d)) for d in range(6, 13)] == [
        False, True, True, True, True, True, False]


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize(("change", "message"), [
    ({"periods": [{"name": "P1", "start": "08:50", "end": "09:50"},
                  {"name": "P2", "start": "10:00", "end": "11:00"},
                  {"name": "P3", "start": "10:40", "end": "11:40"}]},
     "t.toml: periods[2] 'P3' 10:40-11:40 overlaps periods[1] 'P2' 10:00-11:00 on mon"),
    ({"periods": [{"name": "A", "start": "09:00", "end": "10:00", "days": ["wed", "thu"]},
                  {"name": "B", "start": "09:30", "end": "10:30", "days": ["mon", "thu"]}]},
     "periods[1] 'B' 09:30-10:30 overlaps periods[0] 'A' 09:00-10:00 on thu"),
    ({"periods": [{"name": "P1", "start": "08:50", "end": "09:50"},
                  {"name": "P1", "start": "10:00", "end": "11:00"}]},
     "periods[1].name = 'P1': duplicate of periods[0]"),
    ({"periods": [{"name": "P1", "start": "25:00", "end": "26:00"}]},
     "periods[0].start = '25:00': no such time of day"),
    ({"periods": [{"name": "P1", "start": "9am", "end": "10:00"}]},
     "periods[0].start = '9am': expected a local time 'HH:MM' (24-hour clock)"),
    ({"periods": [{"name": "P1", "start": "10:00", "end": "10:00"}]},
     "periods[0].end = '10:00': not after start 10:00 (a period cannot cross midnight)"),
    ({"periods": [{"name": "P1", "start": "10:00", "end": "11:00", "room": "12"}]},
     "periods[0].room: unknown key (known: name, start, end, days)"),
    ({"periods": [{"name": "P1", "start": "10:00"}]}, "periods[0].end: missing"),
    ({"periods": [{"name": " ", "start": "10:00", "end": "11:00"}]},
     "periods[0].name = ' ': must not be empty"),
    ({"periods": [{"name": "P1", "start": "10:00", "end": "11:00", "days": ["sat"]}]},
     "periods[0].days = ['sat']: 'sat' is not a school day (weekdays: mon, tue, wed, thu, fri)"),
    ({"periods": [{"name": "P1", "start": "10:00", "end": "11:00", "days": ["mon", "Mon"]}]},
     "periods[0].days[1] = 'Mon': listed twice"),
    ({"periods": []}, "periods = []: expected at least one period"),
    ({"periods": "P1"}, "periods = 'P1': expected a list"),
    ({"timezone": "Europe/Londn"},
     "timezone = 'Europe/Londn': unknown time zone (expected an IANA name such as "
     "'Europe/London')"),
    ({"timezone": "../etc/passwd"}, "timezone = '../etc/passwd': unknown time zone"),
    ({"weekdays": ["mon", "wen"]},
     "weekdays[1] = 'wen': expected one of mon, tue, wed, thu, fri, sat, sun"),
    ({"weekdays": []}, "weekdays = []: expected at least one weekday"),
    ({"terms": [{"name": "A", "start": "2026-09-03", "end": "2026-09-01"}]},
     "terms[0].end = '2026-09-01': before start 2026-09-03"),
    ({"terms": [{"name": "A", "start": "2026-09-03", "end": "2026-12-18"},
                {"name": "B", "start": "2026-12-18", "end": "2027-04-01"}]},
     "terms[1] 'B' 2026-12-18..2027-04-01 overlaps terms[0] 'A' 2026-09-03..2026-12-18"),
    ({"terms": [{"name": "A", "start": "2026-02-30", "end": "2026-03-01"}]},
     "terms[0].start = '2026-02-30': no such date (day is out of range for month)"),
    ({"terms": [{"name": "A", "start": "20260901", "end": "2026-09-02"}]},
     "terms[0].start = '20260901': expected a date 'YYYY-MM-DD'"),
    ({"exceptions": [{"date": "2026-11-27"}, {"date": "2026-11-27", "closed": False}]},
     "exceptions[1].date = '2026-11-27': duplicate of exceptions[0]"),
    ({"exceptions": [{"date": "2026-11-27", "closed": "yes"}]},
     "exceptions[0].closed = 'yes': expected true or false"),
    ({"exam_windows": [{"start": "2027-05-11T12:00", "end": "2027-05-11T09:00"}]},
     "exam_windows[0].end = '2027-05-11T09:00': not after start 2027-05-11T12:00"),
    ({"exam_windows": [{"start": "2027-05-11T09:00+01:00", "end": "2027-05-11T12:00"}]},
     "exam_windows[0].start = '2027-05-11T09:00+01:00': expected a local date and time"),
    ({"holidays": []}, "t.toml: holidays: unknown key (known: timezone, periods, weekdays, "
                       "terms, exceptions, exam_windows)"),
    ({"exceptions": [{"date": "2026-11-27"}] * 2001},
     "exceptions: 2001 entries, at most 2000 allowed"),
])
def test_bad_documents_name_path_value_and_reason(change: dict[str, Any], message: str):
    with pytest.raises(TimetableError) as err:
        parse_timetable(minimal(**change), "t.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("t.toml: ")


def test_missing_timezone_and_not_a_table():
    with pytest.raises(TimetableError, match=r"^timetable: timezone: missing$"):
        parse_timetable({"periods": []})
    with pytest.raises(TimetableError, match=r"timetable = \[1\]: expected a table"):
        parse_timetable([1])  # type: ignore[arg-type]


def test_adjacent_periods_and_periods_on_other_days_do_not_overlap():
    tt = parse_timetable(minimal(periods=[
        {"name": "A", "start": "09:00", "end": "10:00", "days": ["mon"]},
        {"name": "B", "start": "09:00", "end": "10:00", "days": ["tue"]},
        {"name": "C", "start": "10:00", "end": "11:00"}]))
    assert locate(tt, london(2026, 10, 13, 9, 30)).period == "B"  # a Tuesday
    assert next_change(tt, london(2026, 10, 13, 9, 30)) == utc(2026, 10, 13, 9, 0)


def test_toml_native_types_and_invalid_toml():
    tt = load_timetable_toml(
        'timezone = "Europe/London"\n'
        '[[periods]]\nname = "P1"\nstart = 08:50:00\nend = 09:50:30\n'
        '[[terms]]\nname = "A"\nstart = 2026-09-03\nend = 2026-10-23\n'
        '[[exam_windows]]\nstart = 2027-05-11T09:00:00\nend = 2027-05-11T12:00:00\n', "x")
    assert tt.periods == (Period("P1", time(8, 50), time(9, 50, 30)),)
    assert tt.terms == (Term("A", date(2026, 9, 3), date(2026, 10, 23)),)
    assert to_document(tt)["periods"][0]["end"] == "09:50:30"
    assert parse_timetable(to_document(tt)) == tt
    with pytest.raises(TimetableError, match=r"^room12\.toml: not valid TOML"):
        load_timetable_toml("timezone = ", "room12.toml")
    with pytest.raises(TimetableError, match=r"periods\[0\]\.start = datetime\.time\(8, 50, "
                                             r"tzinfo=.*expected a local time without"):
        parse_timetable(minimal(periods=[{"name": "P", "start": time(8, 50, tzinfo=UTC),
                                          "end": "09:00"}]))


def test_an_opened_day_runs_the_periods_without_days():
    tt = parse_timetable(minimal(exceptions=[{"date": "2026-10-11", "closed": False}]))
    assert locate(tt, london(2026, 10, 11, 9, 0)) == Slot(True, "P1", True, False)  # Sunday
    assert locate(tt, london(2026, 10, 18, 9, 0)) == Slot(False, None, False, False)
    assert tt.exceptions == (DayException(date(2026, 10, 11), False, ""),)
