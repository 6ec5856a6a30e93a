"""Room capacity: students a room carries at once, from room tests or labelled estimates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from collector.services.capacity import (
    ESTIMATE,
    ROOM_TEST,
    combined_capacity,
    room_capacity,
    students,
)
from collector.services.profiles import Profile, Requirement, Source
from collector.services.room_tests import RoomCapacity
from collector.services.rows import MeasurementRow

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SRC = Source("test source", "P")


def need(metric: str, mbps: float, **changes: object) -> Requirement:
    base = Requirement(id=metric, title=metric, metric=metric, stat="value", statistic="p50",
                       op=">=", threshold=mbps, unit="Mbps", severity="must", source=SRC,
                       min_samples=3, scope="room", per_student=True)
    return replace(base, **changes)  # type: ignore[arg-type]


def profile(pid: str, *reqs: Requirement, class_size: int = 30) -> Profile:
    return Profile(id=pid, title=pid, description="", note="", source=SRC, requirements=reqs,
                   version="1", class_size=class_size)


def bw(values: list[float], agent: str, room: str, metric: str = "download_mbps",
       start: int = 0, in_lesson: bool | None = True) -> list[MeasurementRow]:
    return [MeasurementRow(time=T0 + timedelta(minutes=start + i), agent_id=agent, room=room,
                           probe="bandwidth", target=None, metric=metric, value=v, unit="Mbps",
                           method="http", report_id=f"r{agent}{i}", in_lesson=in_lesson)
            for i, v in enumerate(values)]


AP = profile("ap", need("download_mbps", 1.0), need("upload_mbps", 0.2))


def test_students_is_floor_without_float_noise() -> None:
    assert students(30.0, 0.1) == 300  # 30 / 0.1 is 299.99999999999994 in floats
    assert students(45.5, 1.0) == 45
    assert students(29.99, 1.0) == 29
    assert students(0.5, 1.0) == 0


def test_room_test_gives_students_supported_by_the_limiting_direction() -> None:
    cap = RoomCapacity("Room 12", "0123456789abcdef", T0, 45.5, 12.0, 20)
    (c,) = room_capacity(AP, [cap], [], class_size=30)
    assert (c.room, c.students_supported, c.basis, c.metric) == ("Room 12", 45, ROOM_TEST,
                                                                 "download_mbps")
    assert (c.per_student_mbps, c.total_mbps, c.measured_at, c.class_size) == (1.0, 45.5, T0, 30)
    assert c.missing == () and c.measured_supports == 45
    assert c.note == ("ap: 1 Mbps per student (download); room test 01234567 at 2025-03-03 "
                      "09:00 UTC: 20 device(s) in download at once moved 45.5 Mbps in total")
    # upload is the limit when it supports fewer: 5 / 0.2 = 25 < 45
    (c,) = room_capacity(AP, [replace(cap, upload_mbps=5.0)], [])
    assert (c.students_supported, c.metric, c.total_mbps) == (25, "upload_mbps", 5.0)


def test_estimate_from_the_best_single_device_is_labelled() -> None:
    rows = bw([40, 42, 44], "agent-a-0001", "Lab 2") + bw([50, 52, 54], "agent-b-0002", "Lab 2",
                                                          start=10)
    (c,) = room_capacity(AP, [], rows, class_size=30)
    assert (c.room, c.basis, c.total_mbps, c.per_student_mbps) == ("Lab 2", ESTIMATE, 52.0, 1.0)
    # the profile also needs upload, which nobody measured: no number is claimed
    assert (c.students_supported, c.missing, c.measured_supports) == (None, ("upload",), 52)
    assert c.measured_at == T0 + timedelta(minutes=12)
    assert c.note == (
        "ap: 1 Mbps per student (download); estimate from single-device tests: the best "
        "device's p50 download goodput (52 Mbps, device agent-b-; 6 samples from 2 device(s)) "
        "taken as the room's total. It assumes the room's devices share one bottleneck "
        "(access point or uplink) that one device can fill; it overstates when Wi-Fi airtime "
        "runs out as devices join and understates when the device was the limit. A room test "
        "measures it: classprobe collector room-test --site SITE --room 'Lab 2'; upload not "
        "measured in this room: the number of students is unknown until it is (download "
        "alone supports 52)")
    up = bw([9.0, 10.0, 11.0], "agent-a-0001", "Lab 2", metric="upload_mbps", start=20)
    (c,) = room_capacity(AP, [], rows + up)
    assert (c.students_supported, c.metric) == (50, "upload_mbps")  # 10 / 0.2 = 50 < 52


def test_room_test_wins_over_estimate_per_direction() -> None:
    cap = RoomCapacity("Lab 2", "job-2", T0, 90.0, None, 25)
    up = bw([9.0, 10.0, 11.0], "a1", "Lab 2", metric="upload_mbps")
    down = bw([500.0] * 3, "a1", "Lab 2")
    (c,) = room_capacity(AP, [cap], up + down)
    # download from the room test (90), not the single device (500); upload estimated: 50
    assert (c.students_supported, c.metric, c.basis, c.total_mbps) == (
        50, "upload_mbps", ESTIMATE, 10.0)
    only_down = profile("dl", need("download_mbps", 1.0))
    (c,) = room_capacity(only_down, [cap], up + down)
    assert (c.students_supported, c.basis) == (90, ROOM_TEST)


def test_estimate_uses_the_requirement_window_and_min_samples() -> None:
    lessons = bw([20.0] * 3, "a1", "R1")
    evening = bw([300.0] * 3, "a2", "R1", start=600, in_lesson=False)
    dl = profile("dl", need("download_mbps", 1.0, window="in_lesson"))
    (c,) = room_capacity(dl, [], lessons + evening)
    assert (c.students_supported, c.total_mbps) == (20, 20.0)
    assert room_capacity(dl, [], lessons[:2] + evening) == []  # 2 samples < min_samples 3


def test_several_products_in_the_same_period_add_up() -> None:
    meet = profile("meet", need("download_mbps", 0.5))
    cap = RoomCapacity("R1", "job-1", T0, 45.0, 12.0, 20)
    (c,) = combined_capacity([AP, meet], [cap], [], class_size=30)
    # download: 45 / (1 + 0.5) = 30; upload: 12 / 0.2 = 60
    assert (c.students_supported, c.per_student_mbps, c.metric, c.basis) == (
        30, 1.5, "download_mbps", ROOM_TEST)
    assert c.note.startswith("ap + meet together (download ap 1 + meet 0.5; upload ap 0.2): "
                             "1.5 Mbps per student (download); room test job-1 at ")
    alone = room_capacity(AP, [cap], [])
    assert alone[0].students_supported == 45


def test_a_profile_without_per_student_needs_has_no_capacity() -> None:
    rtt = replace(need("download_mbps", 10.0), per_student=False, scope="site")
    assert room_capacity(profile("x", rtt), [RoomCapacity("R1", "j", T0, 45.0, 1.0, 3)],
                         []) == []
    assert combined_capacity([profile("x", rtt)], [], []) == []
