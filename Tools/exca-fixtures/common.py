"""Helpers shared by generate.py and dump_expected.py (stdlib only at import)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# never hard-link these: exca rewrites/creates them in place when reading
_NO_LINK_SUFFIXES = (".jsonl", ".exca-last-use", ".cache_type", ".key", ".txt")


def venv_root() -> Path:
    return Path(os.environ.get("CASKET_VENV_DIR", str(Path.home() / ".cache/casket/venvs")))


def ensure_venv(version: str, handlers: str = "core") -> str:
    """Create/reuse the venv for *version* (via venv.sh); return its python."""
    proc = subprocess.run(
        ["bash", str(HERE / "venv.sh"), version, handlers],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return proc.stdout.strip().splitlines()[-1]


def in_venv_for(version: str) -> bool:
    try:
        from importlib.metadata import version as v

        return v("exca") == version and sys.prefix != sys.base_prefix
    except Exception:
        return False


def copy_cache(src: Path, dst: Path, hardlink_big: bool = True) -> None:
    """Copy a cache folder.  Large immutable payload files (> 1 MiB, not
    info/key/txt files) may be hard-linked: exca's read path only reads them
    (or unlinks them in the orphan sweep, which does not affect the source)."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            s = Path(root) / name
            d = dst / rel / name
            if (
                hardlink_big
                and not name.endswith(_NO_LINK_SUFFIXES)
                and s.stat().st_size > (1 << 20)
            ):
                try:
                    os.link(s, d)
                    continue
                except OSError:
                    pass
            shutil.copy2(s, d)
    shutil.copystat(src, dst)
