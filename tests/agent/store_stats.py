"""A Store's counters, read for tests: what its journal and snapshot hold. The agent itself
never asks (should_compact reads them), so this is not resident code on a board's heap.
"""


def stats(store):
    """journal_bytes, journal_records, snapshot_bytes, generation; recovers first if due."""
    store._ready()
    return {
        "journal_bytes": store._jsize,
        "journal_records": store._count,
        "snapshot_bytes": store._ssize,
        "generation": store._gen,
    }
