"""How many codes staging's differential check compares, and what it can catch.

The differential resolves sampled codes on the candidate and on the current
release, both serving the same copy of the data, and counts the codes whose
status or ``Location`` differ. It is judged with the canary's exact one-sided
binomial test (``CanaryPolicy.is_clear_failure``) against the staging
baseline, which is zero: the current release answers a code the same way
each time, so a good candidate differs on no code, and the test rejects at
the first difference (``min_errors`` 1; at a null ratio of 0 any difference
has probability 0 < alpha).

What matters then is power: a candidate that differs on a fraction ``p`` of
requests (a bug on some codes, or one that fails at random) shows no
difference in ``n`` requests with probability ``(1 - p) ** n``. Staging
compares enough requests to catch a candidate at the canary's own threshold
(``release.canary_error_floor``: the error ratio the canary would abort on
against a clean baseline) with probability ``release.stage_power``:

    n = ceil(log(1 - power) / log(1 - floor))

459 requests for the defaults (1 %, 99 %); a candidate differing on 0.5 %
then passes about 10 % of the time, on 2 % about 0.01 %. ``release.stage_sample``
set above 0 fixes ``n`` instead, and the record says the power that gives.
With fewer links than ``n`` in the store, codes are asked more than once:
each request is fresh evidence against a release that fails at random.
"""

from __future__ import annotations

import dataclasses
import math

from steadylink.release.canary import CanaryPolicy
from steadylink.settings import ReleaseSettings

STAGING_BASELINE = 0.0


def staging_policy(settings: ReleaseSettings) -> CanaryPolicy:
    """The canary's policy with staging's one change: the first difference is evidence."""
    return dataclasses.replace(CanaryPolicy.from_settings(settings), min_errors=1)


def is_differential_failure(compared: int, mismatches: int, settings: ReleaseSettings) -> bool:
    return staging_policy(settings).is_clear_failure(compared, mismatches, STAGING_BASELINE)


def detection_power(requests: int, settings: ReleaseSettings) -> float:
    """The chance that ``requests`` compared catch a candidate differing on the canary's floor."""
    floor = settings.canary_error_floor
    return 1.0 - (1.0 - floor) ** requests


def differential_sample_size(settings: ReleaseSettings) -> int:
    """Requests to compare: ``release.stage_sample`` if set, else what ``stage_power`` needs."""
    if settings.stage_sample > 0:
        return settings.stage_sample
    floor, power = settings.canary_error_floor, settings.stage_power
    return max(1, math.ceil(math.log(1.0 - power) / math.log(1.0 - floor)))
