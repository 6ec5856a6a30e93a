import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from agent.spool import Spool
from agent.uploader import MAX_RETRY_AFTER_S, Backoff, Uploader, retry_after_s
from tests.agent.test_spool import results

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> httpx.Client:
    return httpx.Client(base_url="http://collector.test", transport=httpx.MockTransport(handler))


def spool_with(tmp_path: Path, n: int) -> tuple[Spool, list[str]]:
    spool = Spool(tmp_path)
    return spool, [str(spool.add("agent-1", "0", results()).report_id) for _ in range(n)]


def ids_in(request: httpx.Request) -> list[str]:
    return [r["report_id"] for r in json.loads(request.content)["reports"]]


def test_accepted_and_duplicates_are_removed(tmp_path: Path):
    spool, ids = spool_with(tmp_path, 3)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        got = ids_in(request)
        return httpx.Response(200, json={"accepted": got[:2], "duplicates": got[2:]})

    outcome = Uploader(client(handler), spool, "cred", batch_size=20).drain()
    assert (outcome.ok, outcome.accepted, outcome.duplicates, outcome.pending) == \
        (True, 2, 1, 0)
    assert spool.pending() == []
    [request] = seen
    assert request.url.path == "/api/v1/reports"
    assert request.headers["Authorization"] == "Bearer cred"
    body = json.loads(request.content)
    assert body["schema_version"] == 1
    assert ids_in(request) == ids  # oldest first


def test_batches_of_the_configured_size(tmp_path: Path):
    spool, ids = spool_with(tmp_path, 5)
    batches: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        batches.append(ids_in(request))
        return httpx.Response(200, json={"accepted": ids_in(request), "duplicates": []})

    assert Uploader(client(handler), spool, "c", batch_size=2).drain().accepted == 5
    assert batches == [ids[0:2], ids[2:4], ids[4:5]]


def test_unlisted_report_stays(tmp_path: Path):
    spool, ids = spool_with(tmp_path, 2)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"accepted": [ids[0]], "duplicates": []})

    outcome = Uploader(client(handler), spool, "c").drain()
    assert [i.report_id for i in spool.pending()] == [ids[1]]
    assert outcome.notes[0] == "collector did not confirm 1 report(s); they stay spooled"


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_keep_everything(tmp_path: Path, status: int):
    spool, ids = spool_with(tmp_path, 2)
    outcome = Uploader(client(lambda r: httpx.Response(status, json={"detail": "db down"})),
                       spool, "c").drain()
    assert not outcome.ok and outcome.retryable
    assert outcome.error == f"collector answered {status}: db down"
    assert [i.report_id for i in spool.pending()] == ids


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_passed_on_to_the_caller(tmp_path: Path, status: int):
    spool, ids = spool_with(tmp_path, 1)
    answer = httpx.Response(status, json={"detail": "slow down"}, headers={"Retry-After": "42"})
    outcome = Uploader(client(lambda r: answer), spool, "c").drain()
    assert outcome.retry_after_s == 42.0 and outcome.retryable
    assert outcome.error == f"collector answered {status}: slow down (Retry-After 42 s)"
    assert [i.report_id for i in spool.pending()] == ids


def test_retry_after_on_a_500_or_absent_is_not_invented(tmp_path: Path):
    spool, _ = spool_with(tmp_path, 1)
    for answer in (httpx.Response(500, headers={"Retry-After": "42"}), httpx.Response(429)):
        def reply(request: httpx.Request, answer: httpx.Response = answer) -> httpx.Response:
            return answer

        assert Uploader(client(reply), spool, "c").drain().retry_after_s is None


def test_retry_after_values():
    now = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)
    assert retry_after_s("120", now) == 120.0
    assert retry_after_s(" 0 ", now) == 0.0
    assert retry_after_s("Fri, 27 Nov 2026 09:01:30 GMT", now) == 90.0
    assert retry_after_s("Fri, 27 Nov 2026 08:00:00 GMT", now) == 0.0  # already past
    assert retry_after_s("9999999", now) == MAX_RETRY_AFTER_S  # capped: hours, not months
    assert retry_after_s("-5", now) is None and retry_after_s("soon", now) is None
    assert retry_after_s("²", now) is None and retry_after_s("1.5", now) is None  # not RFC
    assert retry_after_s(None, now) is None and retry_after_s("", now) is None


def test_connection_error_keeps_everything(tmp_path: Path):
    spool, ids = spool_with(tmp_path, 1)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    outcome = Uploader(client(refuse), spool, "c").drain()
    assert outcome.error == "collector unreachable: ConnectError: [Errno 111] Connection refused"
    assert [i.report_id for i in spool.pending()] == ids


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credential_keeps_spooling(tmp_path: Path, status: int):
    spool, ids = spool_with(tmp_path, 2)
    outcome = Uploader(client(lambda r: httpx.Response(status, json={"detail": "revoked"})),
                       spool, "c").drain()
    assert not outcome.retryable
    assert outcome.error is not None
    assert outcome.error.startswith(f"collector refused the agent credential ({status}: revoked)")
    assert [i.report_id for i in spool.pending()] == ids


def test_422_quarantines_only_the_bad_report_with_the_reason(tmp_path: Path):
    spool, ids = spool_with(tmp_path, 3)
    bad = ids[1]

    def handler(request: httpx.Request) -> httpx.Response:
        got = ids_in(request)
        if bad in got:
            return httpx.Response(422, json={"detail": "invalid report",
                                             "problems": [f"report {bad}: value -1 is below 0"]})
        return httpx.Response(200, json={"accepted": got, "duplicates": []})

    outcome = Uploader(client(handler), spool, "c").drain()
    assert (outcome.ok, outcome.accepted, outcome.quarantined, outcome.pending) == (True, 2, 1, 0)
    [rejected] = list(spool.rejected_dir.glob("*.json"))
    assert rejected.name.endswith(f"-{bad}.json")
    assert rejected.with_suffix(".reason").read_text() == (
        f"collector rejected the report with HTTP 422: invalid report; "
        f"report {bad}: value -1 is below 0\n")


def test_corrupt_spool_file_is_quarantined_not_sent(tmp_path: Path):
    spool, ids = spool_with(tmp_path, 1)
    spool.pending()[0].path.write_bytes(b"{broken")
    sent: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"accepted": [], "duplicates": []})

    outcome = Uploader(client(handler), spool, "c").drain()
    assert (outcome.quarantined, sent, spool.pending()) == (1, [], [])


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap():
    calls: list[tuple[float, float]] = []

    def top(lo: float, hi: float) -> float:
        calls.append((lo, hi))
        return hi

    backoff = Backoff(base_s=2, cap_s=30, uniform=top)
    delays = [backoff.next_delay() for _ in range(6)]
    assert delays == [2, 4, 8, 16, 30, 30]
    assert calls == [(0.0, 2), (0.0, 4), (0.0, 8), (0.0, 16), (0.0, 30), (0.0, 30)]
    backoff.reset()
    assert backoff.next_delay() == 2


def test_backoff_delays_stay_within_bounds():
    backoff = Backoff(base_s=1, cap_s=10)
    for _ in range(50):
        ceiling = backoff.ceiling()
        assert 0 <= backoff.next_delay() <= ceiling <= 10


def test_backoff_rejects_bad_bounds():
    with pytest.raises(ValueError, match="0 < base_s <= cap_s"):
        Backoff(base_s=5, cap_s=1)
