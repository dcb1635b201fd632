"""A screening worker loads the NLP model, sets its start-up heap aside and collects its young
generation less often before its first bucket."""

from __future__ import annotations

import gc
from datetime import date
from pathlib import Path

from distributed import Client

from smartapp.screening.bucket import YOUNG_THRESHOLD
from smartapp.screening.inputs import resolve_input
from smartapp.screening.pipeline import ScreenOptions, run_screen
from tests.screening.export import write_export
from tests.support import app_cipher


def test_workers_are_settled_by_their_first_bucket(tmp_path: Path, client: Client) -> None:
    assert set(client.run(gc.get_freeze_count).values()) == {0}
    url = f"sqlite:///{tmp_path / 'wl.db'}"
    options = ScreenOptions(as_of=date(2026, 3, 1), database_url=url, cipher=app_cipher(url))
    outcome = run_screen(resolve_input(write_export(tmp_path / "export")), options, client=client)
    assert outcome.patients == 4
    ran = client.run(_ran_a_bucket)
    frozen = client.run(gc.get_freeze_count)
    thresholds = client.run(gc.get_threshold)
    assert any(ran.values())
    assert all(frozen[worker] > 0 for worker, did in ran.items() if did)
    assert all(thresholds[worker][0] == YOUNG_THRESHOLD for worker, did in ran.items() if did)


def _ran_a_bucket() -> bool:
    from smartapp.screening import bucket

    return bucket.settle_worker.cache_info().currsize > 0
