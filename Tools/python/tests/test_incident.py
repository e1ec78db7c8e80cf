"""The incident replayed with casket.CacheDict: 8 processes, released together by a barrier, write
the same arrays at the same time. Disk use of blobs must be exactly the unique payload bytes
(1.00x; exca's CacheDict leaves one copy per writer, ~8x: bench/incident.py --compare)."""

import json
import os
import sys
from pathlib import Path

import numpy as np

import casket

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import incident  # noqa: E402


def test_incident_replay_8_processes_same_arrays(tmp_path):
    root = tmp_path / "cache"
    r = incident.replay("casket", root, procs=8, seed=3, count=12, shape=(32, 1024), durability="fsync")
    assert r["keys_readable"] == 12
    assert r["payload_files"] == 12
    assert r["payload_bytes_on_disk"] == r["unique_payload_bytes"] == 12 * 32 * 1024 * 4
    assert r["inflation"] == 1.0
    assert os.listdir(root / "tmp") == []
    # 8 writers, 8 sealed index files, each with every key (the winner rule picks one per key)
    names = sorted(os.listdir(root / "index"))
    assert len(names) == 8
    for name in names:
        lines = (root / "index" / name).read_bytes().splitlines()
        assert json.loads(lines[-1])["sealed"] is True and len(lines) == 13
    cd = casket.CacheDict(root)
    for k, a in incident.make_arrays(3, 12, (32, 1024)).items():
        got = cd[k]
        assert isinstance(got, np.memmap) and not got.flags.writeable
        np.testing.assert_array_equal(got, a)
