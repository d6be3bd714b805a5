"""Process-wide runtime settings shared by every entry point (the ASGI app, the CLI).

**Garbage collector.** CPython's cyclic collector runs a young-generation pass every 700
container allocations and, every 100 of those, a full pass over every live object. A batch
of events allocates hundreds of thousands of short-lived dicts, lists and ORM states (none of
them in reference cycles that plain reference counting would not free), so with the default
thresholds the process spends 15-20% of its CPU walking the same long-lived objects (the
imported modules, the compiled SQL cache, the ORM mappers) again and again (`bench/ingest.py`
and `bench/badges.py` measure it). :func:`tune_gc` raises the thresholds and freezes what
exists at start-up, so those objects are never scanned again. Memory stays bounded: the
collector still runs, only less often, and reference counting frees everything that is not
in a cycle at once.
"""

from __future__ import annotations

import gc

#: (young generation, middle, old) thresholds; CPython's defaults are (700, 10, 10).
GC_THRESHOLDS = (50_000, 50, 100)


def tune_gc() -> None:
    """Raise the collector's thresholds and move every object alive now to the permanent
    generation (``gc.freeze``). Idempotent; call it once the process has imported and built
    what it keeps (the app, its routes, the settings)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
