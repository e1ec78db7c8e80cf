"""casket.json validation (FORMAT 2): the shared table conformance/configs.json, which the Swift suite
(Tests/CasketTests/StoreConfigTests.swift) checks through the CLI too."""

import json
from pathlib import Path

import pytest

import casket

TABLE = json.loads((Path(__file__).resolve().parents[1] / "conformance" / "configs.json").read_text("utf-8"))


def _write(tmp_path, item):
    root = tmp_path / "s"
    root.mkdir()
    (root / "casket.json").write_bytes((b"\xef\xbb\xbf" if item.get("bom") else b"") + item["text"].encode())
    return root


@pytest.mark.parametrize("item", TABLE["invalid"], ids=lambda item: item["name"])
def test_invalid_config_is_refused_naming_file_and_field(tmp_path, item):
    root = _write(tmp_path, item)
    with pytest.raises(casket.StoreError) as ei:
        casket.Store(root)
    assert ei.value.code == item["code"]
    assert str(root / "casket.json") in str(ei.value)
    if item["field"]:
        assert f'"{item["field"]}"' in str(ei.value)


@pytest.mark.parametrize("item", TABLE["valid"], ids=lambda item: item["name"])
def test_valid_config_opens(tmp_path, item):
    s = casket.Store(_write(tmp_path, item))
    assert (s.compression, s.durability, s.inline_max) == (item["compression"], item["durability"], item["inline_max"])
    assert s.chunks_min == item["chunks_min"]
    assert (s.pack_max, s.pack_size) == (item["pack_max"], item["pack_size"])


def test_init_refuses_an_invalid_inline_max(tmp_path):
    for bad in (-1, True, 1.0, (1 << 20) + 1):
        with pytest.raises(ValueError, match="inline_max"):
            casket.init_store(tmp_path / "s", inline_max=bad)
