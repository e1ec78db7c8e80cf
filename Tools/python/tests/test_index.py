import itertools
import json
import os
import random
import warnings

import numpy as np
import pytest

import casket
from casket import index as index_mod
from casket.index import IndexReader, IndexWriter, entry_line, tombstone_line

H = "0123456789abcdef0123456789abcdef"


def put_line(root, name, obj=None, raw=None):
    with open(root / "index" / name, "ab") as f:
        f.write(raw if raw is not None else json.dumps(obj, separators=(",", ":")).encode() + b"\n")


def setv(key, ts, tag, **extra):
    return {"key": key, "ts": ts, "value": {"#type": "Json", "content": tag}, "blobs": [], **extra}


def winner_tag(reader, key):
    e = reader.get(key)
    return None if e is None else e.value["content"]


def read(store):
    r = IndexReader(store)
    r.refresh()
    return r


# ---------------------------------------------------------------- writer


def test_writer_lines_exact(store, root):
    w = IndexWriter(store)
    blobs = [(H, 12)]
    ts1 = w.append(lambda ts: entry_line("k/1", ts, {"#type": "Bytes", "blob": H, "size": 12}, blobs),
                   blobs, republish=lambda h, s: None)
    ts2 = w.append(lambda ts: tombstone_line("k/1", ts))
    path = w.path
    w.close()
    assert ts2 > ts1
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert lines[0] == (
        b'{"key":"k/1","ts":%d,"value":{"#type":"Bytes","blob":"%s","size":12},"blobs":[["%s",12]]}'
        % (ts1, H.encode(), H.encode())
    )
    assert lines[1] == b'{"key":"k/1","ts":%d,"deleted":true}' % ts2
    seal = json.loads(lines[2])
    assert list(seal) == ["sealed", "ts"] and seal["sealed"] is True and seal["ts"] > ts2
    host, pid, rnd = path.name[: -len(".jsonl")].rsplit("-", 2)
    assert pid == str(os.getpid()) and len(rnd) == 8 and int(rnd, 16) >= 0


def test_ts_strictly_increasing(store, monkeypatch):
    monkeypatch.setattr(index_mod.time, "time_ns", lambda: 1000)
    w = IndexWriter(store)
    tss = [w.append(lambda ts: tombstone_line("k", ts)) for _ in range(5)]
    w.close()
    assert tss == [1000, 1001, 1002, 1003, 1004]


def test_writer_refolded_file_reappends(store, root):
    w = IndexWriter(store)
    w.append(lambda ts: entry_line("a", ts, {"#type": "Json", "content": 1}, []))
    first = w.path
    os.rename(first, str(first) + ".folding")  # compaction takes the file
    w.append(lambda ts: entry_line("b", ts, {"#type": "Json", "content": 2}, []))
    assert w.path != first and w.path.exists()
    assert b'"key":"b"' in w.path.read_bytes()
    w.close()
    r = read(store)
    assert sorted(r.keys()) == ["a", "b"]


def test_writer_republishes_missing_blob(root):
    cd = casket.CacheDict(root)
    arr = np.arange(1000, dtype=np.int32)
    real = IndexWriter._write_line
    swept = []

    def sweeping_write(self, line, *args, **kwargs):  # a GC sweeps the blob between steps 1 and 2
        if b'"key":"x"' in line:
            for dirpath, _d, files in os.walk(root / "blobs"):
                for f in files:
                    os.unlink(os.path.join(dirpath, f))
                    swept.append(f)
        return real(self, line, *args, **kwargs)

    IndexWriter._write_line = sweeping_write
    try:
        with cd.write():
            cd["x"] = arr
    finally:
        IndexWriter._write_line = real
    assert swept
    np.testing.assert_array_equal(casket.CacheDict(root)["x"], arr)


# ---------------------------------------------------------------- winner rule


