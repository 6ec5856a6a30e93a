"""The collector: enrolment, ingest, readiness verdicts, reports."""
