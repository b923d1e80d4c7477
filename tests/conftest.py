"""Shared test configuration: Hypothesis profiles.

Pick a profile with ``HYPOTHESIS_PROFILE`` (default ``ci``):

* ``dev``: quick local iterations (about 50 examples, default deadline);
* ``ci``: what ``.ci/run`` uses; sized so the refcount property tests take a few seconds
  (no deadline: a loaded CI machine must not turn slowness into a failure);
* ``stress``: long hunts before a release or after touching ``buddysim/refcount``.

The example database lives in ``.hypothesis/`` (git-ignored).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, stateful_step_count=25)
settings.register_profile(
    "ci",
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "stress",
    max_examples=5000,
    stateful_step_count=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