def test_winner_independent_of_listing_order(store, root, monkeypatch):
    put_line(root, "hostA-1-00000001.jsonl", setv("k", 10, "A10"))
    put_line(root, "hostB-2-00000002.jsonl", setv("k", 10, "B10"))  # same ts: writer id B > A
    put_line(root, "hostA-1-00000001.jsonl", setv("j", 5, "A5-line2"))
    put_line(root, "hostA-1-00000001.jsonl", setv("j", 5, "A5-line3"))  # same ts, same writer: line
    put_line(root, "hostC-3-00000003.jsonl", setv("old", 1, "C1"))
    put_line(root, "hostC-3-00000003.jsonl", setv("old", 0, "C0"))  # later line, older ts: loses
    put_line(root, "hostD-4-00000004.jsonl", {"key": "gone", "ts": 7, "deleted": True})
    put_line(root, "hostA-1-00000001.jsonl", setv("gone", 6, "A6"))
    names = sorted(os.listdir(root / "index"))
    real_listdir = os.listdir
    for perm in itertools.permutations(names):
        monkeypatch.setattr(index_mod.os, "listdir", lambda p, perm=perm: list(perm))
        r = read(store)
        assert winner_tag(r, "k") == "B10"
        assert winner_tag(r, "j") == "A5-line3"
        assert winner_tag(r, "old") == "C1"
        assert r.get("gone") is None and r.winner("gone").deleted
        assert sorted(r.keys()) == ["j", "k", "old"]
    monkeypatch.setattr(index_mod.os, "listdir", real_listdir)


def test_writer_ids_compare_as_bytes(store, root):
    # "Z" (0x5a) < "a" (0x61) as bytes; a case-insensitive comparison would differ
    put_line(root, "a-1-00000000.jsonl", setv("k", 3, "a"))
    put_line(root, "Z-1-00000000.jsonl", setv("k", 3, "Z"))
    assert winner_tag(read(store), "k") == "a"


def test_origin_w_n_overrides(store, root):
    put_line(root, "compact-00000000000000000001-0000abcd.jsonl", setv("k", 5, "compacted", w="zzz-9-ffffffff", n=1))
    put_line(root, "yyy-1-00000000.jsonl", setv("k", 5, "y"))
    put_line(root, "yyy-1-00000000.jsonl", setv("k", 5, "y2"))
    assert winner_tag(read(store), "k") == "compacted"
    put_line(root, "zzz-9-ffffffff.jsonl.folding", setv("k", 5, "same-origin"))  # origin (zzz-9-ffffffff, 1)
    put_line(root, "zzz-9-ffffffff.jsonl.folding", setv("k", 5, "line2"))
    assert winner_tag(read(store), "k") == "line2"


def test_partial_origin_ignored(store, root):
    # w without a valid n: the line keeps its file origin (same as the Swift reader)
    put_line(root, "b-1-00000000.jsonl", setv("k", 5, "b"))
    put_line(root, "a-1-00000000.jsonl", setv("k", 5, "a-with-w", w="zzz"))
    put_line(root, "a-1-00000000.jsonl", setv("j", 5, "a-bad-n", w="zzz", n="1"))
    r = read(store)
    assert winner_tag(r, "k") == "b" and winner_tag(r, "j") == "a-bad-n" and r.problems == []


def test_delete_then_readd(root):
    cd = casket.CacheDict(root)
    with cd.write():
        cd["k"] = 1
    with cd.write():
        del cd["k"]
        assert "k" not in cd
    assert "k" not in casket.CacheDict(root)
    with cd.write():
        cd["k"] = 2
    assert casket.CacheDict(root)["k"] == 2
    with pytest.raises(KeyError):
        with cd.write():
            del cd["nope"]


def test_tombstone_wins_only_when_newer(store, root):
    put_line(root, "a-1-00000000.jsonl", setv("k", 10, "set"))
    put_line(root, "b-1-00000000.jsonl", {"key": "k", "ts": 9, "deleted": True})
    assert winner_tag(read(store), "k") == "set"


# ---------------------------------------------------------------- reading rules


