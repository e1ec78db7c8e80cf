"""Keys are byte strings (docs/FORMAT.md 5.2 "Keys"): NFC and NFD forms are two keys; a key (or any
string of a line) that is not Unicode text, such as a lone surrogate escape, makes its line malformed."""

import json
import os
import subprocess
import warnings

import pytest

import casket
from casket.index import IndexReader

NFC = "caf\u00e9"
NFD = "cafe\u0301"
BIN = os.environ.get("CASKET_BIN")
needs_bin = pytest.mark.skipif(not BIN or not os.access(BIN, os.X_OK), reason="set CASKET_BIN to run")


def read(store):
    r = IndexReader(store, warn=False)
    r.refresh()
    return r


def test_nfc_and_nfd_are_two_keys(root):
    assert NFC != NFD and NFC.encode() != NFD.encode()
    cd = casket.CacheDict(root)
    with cd.write():
        cd[NFC] = b"nfc value"
        cd[NFD] = b"nfd value"
    fresh = casket.CacheDict(root)
    assert fresh[NFC] == b"nfc value" and fresh[NFD] == b"nfd value"
    assert sorted(fresh.keys()) == [NFD, NFC]
    with fresh.write():
        del fresh[NFC]
    again = casket.CacheDict(root)
    assert list(again.keys()) == [NFD] and again[NFD] == b"nfd value"


@pytest.mark.parametrize(
    "line",
    [
        rb'{"key":"k\ud800","ts":5,"deleted":true}',
        rb'{"key":"k\udc00","ts":5,"deleted":true}',
        rb'{"key":"k\uD800\u0041","ts":5,"deleted":true}',
        rb'{"key":"k","ts":5,"value":{"#type":"Json","content":"\udfff"},"blobs":[]}',
        rb'{"key":"k","ts":5,"deleted":true,"w":"w\ud800","n":1}',
        b'{"key":"k\xff","ts":5,"deleted":true}',
    ],
)
@pytest.mark.parametrize("alone", [True, False])
def test_non_unicode_strings_make_the_line_malformed(store, root, line, alone):
    # alone: the line is the whole read block (slow path); else among valid lines (the block scanner)
    good = b'{"key":"ok","ts":1,"deleted":true}\n'
    data = line + b"\n" if alone else good + line + b"\n" + good
    (root / "index" / "h-1-00000000.jsonl").write_bytes(data)
    r = read(store)
    assert r.winner("k") is None and r.winner("k\ufffd") is None
    assert len(r.problems) == 1, r.problems
    assert f"h-1-00000000.jsonl:{1 if alone else 2}:" in r.problems[0]
    if b"\\u" in line:
        assert "lone surrogate" in r.problems[0] or "not valid JSON" in r.problems[0]


def test_a_valid_surrogate_pair_is_a_key(store, root):
    (root / "index" / "h-1-00000000.jsonl").write_bytes(rb'{"key":"k\ud83d\ude00","ts":5,"deleted":true}' + b"\n")
    r = read(store)
    assert r.problems == [] and r.winner("k\U0001F600") is not None


def test_writing_a_lone_surrogate_key_is_refused(root):
    cd = casket.CacheDict(root)
    with cd.write():
        with pytest.raises(ValueError, match="not valid Unicode"):
            cd["k\ud800"] = b"x"


@needs_bin
@pytest.mark.usefixtures("seal_each_session")
def test_swift_and_python_keep_both_forms_through_compaction_and_gc(root, tmp_path):
    def cli(*args):
        return subprocess.run([BIN, *args, "--store", str(root)], capture_output=True, check=True).stdout

    f = tmp_path / "f"
    f.write_bytes(b"from swift " * 100)
    cli("set", NFC, str(f))
    cd = casket.CacheDict(root)
    with cd.write():
        cd[NFD] = b"from python " * 100
    for stage in ("set", "compact", "gc"):
        if stage == "compact":
            assert json.loads(cli("compact", "--json"))["entries_written"] == 2
        if stage == "gc":
            cli("gc", "--grace", "0", "--offline")
        listed = [line.split(b"\t", 1)[1] for line in cli("ls").splitlines()]
        assert listed == [NFD.encode(), NFC.encode()], stage
        fresh = casket.CacheDict(root)
        assert fresh[NFC] == f.read_bytes() and fresh[NFD] == b"from python " * 100, stage
        assert subprocess.run([BIN, "get", NFD, "--store", str(root)], capture_output=True).stdout == fresh[NFD]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(casket.CacheDict(root).keys()) == [NFD, NFC]
