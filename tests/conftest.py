"""Suite-wide settings.

Hypothesis's per-example deadline is a timed assert: on a loaded two-core CI
machine (pytest-xdist runs both cores) pure-Python examples such as e820 text
round trips went past 200 ms and failed.  Speed lives in ``kmemu bench``, so
every property test here runs without a deadline.
"""

from hypothesis import settings

settings.register_profile("kmemu", deadline=None)
settings.load_profile("kmemu")