def test_truncated_last_line_ignored_silently(store, root):
    put_line(root, "a-1-00000000.jsonl", setv("k1", 1, "v1"))
    full = json.dumps(setv("k2", 2, "v2"), separators=(",", ":")).encode() + b"\n"
    put_line(root, "a-1-00000000.jsonl", raw=full[:20])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = read(store)
    assert sorted(r.keys()) == ["k1"] and r.problems == []
    put_line(root, "a-1-00000000.jsonl", raw=full[20:])  # the append completes
    r.refresh()
    assert sorted(r.keys()) == ["k1", "k2"] and r.problems == []


@pytest.mark.parametrize(
    "bad",
    [
        b"not json at all",
        b"[1,2,3]",
        b'{"ts":1,"value":{},"blobs":[]}',
        b'{"key":"x","value":{},"blobs":[]}',
        b'{"key":"x","ts":"1","value":{},"blobs":[]}',
        b'{"key":"x","ts":1.5,"value":{},"blobs":[]}',
        b'{"key":"x","ts":1}',
        b'{"key":"x","ts":1,"deleted":false}',
        b'{"key":"","ts":1,"deleted":true}',
        b'{"key":"x","ts":1,"value":{},"blobs":[["../../etc/passwd",3]]}',
        b'{"key":"x","ts":1,"value":{},"blobs":[["0123456789ABCDEF0123456789abcdef",3]]}',
        b'{"key":"x","ts":1,"value":{},"blobs":[["0123456789abcdef0123456789abcdef",-1]]}',
        b'{"key":"x","ts":1,"value":{},"blobs":[["0123456789abcdef0123456789abcdef",true]]}',
        b'{"key":"x","ts":NaN,"deleted":true}',
        b'{"key":"x","ts":9223372036854775808,"deleted":true}',
        b'\xff\xfe{"key":"x"}',
    ],
)
def test_malformed_middle_line_reported(store, root, bad):
    name = "a-1-00000000.jsonl"
    put_line(root, name, setv("before", 1, "b"))
    put_line(root, name, raw=b"\n   \n")  # blank lines: silent
    put_line(root, name, raw=bad + b"\n")
    put_line(root, name, setv("after", 2, "a"))
    with pytest.warns(casket.MalformedLineWarning, match=rf"{name}:4:"):
        r = read(store)
    assert sorted(r.keys()) == ["after", "before"]
    assert len(r.problems) == 1 and f"{root / 'index' / name}:4:" in r.problems[0]
    assert "x" not in r.keys()


def test_bad_hash_in_value_tree_never_builds_a_path(root):
    put_line(root, "a-1-00000000.jsonl",
             {"key": "evil", "ts": 1, "value": {"#type": "Bytes", "blob": "../../etc/passwd", "size": 3}, "blobs": []})
    cd = casket.CacheDict(root)
    assert "evil" in cd
    with pytest.raises(casket.ValueFormatError, match="bad blob hash"):
        cd["evil"]


def test_non_index_files_ignored(store, root):
    put_line(root, "a-1-00000000.jsonl.tmp", setv("tmp", 1, "x"))
    put_line(root, "README", setv("readme", 1, "x"))
    put_line(root, "a-1-00000000.jsonl", setv("k", 1, "x"))
    assert read(store).keys() == ["k"]


# ---------------------------------------------------------------- incremental refresh


def test_incremental_refresh_reads_only_new_bytes(store, root):
    name = "a-1-00000000.jsonl"
    for i in range(200):
        put_line(root, name, setv(f"k{i}", i + 1, "x" * 50))
    put_line(root, "b-1-00000000.jsonl", setv("b", 1, "y"))
    r = read(store)
    size_a = (root / "index" / name).stat().st_size
    size_b = (root / "index" / "b-1-00000000.jsonl").stat().st_size
    assert r.bytes_read == size_a + size_b
    before = r.bytes_read
    r.refresh()
    assert r.bytes_read == before  # nothing new: nothing read
    new = json.dumps(setv("new", 1000, "n"), separators=(",", ":")).encode() + b"\n"
    put_line(root, name, raw=new)
    r.refresh()
    assert r.bytes_read - before == len(new)
    assert r.offsets()[name] == size_a + len(new)
    assert "new" in r.keys() and r.full_reads == 0


