"""What every test shares: the development encryption key goes to a temporary config folder
($XDG_CONFIG_HOME) for the whole session, never to the developer's ~/.config (session-scoped, so
that module- and session-scoped app fixtures see it too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def temporary_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("config-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(home))
        patch.delenv("SECONDLOOK_SECRET_KEY", raising=False)
        patch.delenv("SECONDLOOK_SECRET_KEY_FILE", raising=False)
        yield home
