import shutil
import subprocess

import pytest
import xxhash

import casket
from casket.store import hash_bytes, is_well_formed_hash


def test_empty_known_answer():
    assert hash_bytes(b"") == "99aa06d3014798d86001c324468d497f" == casket.EMPTY_HASH


def test_streaming_equals_one_shot():
    data = bytes(range(256)) * 5000
    h = xxhash.xxh3_128()
    for i in range(0, len(data), 4097):
        h.update(data[i : i + 4097])
    assert h.hexdigest() == hash_bytes(data) == hash_bytes(memoryview(data))


@pytest.mark.skipif(shutil.which("xxhsum") is None, reason="xxhsum not installed")
@pytest.mark.parametrize("data", [b"", b"a", b"abc", b"casket" * 1000, bytes(range(256)) * 17])
def test_matches_xxhsum_H2(tmp_path, data):
    p = tmp_path / "f"
    p.write_bytes(data)
    out = subprocess.run(["xxhsum", "-H2", str(p)], capture_output=True, text=True, check=True).stdout
    assert out.split()[0].split("_")[-1] == hash_bytes(data)


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "99AA06D3014798D86001C324468D497F",
        "99aa06d3014798d86001c324468d497",
        "99aa06d3014798d86001c324468d497f0",
        "99aa06d3014798d86001c324468d497f\n",
        "99aa06d3014798d86001c324468d49/f",
        "",
        None,
        12,
        b"99aa06d3014798d86001c324468d497f",
    ],
)
def test_bad_hashes_rejected(store, bad):
    assert not is_well_formed_hash(bad)
    with pytest.raises(ValueError):
        store.blob_path(bad)
    with pytest.raises(ValueError):
        store.get_bytes(bad)


def test_good_hash_accepted():
    assert is_well_formed_hash(casket.EMPTY_HASH)