def test_rename_to_folding_keeps_state_and_deletion_rereads(store, root):
    put_line(root, "a-1-00000000.jsonl", setv("a", 1, "x"))
    put_line(root, "b-1-00000000.jsonl", setv("b", 1, "y"))
    r = read(store)
    before = r.bytes_read
    os.rename(root / "index" / "a-1-00000000.jsonl", root / "index" / "a-1-00000000.jsonl.folding")
    r.refresh()
    assert r.bytes_read == before and r.full_reads == 0 and sorted(r.keys()) == ["a", "b"]
    os.unlink(root / "index" / "a-1-00000000.jsonl.folding")
    r.refresh()
    assert r.full_reads == 1 and r.keys() == ["b"]


def test_replaced_file_is_reread(store, root):
    p = root / "index" / "a-1-00000000.jsonl"
    put_line(root, p.name, setv("a", 1, "x"))
    r = read(store)
    tmp = root / "index" / "new.jsonl.tmp"
    tmp.write_bytes(json.dumps(setv("z", 1, "z"), separators=(",", ":")).encode() + b"\n")
    os.replace(tmp, p)
    r.refresh()
    assert r.keys() == ["z"]


def test_random_interleaving_matches_brute_force(store, root):
    rng = random.Random(7)
    lines = []
    for i in range(300):
        f = f"w{rng.randrange(5)}-1-00000000.jsonl"
        key = f"k{rng.randrange(20)}"
        ts = rng.randrange(50)
        obj = {"key": key, "ts": ts, "deleted": True} if rng.random() < 0.3 else setv(key, ts, i)
        put_line(root, f, obj)
        lines.append((f, obj))
    counts = {}
    best = {}
    for f, obj in lines:
        counts[f] = counts.get(f, 0) + 1
        order = (obj["ts"], f[: -len(".jsonl")].encode(), counts[f])
        if obj["key"] not in best or order > best[obj["key"]][0]:
            best[obj["key"]] = (order, obj)
    r = read(store)
    expected = {k: o["value"]["content"] for k, (_, o) in best.items() if not o.get("deleted")}
    assert {k: winner_tag(r, k) for k in r.keys()} == expected


def array_line(key, ts, blob=H, size=32, dtype="float64", shape="4", blobs=None, tail=""):
    blobs = f'[["{blob}",{size}]]' if blobs is None else blobs
    return (f'{{"key":"{key}","ts":{ts},"value":{{"#type":"MemmapArray","blob":"{blob}","size":{size},'
            f'"dtype":"{dtype}","shape":[{shape}]}},"blobs":{blobs}}}{tail}\n').encode()


def test_array_lines_load_without_the_json_scanner_and_keep_every_verdict(store, root, monkeypatch):
    """The common line of an array is taken from one pattern match, not parsed by the JSON scanner; lines
    that only look like one (ts or size outside int64, leading zeros, an escape, other blobs) still get the
    general path's verdict, and line numbers (origins) stay those of the file."""
    scanned = []
    real_scan = index_mod._SCAN

    def counting_scan(text, at):
        scanned.append(text[at:text.index("\n", at)])
        return real_scan(text, at)

    monkeypatch.setattr(index_mod, "_SCAN", counting_scan)
    lines = [
        array_line("a", 5),  # 1: the fast path
        array_line("b", 1 << 63),  # 2: ts outside int64: malformed
        array_line("c", 7, size=1 << 63),  # 3: size outside int64: malformed
        array_line("d", "07"),  # 4: not JSON: malformed
        array_line("e\\u00e9", 8),  # 5: an escape: the scanner, valid
        array_line("f", 9, blobs="[]"),  # 6: other blobs: the scanner, valid
        array_line("g", -3, shape="", tail=" \r"),  # 7: the fast path, shape [], trailing blanks
        array_line("a", 4),  # 8: older than line 1
        array_line("h", 10, shape="2,0,3", dtype="<u2"),  # 9: the fast path
    ]
    put_line(root, "w1.jsonl", raw=b"".join(lines))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = read(store)
    assert [p.split(":")[1] for p in r.problems] == ["2", "3", "4"], r.problems
    assert sorted(r.keys()) == ["a", "eé", "f", "g", "h"]
    assert len(scanned) == 5 and all(s.startswith(('{"key":"b"', '{"key":"c"', '{"key":"d"', '{"key":"e', '{"key":"f"'))
                                     for s in scanned), scanned
    for key, lineno in (("a", 1), ("g", 7), ("h", 9)):
        entry = r.get(key)
        assert (entry.writer, entry.line) == ("w1", lineno)
        assert entry.value == json.loads(lines[lineno - 1])["value"] and entry.blobs == json.loads(lines[lineno - 1])["blobs"]
    assert r.get("h").value["shape"] == [2, 0, 3] and r.get("g").value["shape"] == [] and r.get("a").ts == 5


