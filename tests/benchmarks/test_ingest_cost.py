"""The in-process ingest cost benchmark: its statement parser on a recorded server log, and a
tiny run on a throwaway PostgreSQL that prints a figure for every variant."""

from __future__ import annotations

import json

import pytest

from benchmarks.ingest_cost import VARIANTS, main, statement_times
from tests.pg.server import unavailable_reason

pytestmark = pytest.mark.slow

RECORDED_LOG = """\
2026-11-28 05:41:02.114 UTC [1267] LOG:  duration: 0.412 ms  execute <unnamed>: WITH seen AS \
(SELECT report_id FROM report WHERE report_id = ANY($1))
2026-11-28 05:41:02.121 UTC [1267] LOG:  duration: 9.800 ms  statement: COPY measurement_run \
(report_pk, probe_run_id, agent_id) FROM STDIN (FORMAT BINARY)
2026-11-28 05:41:02.122 UTC [1267] LOG:  duration: 0.050 ms  statement: COMMIT
2026-11-28 05:41:02.140 UTC [1267] LOG:  duration: 10.200 ms  statement: COPY measurement_run \
(report_pk, probe_run_id, agent_id) FROM STDIN (FORMAT BINARY)
2026-11-28 05:41:02.141 UTC [1267] LOG:  duration: 0.002 ms  statement: BEGIN
2026-11-28 05:41:02.150 UTC [1267] LOG:  connection authorized: user=postgres
"""


def test_statement_times_are_per_upload_by_kind_largest_first() -> None:
    assert list(statement_times(RECORDED_LOG, uploads=2).items()) == [
        ("COPY measurement_run", 10.0), ("WITH seen", 0.206), ("COMMIT", 0.025)]  # BEGIN: <0.01


def test_variants_drop_one_measurement_index_or_hash_an_equality_one() -> None:
    assert VARIANTS["base"] == ()
    dropped = [ddl for name, ddl in VARIANTS.items() if name.startswith("without ")]
    assert sorted(d for (d,) in dropped) == [
        "DROP INDEX ix_measurement_run_agent_id", "DROP INDEX ix_measurement_run_report_pk",
        "DROP INDEX ix_measurement_run_room_time",
        "DROP INDEX ix_measurement_run_samples"]
    assert VARIANTS["hash agent_id"] == (
        "DROP INDEX ix_measurement_run_agent_id",
        "CREATE INDEX hx_measurement_run_agent_id ON measurement_run USING hash (agent_id)")
    assert len(VARIANTS) == 1 + 4 + 2


def test_tiny_run_prints_costs_and_statements(capsys: pytest.CaptureFixture[str]) -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    assert main(["--uploads", "4", "--repeat", "1", "--variants", "without agent_id",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["measurements_per_upload"] == 564
    variants = {v["variant"]: v for v in out["variants"]}
    assert list(variants) == ["base", "without agent_id"]
    assert variants["base"]["server_ratio"] == 1.0
    for v in variants.values():
        assert len(v["collector_ms"]) == len(v["server_ms"]) == 1
        assert v["collector_ms"][0] > 0 and v["server_ms"][0] > 0  # our server's tree
    statements = out["statements_ms"]
    assert {"COPY measurement_run", "COPY proberun", "COPY report"} <= set(statements)
    assert statements["COPY measurement_run"] > statements["COPY report"]  # 120 rows, 20
    assert not any(kind.startswith(("CREATE", "ALTER")) for kind in statements)  # timed only
