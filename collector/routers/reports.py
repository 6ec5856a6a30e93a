"""``POST /api/v1/reports``: authenticated, size-limited, idempotent batch ingest."""

from __future__ import annotations

from fastapi import APIRouter, Request

from agent.wire import IngestResponse, ReportBatch
from collector.deps import AgentDep, SettingsDep
from collector.errors import Problem, wire_problem
from collector.ratelimit import check_agent_rate
from collector.services.enrolment import AgentIdentity
from collector.services.ingest import Upload
from collector.services.ingest_queue import ingest_queue
from collector.streaming import read_limited
from collector.wire_validation import WireError, parse_batch

router = APIRouter(prefix="/api/v1", tags=["agents"])


def _parse(body: bytes, who: AgentIdentity) -> ReportBatch:
    try:
        batch = parse_batch(body)
    except WireError as exc:
        raise wire_problem(exc, "report batch") from exc
    foreign = [f"report {r.report_id}: agent_id {r.agent_id!r} is not this credential's agent"
               for r in batch.reports if r.agent_id != who.agent_id]
    if foreign:
        raise Problem(403, f"reports belong to another agent (credential is {who.agent_id})",
                      foreign)
    return batch


@router.post("/reports", response_model=IngestResponse, openapi_extra={
    "requestBody": {"required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}}}})
async def ingest_reports(request: Request, who: AgentDep,
                         settings: SettingsDep) -> IngestResponse:
    """Store a batch of reports (body: ``ReportBatch``, see ``agent/wire.schema.json``).

    Already-stored ``report_id``s are listed in ``duplicates`` and not stored again.
    """
    check_agent_rate(request, who.agent_id, "POST /api/v1/reports")
    body = await read_limited(request, settings.max_body_bytes, "report batch")
    batch = _parse(body, who)
    queue = ingest_queue(request.app.state, request.app.state.engine,
                         settings.ingest_concurrency, settings.ingest_group_reports)
    return await queue.store(Upload(who, batch))
