"""An index append that fails part-way (FORMAT 5.5): the writer never appends to that file again and
writes the line once more in a new file, so no later line merges with the broken one."""

import json
import subprocess
import sys
import textwrap

import casket

SCRIPT = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    import casket
    cd = casket.CacheDict(sys.argv[1])
    outcomes = []
    with cd.write():
        cd["k0"] = bytes(100)
        first = cd._writer.path
        limit = os.stat(first).st_size + 20
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            cd["k1"] = bytes([1]) * 100
            outcomes.append("ok")
        except Exception as e:
            outcomes.append(f"error: {e}")
        after = cd._writer.path.name if cd._writer.path else None
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        try:
            cd["k2"] = bytes([2]) * 100
            outcomes.append("ok")
        except Exception as e:
            outcomes.append(f"error: {e}")
    print(json.dumps({"first": first.name, "limit": limit, "after": after, "outcomes": outcomes}))
    """
)


def test_partial_append_continues_in_a_new_file(root):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["outcomes"] == ["ok", "ok"], report
    assert report["after"] != report["first"]
    data = (root / "index" / report["first"]).read_bytes()
    assert len(data) == report["limit"], "never appended to after the failure (not even a seal)"
    assert data.count(b"\n") == 1 and not data.endswith(b"\n")
    r = casket.IndexReader(casket.Store(root), warn=False)
    r.refresh()
    assert sorted(r.keys()) == ["k0", "k1", "k2"] and r.problems == []
    cd = casket.CacheDict(root)
    assert cd["k0"] == bytes(100) and cd["k1"] == bytes([1]) * 100 and cd["k2"] == bytes([2]) * 100
