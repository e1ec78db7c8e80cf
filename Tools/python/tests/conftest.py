import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import casket  # noqa: E402


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    casket.init_store(path, durability="none", pack_max=0)  # loose blobs: what most tests look at
    return path


@pytest.fixture
def store(root: Path) -> "casket.Store":
    return casket.Store(root)


def blob_files(root: Path) -> list:
    out = []
    for dirpath, _dirs, files in os.walk(Path(root) / "blobs"):
        out.extend(Path(dirpath) / f for f in files if not f.endswith(".chunks"))  # sidecars are not blobs
    return sorted(out)
