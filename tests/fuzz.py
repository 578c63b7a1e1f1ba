"""How hard property tests try: `make test` runs the counts in the tests; `make fuzz`
multiplies them (DMAGENT_FUZZ=N) for a long run."""

import os

FACTOR = max(1, int(os.environ.get("DMAGENT_FUZZ", "1")))


def examples(n):
    return n * FACTOR
