"""Pure unit tests of the in-memory launch store: launch ids are opaque, expire and are single-use."""

from __future__ import annotations

import time

from demo_ehr.records import LaunchContext, MemoryStore


def test_launch_ids_are_opaque_distinct_and_expire() -> None:
    # A patient id long enough that a random launch id cannot contain it by chance ("p1" was in
    # about one random id in 180: tests/demo_ehr failed once on a clean CI run for that).
    patient = "patient-opaque-0001"
    store = MemoryStore()
    first = store.create_launch(LaunchContext(patient_id=patient))
    second = store.create_launch(LaunchContext(patient_id=patient))
    assert first != second and len(first) >= 20 and patient not in first
    launch = store.live_launch(first)
    assert launch is not None and launch.context.patient_id == patient
    assert launch.expires_at - time.time() > 590  # about ten minutes
    launch.expires_at = time.time() - 1
    assert store.live_launch(first) is None
    used = store.live_launch(second)
    assert used is not None
    used.used = True
    assert store.live_launch(second) is None
    assert store.live_launch("never-issued") is None
