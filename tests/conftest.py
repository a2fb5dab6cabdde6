"""Shared test configuration: hypothesis profiles.

    quick  the default: few examples per property, so the whole suite runs in about a minute
    ci     deterministic (derandomize) and bounded: the same examples on every run
    dev    explores deeply; opt in with HYPOTHESIS_PROFILE=dev

Choose with the HYPOTHESIS_PROFILE environment variable.
"""
import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow,
                                                       HealthCheck.data_too_large]}
settings.register_profile("quick", max_examples=15, **_COMMON)
settings.register_profile("ci", derandomize=True, max_examples=25, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=200, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))
