"""The venvs the exca tests run in: exca from PyPI (Tools/exca-fixtures/venv.sh), and a small venv layered on
it that holds only this client, installed with ``pip install -e`` as a user installs it, so the
``casket_exca.pth`` hook the package ships is what turns the switch on."""

from __future__ import annotations

import os
import subprocess
import typing as tp
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CLIENT = HERE.parent
VENV_SH = CLIENT.parent / "exca-fixtures" / "venv.sh"


def exca_python(version: str, extras: str = "core") -> str:
    """The python of exca ``version``'s venv with ``extras`` (core, all, suite: venv.sh); skips when it cannot be
    made."""
    if os.environ.get("CASKET_SKIP_EXCA"):
        pytest.skip("CASKET_SKIP_EXCA is set")
    try:
        out = subprocess.run([str(VENV_SH), version, extras], capture_output=True, text=True, check=True,
                             timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"no exca {version} {extras} venv: {e}\n{getattr(e, 'stderr', '')}")
    python = out.stdout.strip().splitlines()[-1]
    if subprocess.run([python, "-c", "import xxhash, lz4"], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "xxhash", "lz4"],
                       check=True)
    return python


def site_packages(python: str | Path) -> str:
    return subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def layered_venv(version: str, root: Path, extras: str = "core") -> Path:
    """A venv whose own site-packages holds only the client (pip install -e), and sees exca's beside it."""
    base = exca_python(version, extras)
    site = site_packages(base)
    venv = root / f"venv-{version}-{extras}"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    own = site_packages(python)
    # sorts before casket_exca.pth, so exca's numpy, xxhash and lz4 are on the path when the hook runs
    Path(own, "00-exca-site.pth").write_text(site + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "-e",
                    str(CLIENT)], check=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    assert Path(own, "casket_exca.pth").is_file(), "the editable install must put the hook in site-packages"
    return python


_layered: dict[tuple[str, str], Path] = {}


def layered_factory(factory: pytest.TempPathFactory, extras: str = "core") -> tp.Callable[[str], Path]:
    """exca version -> the python of a layered venv with ``extras``, made once per test session (no test
    installs anything into one), for every module's ``layered`` fixture."""
    def get(version: str) -> Path:
        if (version, extras) not in _layered:
            _layered[version, extras] = layered_venv(version, factory.mktemp("exca-venvs"), extras)
        return _layered[version, extras]

    return get
