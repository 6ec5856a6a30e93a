

def test_a_room_test_spans_its_phases_and_the_gaps() -> None:
    from agent.wire import ROOM_TEST_PHASE_GAP_S, room_test_span_s

    assert room_test_span_s(20.0, 1) == 20.0
    assert room_test_span_s(20.0, 2) == 40.0 + ROOM_TEST_PHASE_GAP_S == 42.0
    assert room_test_span_s(20.0, 0) == 20.0  # never shorter than one phase
