"""Python's cyclic garbage collector, tuned for a serving collector process.

An upload is parsed into thousands of small objects (a 20-report batch: ~560
measurements, each a dataclass with its ``__dict__``), and a process holds dozens of
batches in flight. With Python's default young-generation threshold (700 net new
container objects) that set off ~100 collections a second, and the full collections
among them walked every object the process held, the in-flight batches included. On the
load benchmark (PostgreSQL, 1 worker, 20 s) the collector spent ~4 of its ~24 CPU
seconds in the collector: 2,111 young, 192 middle and 17 full collections, the full
ones ~150 ms each.

Almost none of it finds garbage: batches are trees, freed by reference counting the
moment their upload is answered. So a serving process (``collector serve``, the uvicorn
factory :func:`collector.app.app_from_env`), once started:

- freezes what start-up made (modules, SQLAlchemy's metadata, pydantic's schemas) so no
  collection walks it again (:func:`gc.freeze`, meant for exactly this);
- raises the young threshold to ``Settings.gc_young_threshold`` (default 10,000): a
  40 s run of the same benchmark then made ~20 young collections and no full one, at
  the same resident memory (~150 MB). Cyclic garbage is still collected: it never frees
  itself, so it still counts towards the threshold. (Objects frozen at start-up are
  never collected if they later become cyclic garbage; start-up makes few such.)

Tests and embedders that call :func:`collector.app.create_app` keep their process's GC
as it was: tuning is the serving entry points' decision, not the app's. Measured on
CPython 3.11; 3.14's incremental collector counts differently, so re-measure there.
"""

from __future__ import annotations

import gc


def tune_for_serving(young_threshold: int) -> None:
    """Freeze start-up's objects and collect the young generation every
    ``young_threshold`` net new container objects; 0 leaves Python's GC as it is."""
    if young_threshold < 0:
        raise ValueError(f"young_threshold must be >= 0, not {young_threshold}")
    if young_threshold == 0:
        return
    gc.collect()  # what start-up left as garbage goes now, not into the frozen set
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, oldest)