def view_of(store, monkeypatch=None, block_pass=True):
    """(keys, {key: Entry fields}, problems, {key: whether the block pass took its winner}) of a new reader,
    with the block pass or without it (every line through the JSON scanner and the per-line checks: the
    general path). An entry is made when asked for, and then takes the compact slot's place."""
    if not block_pass:
        monkeypatch.setattr(index_mod, "_ARRAY_ROWS", lambda text: [])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = read(store)
    finally:
        if not block_pass:
            monkeypatch.undo()
    compact = {k: type(v) is tuple for k, v in r._best.items()}
    fields = {k: (e.key, e.ts, e.writer, e.line, e.deleted, e.value, e.blobs, e.file)
              for k in r.keys() for e in [r.get(k)]}
    assert not any(type(v) is tuple for v in r._best.values()), "each entry asked for takes its slot's place"
    return sorted(r.keys()), fields, r.problems, compact


def test_block_pass_takes_a_block_of_array_lines_as_the_general_path_does(store, root, monkeypatch):
    """A block of array lines and a seal line is taken by one pattern pass (compact winner slots, no Entry
    made), and every key's entry, made when asked for, is the one the general path makes of its line."""
    lines = [array_line(f"k{i}", 1796145393444391809 + i, blob=f"{i:032x}", size=8 * (i + 1), shape=f"{i + 1}")
             for i in range(50)]
    lines += [array_line("k-shapes", 7, shape="2,0,3", dtype="<u2", size=0), array_line("k-0d", -3, shape="", size=8),
              array_line("k7", 1796145393444391000, tail=" \t\r")]  # an older line of k7: loses
    put_line(root, "w1.jsonl", raw=b"".join(lines) + b'{"sealed":true,"ts":1796145393444399999}\n')
    keys, fields, problems, compact = view_of(store)
    assert all(compact.values()) and len(keys) == 52, "every line taken by the block pass"
    assert (keys, fields, problems) == view_of(store, monkeypatch, block_pass=False)[:3]
    assert fields["k7"][3] == 8 and fields["k-0d"][1:4] == (-3, "w1", 52)
    r = read(store)
    assert r._files["w1.jsonl"].sealed and r._files["w1.jsonl"].lines == 54
    assert r.latest_ts("k3") == 1796145393444391812 and type(r._best["k3"]) is tuple
    assert r.winner("k3").line == 4 and r.get("k3") == r.winner("k3")


def test_block_pass_keeps_the_winner_rule_across_blocks_files_and_repeats(store, root, monkeypatch):
    rng = random.Random(12)
    for f in range(4):
        lines = []
        for _ in range(rng.randrange(20, 60)):
            key, ts = f"k{rng.randrange(30)}", rng.randrange(100)
            lines.append(array_line(key, ts, blob=f"{rng.randrange(1 << 64):032x}"))
        if f == 2:
            lines.append(b'{"key":"k1","ts":99,"deleted":true}\n')  # a tombstone: the block goes line by line
        put_line(root, f"w{f}-1-00000000.jsonl", raw=b"".join(lines))
    fast = view_of(store)
    assert fast[:3] == view_of(store, monkeypatch, block_pass=False)[:3]
    assert any(fast[3].values()), "the test exercises the block pass"


