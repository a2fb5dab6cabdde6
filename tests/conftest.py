"""Shared test configuration: hypothesis profiles.

    quick  the default: few examples per property, so the whole suite runs in about a minute
    ci     deterministic (derandomize) and bounded: the same examples on every run
    dev    explores deeply; opt in with HYPOTHESIS_PROFILE=dev

Choose with the HYPOTHESIS_PROFILE environment variable.

With pytest-xdist (`python -m pytest -q -n auto`) the suite runs in one process per core, so
each process, and every demo it starts, uses one BLAS thread: several multi-threaded BLAS
libraries on the same cores would wait on each other. This is set here, before NumPy is
loaded by the test processes; an explicit setting in the environment is kept. Without
pytest-xdist, or with `-n 0`, the suite runs in one process.
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings  # noqa: E402  (after the BLAS settings)

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow,
                                                       HealthCheck.data_too_large]}
settings.register_profile("quick", max_examples=15, **_COMMON)
settings.register_profile("ci", derandomize=True, max_examples=25, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=200, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


def pytest_configure(config):
    """Under pytest-xdist, hand a worker one test at a time (--maxschedchunk 1) unless told
    otherwise, so that the slow tests, collected first, start at once on separate workers."""
    if getattr(config.option, "maxschedchunk", 0) is None:
        config.option.maxschedchunk = 1


def pytest_collection_modifyitems(items):
    """Tests marked slow first. With one test handed to a worker at a time, the long ones
    then start at once and the short ones fill in around them, so the workers finish
    together."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
