"""The fuzzing profiles: short (in `make test`, derandomized so CI sees the same cases every
run) and long (`make fuzz`, BLUE_FUZZ_PROFILE=long, random, BLUE_FUZZ_EXAMPLES per test)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("BLUE_FUZZ_PROFILE", "short") == "long"


def examples(short: int, long: int = 200) -> int:
    """How many cases a fuzz test tries: `short` in `make test`, more under `make fuzz`."""
    return int(os.environ.get("BLUE_FUZZ_EXAMPLES", long)) if LONG else short


def profile(short: int) -> settings:
    """Hypothesis settings of a fuzz test; no example database, so no file is left behind and
    a failure is reproduced from the printed example or blob. Health checks are off: examples
    share the test's function-scoped app and database on purpose, and a PostgreSQL round
    trip is slow by Hypothesis's measure."""
    return settings(
        max_examples=examples(short),
        derandomize=not LONG,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )
