"""The settings of the stores the exca switch creates (docs/EXCA.md, "Store settings"): ``CASKET_EXCA_<SETTING>``
and ``casket.exca.install(settings=...)``, checked with casket.json's rules (docs/FORMAT.md 2)."""

from __future__ import annotations

import json
import os
import subprocess
import typing as tp
from pathlib import Path

import numpy as np
import pytest

import casket
import casket.exca
from test_exca_switch import Layered, layered  # noqa: F401  (module fixtures, reused)

# A MapInfra writing a small array (inlined when inline_max allows) and a compressible one, in a job of
# submitit's cluster="local" when asked: the job, a new process, creates the store with its inherited settings.
PIPELINE = """
import json, sys, typing as tp
from pathlib import Path
import numpy as np, pydantic, exca
class Model(pydantic.BaseModel):
    infra: exca.MapInfra = exca.MapInfra()
    @infra.apply(item_uid=str)
    def process(self, items: tp.Iterable[int]) -> tp.Iterator[tp.Any]:
        for item in items:
            yield np.arange(8) if item == 0 else np.zeros(1 << 16, dtype=np.uint8)
model = Model(infra={"folder": sys.argv[1], "cluster": sys.argv[2] or None})
out = list(model.process([0, 1]))
print(json.dumps({"small": out[0].tolist(), "big": int(out[1].sum()), "store": str(model.infra.cache_dict.folder)}))
"""


