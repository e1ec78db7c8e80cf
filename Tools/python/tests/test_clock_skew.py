"""A host whose clock runs ahead must not freeze a key (docs/FORMAT.md 5.4): a write made after reading
the key's winner is stamped later than it, so ``cd[k] = v`` and ``del cd[k]`` take effect."""

import json
import time

import pytest

import casket

DAY = 86_400 * 10**9
YEAR = 365 * DAY


def foreign(root, key, ts, blob=None):
    """A line from another host (its own index file) whose clock reads ``ts``."""
    if blob is None:
        obj = {"key": key, "ts": ts, "deleted": True}
    else:
        h, size = blob
        obj = {"key": key, "ts": ts, "value": {"#type": "Bytes", "blob": h, "size": size}, "blobs": [[h, size]]}
    with open(root / "index" / "node-b-1-0000abcd.jsonl", "ab") as f:
        f.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")


@pytest.mark.parametrize("ahead", [DAY, YEAR])
def test_set_and_delete_win_over_a_line_from_the_future(root, ahead):
    cd = casket.CacheDict(root)
    with cd.write():
        cd["set-after-rm"] = b"old"
        cd["rm-after-set"] = b"old"
    assert sorted(cd.keys()) == ["rm-after-set", "set-after-rm"]  # the view is read before the lines below
    h = casket.Store(root).put_bytes(b"future")
    foreign(root, "set-after-rm", time.time_ns() + ahead)
    foreign(root, "rm-after-set", time.time_ns() + ahead, (h, 6))
    with cd.write():
        del cd["rm-after-set"]
    # another process (its view read after the tombstone from the future) sets the key again
    other = casket.CacheDict(root)
    with other.write():
        other["set-after-rm"] = b"new"
    fresh = casket.CacheDict(root)
    assert fresh["set-after-rm"] == b"new"
    assert "rm-after-set" not in fresh
    assert fresh.entry("set-after-rm").ts > time.time_ns() + ahead - DAY


def test_a_set_wins_over_a_line_from_the_future_written_after_the_view_was_read(root):
    cd = casket.CacheDict(root)
    assert "k" not in cd  # the view is read: k is absent
    with cd.write():
        foreign(root, "k", time.time_ns() + YEAR)  # another host deletes k, its clock a year ahead
        cd["k"] = b"v"
    assert casket.CacheDict(root)["k"] == b"v"


def test_a_winner_with_the_greatest_ts_is_refused(root):
    foreign(root, "k", (1 << 63) - 1)
    cd = casket.CacheDict(root)
    with cd.write():
        with pytest.raises(casket.CasketError, match="the greatest a timestamp can be"):
            cd["k"] = b"x"
    assert "k" not in casket.CacheDict(root)
