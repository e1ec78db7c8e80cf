"""Conformance vectors (Tools/python/conformance/vectors): stores written by the Swift CLI, by this
client and by hand, each with the expected.json its writer recorded. Both implementations must
resolve every field identically: winners (key, ts, origin writer/line, blobs, value tree, size,
type), tombstones, absent keys, the malformed lines reported, the value returned (canonical form)
and the single payload `casket get` prints. Rebuild them with conformance/make_vectors.py."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))

import check  # noqa: E402

BIN = os.environ.get("CASKET_BIN")
VECTORS = check.vector_names()
# every kind of writer must stay covered: removing a vector folder fails the suite
REQUIRED = {"swift-cli", "swift-inline", "swift-compacted", "python-values", "python-lz4-inline", "crafted-winners",
            "python-handlers", "swift-packed", "python-packed"}


def test_vectors_present():
    assert REQUIRED <= set(VECTORS), f"missing vectors: {sorted(REQUIRED - set(VECTORS))}"


def _tree_snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", VECTORS)
def test_python_reads_vector(name):
    vector = check.VECTORS / name
    before = _tree_snapshot(vector)
    errors = check.check_python(vector)
    assert not errors, "\n".join(errors)
    assert _tree_snapshot(vector) == before, "reading must not modify the committed vector"


@pytest.mark.skipif(not BIN or not os.access(BIN, os.X_OK), reason="CASKET_BIN is not set to the casket binary (CI sets it)")
@pytest.mark.parametrize("name", VECTORS)
def test_swift_cli_reads_vector(name):
    vector = check.VECTORS / name
    before = _tree_snapshot(vector)
    errors = check.check_swift(vector, BIN)
    assert not errors, "\n".join(errors)
    assert _tree_snapshot(vector) == before, "the Swift CLI reads a temp copy: the vector must be unchanged"