def _run(python: Path, folder: Path, cluster: str, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASKET_EXCA") and k != "PYTHONPATH"}
    env.update(CASKET_EXCA="1", **variables)
    return subprocess.run([str(python), "-c", PIPELINE, str(folder), cluster], capture_output=True, text=True,
                          env=env, timeout=120)


def _config(store: Path) -> dict:
    cfg = json.loads((store / "casket.json").read_text())
    return {k: cfg[k] for k in ("compression", "durability", "inline_max")}


def _blob_sizes(store: Path) -> list[int]:
    return sorted(p.stat().st_size for p in (store / "blobs").rglob("*") if p.is_file())


@pytest.mark.parametrize("cluster", ["", "local"])
def test_variables_choose_the_settings_of_new_stores(layered: Layered, tmp_path: Path,  # noqa: F811
                                                      cluster: str) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    out = _run(layered("0.6.0"), folder, cluster, CASKET_EXCA_COMPRESSION="lz4", CASKET_EXCA_DURABILITY="none",
               CASKET_EXCA_INLINE_MAX="4096")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["small"] == list(range(8)) and got["big"] == 0
    store = Path(got["store"])
    assert _config(store) == {"compression": "lz4", "durability": "none", "inline_max": 4096}
    # the 64 bytes live in their index line; the 64 KiB of zeros is one lz4 blob, far smaller
    assert len(_blob_sizes(store)) == 1 and _blob_sizes(store)[0] < 4096
    assert casket.CacheDict(store)["0"].tolist() == list(range(8))


def test_without_variables_new_stores_have_init_defaults(layered: Layered, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "cache"
    folder.mkdir()
    out = _run(layered("0.6.0"), folder, "", CASKET_EXCA_COMPRESSION="")  # empty: unset
    assert out.returncode == 0, out.stderr
    store = Path(json.loads(out.stdout.splitlines()[-1])["store"])
    assert _config(store) == {"compression": "none", "durability": "group", "inline_max": 0}
    cfg = json.loads((store / "casket.json").read_text())
    assert (cfg["version"], cfg["pack_max"]) == (2, casket.store.DEFAULT_PACK_MAX) == (2, 1 << 16)
    # nothing inlined, nothing compressed; the 64 bytes packed, the 64 KiB (not below pack_max) a blob file
    assert _blob_sizes(store) == [1 << 16]
    assert len(list((store / "packs").glob("*.pack"))) == 1


@pytest.mark.parametrize("variable,value", [
    ("CASKET_EXCA_INLINE_MAX", "4k"), ("CASKET_EXCA_INLINE_MAX", "4096.0"), ("CASKET_EXCA_INLINE_MAX", "-1"),
    ("CASKET_EXCA_INLINE_MAX", "1048577"), ("CASKET_EXCA_INLINE_MAX", "true"), ("CASKET_EXCA_COMPRESSION", "LZ4"),
    ("CASKET_EXCA_DURABILITY", "sync"),
])
def test_bad_variable_fails_the_first_write_naming_it(layered: Layered, tmp_path: Path, variable: str,  # noqa: F811
                                                     value: str) -> None:
    """Not silently ignored, and not only printed at start (the process would then run on exca's format): the
    switch is on, and the first store it would create raises, naming the variable; nothing is created."""
    folder = tmp_path / "cache"
    folder.mkdir()
    out = _run(layered("0.6.0"), folder, "", **{variable: value})
    assert out.returncode == 1
    assert f"casket.store.StoreError: {variable}={value!r} is not a valid" in out.stderr, out.stderr
    assert "as in casket.json" in out.stderr
    assert not list(folder.rglob("casket.json")) and not list(folder.rglob("*-info.jsonl"))


@pytest.fixture
def switch() -> tp.Iterator[None]:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CASKET_EXCA_")}
    try:
        yield
    finally:
        casket.exca.uninstall()
        for k in [k for k in os.environ if k.startswith("CASKET_EXCA_")]:
            del os.environ[k]
        os.environ.update(saved)


def _write(folder: Path, **kwargs: tp.Any) -> casket.Store:
    cd = casket.CacheDict(folder, **kwargs)
    with cd.write():
        cd["k"] = np.zeros(1000, dtype=np.uint8)
    return cd.store


def test_install_settings_override_variables_and_existing_stores_keep_theirs(tmp_path: Path, switch: None) -> None:
    os.environ["CASKET_EXCA_COMPRESSION"] = "none"
    os.environ["CASKET_EXCA_INLINE_MAX"] = "64"
    casket.exca.install(settings={"compression": "lz4"})
    assert casket.exca.store_settings() == {"compression": "lz4", "inline_max": 64}
    store = _write(tmp_path / "a")
    assert (store.compression, store.durability, store.inline_max) == ("lz4", "group", 64)
    # a CacheDict's own settings win; an existing store keeps what casket.json says
    assert _write(tmp_path / "b", store_settings={"durability": "none"}).durability == "none"
    casket.init_store(tmp_path / "c")
    assert _write(tmp_path / "c").compression == "none"
    casket.exca.uninstall()
    assert casket.exca.store_settings() == {} and _write(tmp_path / "d").compression == "none"


@pytest.mark.parametrize("settings,message", [
    ({"compression": "zstd"}, "compression is 'zstd'; it must be \"none\" or \"lz4\""),
    ({"inline_max": 1.0}, "inline_max is 1.0; it must be an integer from 0 to 1048576"),
    ({"inline_max": True}, "inline_max is True; it must be an integer"),
    ({"hash": "sha256"}, "'hash' is not a store setting"),
])
def test_bad_install_settings_raise_and_leave_the_switch_off(tmp_path: Path, switch: None,
                                                             settings: dict, message: str) -> None:
    with pytest.raises(casket.StoreError) as e:
        casket.exca.install(settings=settings)
    assert e.value.code == "invalid_config"
    assert str(e.value).startswith("casket.exca.install(settings=...): ") and message in str(e.value)
    assert not casket.exca.installed()
    with pytest.raises(casket.StoreError, match="CacheDict\\(store_settings=...\\)"):
        casket.CacheDict(tmp_path, store_settings=settings)


def test_bad_variable_raises_in_install_by_hand(switch: None) -> None:
    os.environ["CASKET_EXCA_DURABILITY"] = "always"
    with pytest.raises(casket.StoreError, match="CASKET_EXCA_DURABILITY='always' is not a valid durability"):
        casket.exca.install()
    assert not casket.exca.installed()


def test_pack_max_variable_chooses_version_1_stores(tmp_path: Path, switch: None) -> None:
    """``CASKET_EXCA_PACK_MAX=0`` gives the stores of older releases (version 1, loose blobs); a value that
    is not casket.json's integer is refused, naming the variable."""
    os.environ["CASKET_EXCA_PACK_MAX"] = "0"
    casket.exca.install()
    store = _write(tmp_path / "a")
    cfg = json.loads((tmp_path / "a" / "casket.json").read_text())
    assert (cfg["version"], "pack_max" in cfg, store.durability) == (1, False, "group")
    assert _blob_sizes(tmp_path / "a") == [1000] and not list((tmp_path / "a" / "packs").iterdir())
    casket.exca.uninstall()
    os.environ["CASKET_EXCA_PACK_MAX"] = "64k"
    with pytest.raises(casket.StoreError, match="CASKET_EXCA_PACK_MAX='64k' is not a valid pack_max"):
        casket.exca.install()