# array lines the block pass must never take as valid when they are not, nor judge otherwise than the per-line
# path: each is put between valid array lines, in a block that would otherwise go whole through the block pass
HOSTILE_ARRAY_LINES = [
    array_line("b", 1 << 63),  # ts outside int64
    array_line("b", -(1 << 63) - 1),
    array_line("b", 9223372036854775807),  # the greatest ts: valid, 19 digits from 9 (the per-line path)
    array_line("b", -9223372036854775808),  # the least: valid
    array_line("b", 7, size=1 << 63),  # size outside int64
    array_line("b", 7, size=9223372036854775807, shape="1152921504606846975"),  # valid
    array_line("b", 12345678901234567890),  # 20 digits
    array_line("b", "07"),  # a leading zero: not JSON
    array_line("b", "-0"),  # valid JSON: the scanner's 0
    array_line("b", "1e3"),  # a float
    array_line("b", 7, size="032"),
    array_line("b", 7, blob=H.upper()),  # not a lowercase hex hash
    array_line("b", 7, blob=H[:31]),
    array_line("b", 7, blobs=f'[["{H[::-1]}",32]]'),  # blobs not the node's: valid, the scanner's
    array_line("b", 7, blobs=f'[["{H}",33]]'),
    array_line("b", 7, blobs=f'[["{H}",32],["{H}",32]]'),
    array_line("b", 7, shape="01"),
    array_line("b", 7, shape="4,"),
    array_line("b", 7, dtype='f8\\"'),
    array_line("", 7),  # an empty key
    array_line("b\\u0000", 7),  # an escape: the scanner's (valid)
    array_line("b\\ud800", 7),  # a lone surrogate: malformed
    array_line("b\x01", 7),  # a control character in a string: not JSON
    array_line("b", 7, tail=" x"),  # trailing garbage
    array_line("b", 7, tail="{}"),
    b"x" + array_line("b", 7),  # leading garbage
    b" " + array_line("b", 7),  # a leading blank: valid JSON
    array_line("b", 7)[:-2] + b",}\n",  # a trailing comma
    array_line("b", 7).replace(b'"ts"', b'"tS"'),
    array_line("b", 7).replace(b'{"key"', b'{"key":"a","key"'),  # a repeated field: the scanner keeps the last
    array_line("b", 7).replace(b'"blobs"', b'"deleted":true,"blobs"'),
    b"\xff" + array_line("b", 7),  # not UTF-8
    b"   ",  # a blank line: silent
    b'{"sealed":true,"ts":5}',  # a seal line in the middle
]


@pytest.mark.parametrize("bad", HOSTILE_ARRAY_LINES, ids=range(len(HOSTILE_ARRAY_LINES)))
def test_a_bad_line_never_slips_through_the_block_pass(store, root, monkeypatch, bad):
    """Each line gets the per-line path's verdict (the same entry, or the same problem with the same line
    number and reason) when it sits among lines the block pass would take; a bad line the block pass let
    through would be a key the general path does not have, or a problem it reports that this one does not."""
    good = [array_line(f"g{i}", 100 + i, blob=f"{i + 1:032x}") for i in range(6)]
    raw = b"".join(good[:3]) + bad.rstrip(b"\n") + b"\n" + b"".join(good[3:])
    put_line(root, "w1.jsonl", raw=raw)
    fast = view_of(store)
    general = view_of(store, monkeypatch, block_pass=False)
    assert fast[:3] == general[:3]
    assert [k for k in fast[0] if k.startswith("g")] == [f"g{i}" for i in range(6)]
    good_only = store.root / "index" / "w2.jsonl"
    good_only.write_bytes(b"".join(good))  # the same block without the bad line goes through the block pass
    assert type(read(store)._best["g5"]) is tuple
