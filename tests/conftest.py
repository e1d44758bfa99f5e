"""Shared fixtures: an isolated data folder and small sample data."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` from anywhere imports the repo's engine/
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def studio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PLATE_STUDIO_HOME pointing at a fresh temp folder (everything the app writes goes there)."""
    home = tmp_path / "studio_home"
    home.mkdir()
    monkeypatch.setenv("PLATE_STUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def sample_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small zip of synthetic label-named plate JPEGs (40 images, some `LABEL_1.jpg`). Read-only."""
    from engine.data.sample import make_sample_zip

    return make_sample_zip(tmp_path_factory.mktemp("sample") / "sample.zip", count=40, seed=1)


@pytest.fixture
def make_sample_zip(tmp_path: Path):
    """Factory: make_sample_zip(count=40, seed=1, name="sample.zip") -> a fresh zip in tmp_path."""
    from engine.data.sample import make_sample_zip as make

    def factory(count: int = 40, seed: int = 1, name: str = "sample.zip") -> Path:
        return make(tmp_path / name, count=count, seed=seed)

    return factory
