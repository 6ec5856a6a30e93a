"""A site's timetable: validated with :mod:`agent.timetable`, stored as its JSON document.

The stored document is always the normalised one (``to_document(parse_timetable(...))``),
so what agents pull and what ``GET`` returns is exactly what was validated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlmodel import Session

from agent.timetable import Timetable as TimetableSpec
from agent.timetable import parse_timetable, to_document
from collector.models import Site
from collector.models import Timetable as TimetableRow


def _site_id(site: Site) -> int:
    assert site.id is not None
    return site.id


def set_timetable(session: Session, site: Site, document: Mapping[str, Any],
                  now: datetime) -> dict[str, Any]:
    """Validate ``document`` and store it as the site's timetable; return what was stored.

    Raises :class:`agent.timetable.TimetableError` (nothing stored) when it is not valid.
    """
    normalised = to_document(parse_timetable(document))
    text = json.dumps(normalised, ensure_ascii=False, sort_keys=True)
    row = session.get(TimetableRow, _site_id(site))
    if row is None:
        row = TimetableRow(site_id=_site_id(site), document=text, updated_at=now)
    else:
        row.document, row.updated_at = text, now
    session.add(row)
    session.commit()
    return normalised


def timetable_row(session: Session, site_id: int) -> TimetableRow | None:
    return session.get(TimetableRow, site_id)


def load_document(session: Session, site_id: int) -> dict[str, Any] | None:
    """The site's stored timetable document, or None when it has none."""
    row = timetable_row(session, site_id)
    if row is None:
        return None
    document: dict[str, Any] = json.loads(row.document)
    return document


@lru_cache(maxsize=64)
def _parsed(text: str, where: str) -> TimetableSpec:
    # Timetables are immutable, so one parse serves every batch until the document changes
    # (a new text is a new cache key). Parsing a year of exceptions costs milliseconds.
    return parse_timetable(json.loads(text), where)


def parsed_timetable(document: str, site_id: int) -> TimetableSpec:
    """A stored timetable document of site ``site_id``, parsed (cached by its text)."""
    return _parsed(document, f"site {site_id} timetable")


def load_timetable(session: Session, site_id: int) -> TimetableSpec | None:
    """The site's timetable, parsed (it was valid when stored), or None when it has none."""
    row = timetable_row(session, site_id)
    return None if row is None else parsed_timetable(row.document, site_id)


def clear_timetable(session: Session, site: Site) -> bool:
    """Remove the site's timetable; False when it had none."""
    row = session.get(TimetableRow, _site_id(site))
    if row is None:
        return False
    session.delete(row)
    session.commit()
    return True
