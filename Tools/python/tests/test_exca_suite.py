"""exca's own test suite on Casket (issue 11 point 6, docs/EXCA.md "exca's own test suite").

The test modules shipped inside the exca wheel run twice in one run, at the same time (two processes on two
cores): once on plain exca, once with ``CASKET_EXCA=1`` in a venv layered on the same exca. Every test that
passes on exca must pass on Casket, except those in ``exca_suite_exceptions.txt``: tests that read exca's
private attributes or list exca's files, one line each with the reason. An excepted test that passes on
Casket, or that exca no longer has, fails the run too, so the list stays true.

Run by hand for the per-module figures: ``.venv/bin/python Tools/python/tests/test_exca_suite.py 0.6.0``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import typing as tp
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # excavenv, when run as a script

from excavenv import exca_python, layered_venv, site_packages  # noqa: E402

HERE = Path(__file__).resolve().parent
EXCEPTIONS = HERE / "exca_suite_exceptions.txt"
# every test module the wheel ships: issue 11 point 6 names exca/cachedict/test_cachedict.py, exca/test_map.py,
# exca/test_localmap.py and exca/steps/test_*.py; the others (handlers, DumpContext, TaskInfra, ...) run too,
# since the switch is on in every process of the run, for about 40 s more a version
MODULES = ("exca/**/test_*.py",)
NEVER = "exca/test_safeguard.py::test_header"  # rewrites every .py file under site-packages
SKIPPED = ("exca/test_safeguard.py",)  # NEVER's module: checks exca's own sources, not its behaviour
REASONS = ("private:", "files:")  # the only reasons a test may be excepted for
# exca's timing tests (ratios of two timings in one process): under the other pass's load they can fail on
# either side, so one that passed on exca and failed on Casket is run again alone, once
TIMED = ("exca/steps/test_perf.py",)


@dataclasses.dataclass
class Pass:
    """One pytest run over exca's modules: each test id's outcome, and its message when it did not pass."""

    outcomes: dict[str, str]
    messages: dict[str, str]
    seconds: float
    rerun: tuple[str, ...] = ()  # TIMED tests run again alone


def read_exceptions(version: str, path: Path = EXCEPTIONS) -> dict[str, str]:
    """``VERSION TEST_ID | REASON`` lines (ids may hold spaces, never `` | ``); ``#`` starts a comment."""
    out: dict[str, str] = {}
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        head, sep, reason = raw.partition(" | ")
        line_version, _, test_id = head.partition(" ")
        if not sep or not test_id or not reason.startswith(REASONS):
            raise ValueError(f"{path}:{number}: expected 'VERSION TEST_ID | private: ...' or '... | files: ...',"
                             f" got {raw!r}")
        if line_version == version:
            if test_id in out:
                raise ValueError(f"{path}:{number}: {test_id!r} is listed twice for exca {version}")
            out[test_id] = reason
    return out


def _test_id(case: ET.Element) -> str:
    """``exca/x/test_y.py::Class::test_z[param]`` from an xunit1 testcase (``file``, ``classname``, ``name``)."""
    file = case.get("file", "")
    module = file.removesuffix(".py").replace("/", ".")
    cls = (case.get("classname") or "")[len(module) + 1:]
    return "::".join(p for p in (file, cls, case.get("name", "")) if p)


def parse_junit(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    rank = {"passed": 0, "skipped": 1, "failure": 2, "error": 3}
    for case in ET.parse(path).iter("testcase"):
        test_id = _test_id(case)
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped") and rank[child.tag] > rank[outcome]:
                outcome, message = child.tag, (child.get("message") or "").splitlines()[0][:300] if child.get(
                    "message") else ""
        if rank[outcome] >= rank.get(outcomes.get(test_id, "passed"), 0):  # a teardown error after a pass
            outcomes[test_id] = outcome
            messages[test_id] = message
    return outcomes, messages


def _start(python: Path | str, switch: bool, work: Path, site: Path, files: list[str]) -> tuple[subprocess.Popen, Path]:
    xml = work / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("CASKET_EXCA", "PYTHONPATH")}
    env["PYTHONPATH"] = str(HERE / "plugins")  # exca_suite_cpus: both runs see at least 4 CPUs
    if switch:
        env["CASKET_EXCA"] = "1"
    cmd = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "junit_family=xunit1",
           f"--junitxml={xml}", f"--basetemp={work / 'tmp'}", f"--rootdir={site}", "-p", "exca_suite_cpus", "--deselect", NEVER, *files]
    log = (work / "pytest.log").open("w")
    return subprocess.Popen(cmd, cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT), xml


def run_both(exca: str | Path, casket: str | Path, work: Path, modules: tp.Sequence[str] = MODULES,
             site: tp.Optional[Path] = None) -> tuple[Pass, Pass]:
    """exca's modules on plain exca and with the switch, in parallel; each in its own tmp folder. Both read
    the test modules from exca's venv (the layered one sees its site-packages), or from ``site``."""
    site = Path(site_packages(exca)) if site is None else site
    files = sorted({str(p.relative_to(site)) for pattern in modules for p in site.glob(pattern)} - set(SKIPPED))
    assert files, f"no exca test modules {list(modules)} in {site}"
    passes = []
    t0 = time.monotonic()
    started = []
    for name, python, switch in (("exca", exca, False), ("casket", casket, True)):
        (work / name).mkdir(parents=True)
        started.append(_start(python, switch, work / name, site, files))
    for proc, xml in started:
        try:
            proc.wait(timeout=1200)
        finally:
            if proc.poll() is None:
                proc.kill()
        if not xml.is_file():
            log = (xml.parent / "pytest.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"pytest (exit {proc.returncode}) wrote no report {xml}:\n{log}")
        outcomes, messages = parse_junit(xml)
        passes.append(Pass(outcomes, messages, time.monotonic() - t0))
    on_exca, on_casket = passes
    timed = [t for t, o in on_exca.outcomes.items() if o == "passed" and module_of(t) in TIMED
             and on_casket.outcomes.get(t) != "passed"]
    if timed:
        (work / "rerun").mkdir()
        proc, xml = _start(casket, True, work / "rerun", site, timed)
        proc.wait(timeout=600)
        outcomes, messages = parse_junit(xml)
        on_casket.outcomes.update(outcomes)
        on_casket.messages.update(messages)
        on_casket.rerun = tuple(timed)
    return on_exca, on_casket


def module_of(test_id: str) -> str:
    return test_id.split("::")[0]


def table(exca: Pass, casket: Pass, excepted: dict[str, str]) -> str:
    rows = ["| module | passed on exca | passed on Casket | excepted | failing |", "| --- | ---: | ---: | ---: | ---: |"]
    totals = [0, 0, 0, 0]
    for module in sorted({module_of(t) for t in exca.outcomes}):
        ids = [t for t in exca.outcomes if module_of(t) == module]
        on_exca = [t for t in ids if exca.outcomes[t] == "passed"]
        counts = [len(on_exca), sum(casket.outcomes.get(t) == "passed" for t in ids),
                  sum(t in excepted for t in on_exca),
                  sum(casket.outcomes.get(t) != "passed" and t not in excepted for t in on_exca)]
        totals = [a + b for a, b in zip(totals, counts)]
        rows.append(f"| `{module}` | " + " | ".join(map(str, counts)) + " |")
    rows.append("| all | " + " | ".join(map(str, totals)) + " |")
    return "\n".join(rows)


def verdict(exca: Pass, casket: Pass, excepted: dict[str, str]) -> list[str]:
    """What is wrong, one line each: a regression, an exception that is no longer true, a stale exception."""
    problems = []
    for test_id, outcome in sorted(exca.outcomes.items()):
        got = casket.outcomes.get(test_id, "missing")
        if outcome == "passed" and got != "passed" and test_id not in excepted:
            problems.append(f"passes on exca, {got} on Casket: {test_id}: {casket.messages.get(test_id, '')}")
    for test_id in sorted(excepted):
        if test_id not in exca.outcomes:
            problems.append(f"excepted but exca has no such test (remove it from {EXCEPTIONS.name}): {test_id}")
        elif casket.outcomes.get(test_id) == "passed":
            problems.append(f"excepted but passes on Casket (remove it from {EXCEPTIONS.name}): {test_id}")
    return problems


SWITCHED = "import casket.exca, exca.map, casket; print(casket.exca.installed(), exca.map.CacheDict is casket.CacheDict)"


@pytest.mark.parametrize("version", ["0.6.0", "0.5.29"])
def test_exca_suite_passes_on_casket(version: str, tmp_path: Path) -> None:
    excepted = read_exceptions(version)
    exca = exca_python(version, "suite")
    casket = layered_venv(version, tmp_path, "suite")
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "CASKET_EXCA": "1"}
    switched = subprocess.run([str(casket), "-c", SWITCHED], capture_output=True, text=True, env=env)
    assert switched.stdout.split() == ["True", "True"], switched  # the second pass really runs on Casket
    on_exca, on_casket = run_both(exca, casket, tmp_path / "runs")
    print(f"\nexca {version}'s own tests ({on_casket.seconds:.0f} s):\n{table(on_exca, on_casket, excepted)}"
          + "".join(f"\nrun again alone: {t}: {on_casket.outcomes[t]}" for t in on_casket.rerun))
    passed = [t for t, o in on_exca.outcomes.items() if o == "passed"]
    assert len(passed) > 100, f"exca's own run passed only {len(passed)} tests: the suite did not run"
    assert not (problems := verdict(on_exca, on_casket, excepted)), "\n".join(problems)


def test_exceptions_list_is_well_formed(tmp_path: Path) -> None:
    """The list may hold only tests that read exca's private attributes or list exca's files."""
    assert read_exceptions("0.6.0") and read_exceptions("0.5.29")
    bad = tmp_path / "bad.txt"
    bad.write_text("0.6.0 exca/test_map.py::test_x | slow on Casket\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: expected 'VERSION TEST_ID \| private: \.\.\.'"):
        read_exceptions("0.6.0", bad)
    bad.write_text("0.6.0 exca/a.py::t[ x] | files: a\n0.6.0 exca/a.py::t[ x] | private: b\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: 'exca/a.py::t\[ x\]' is listed twice"):
        read_exceptions("0.6.0", bad)


def test_verdict_catches_regressions_and_stale_exceptions() -> None:
    exca = Pass({"m.py::a": "passed", "m.py::b": "passed", "m.py::c": "passed", "m.py::d": "failure"}, {}, 0)
    casket = Pass({"m.py::a": "passed", "m.py::b": "failure", "m.py::c": "passed", "m.py::d": "failure"},
                  {"m.py::b": "AssertionError: 1 == 2"}, 0)
    assert verdict(exca, casket, {}) == ["passes on exca, failure on Casket: m.py::b: AssertionError: 1 == 2"]
    assert verdict(exca, casket, {"m.py::b": "files: x"}) == []
    assert verdict(exca, casket, {"m.py::b": "files: x", "m.py::c": "private: y", "m.py::gone": "files: z"}) == [
        f"excepted but passes on Casket (remove it from {EXCEPTIONS.name}): m.py::c",
        f"excepted but exca has no such test (remove it from {EXCEPTIONS.name}): m.py::gone",
    ]
    assert "| `m.py` | 3 | 2 | 1 | 0 |" in table(exca, casket, {"m.py::b": "files: x"})


FLAKY = """
import os
from pathlib import Path

def test_ratio():  # fails once on the switched-on side, as a timing ratio under load would
    flag = Path(os.environ["EXCA_SUITE_FLAG"])
    if os.environ.get("CASKET_EXCA") and not flag.exists():
        flag.touch()
        assert False, "too slow under load"
"""


def test_timed_tests_run_again_alone_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TIMED test that passed on exca and failed on Casket is run again alone, and counts as it does
    then; any other test that fails on Casket is not run again."""
    site = tmp_path / "site"
    for module in ("exca/steps/test_perf.py", "exca/test_other.py"):
        (site / module).parent.mkdir(parents=True, exist_ok=True)
        (site / module).write_text(FLAKY.replace("EXCA_SUITE_FLAG", "FLAG_" + Path(module).stem.upper()))
        for package in (site / module).parents:
            if package == site:
                break
            (package / "__init__.py").touch()
    monkeypatch.setenv("FLAG_TEST_PERF", str(tmp_path / "perf.flag"))
    monkeypatch.setenv("FLAG_TEST_OTHER", str(tmp_path / "other.flag"))
    on_exca, on_casket = run_both(sys.executable, sys.executable, tmp_path / "runs", MODULES, site)
    assert on_exca.outcomes == {"exca/steps/test_perf.py::test_ratio": "passed",
                                "exca/test_other.py::test_ratio": "passed"}
    assert on_casket.rerun == ("exca/steps/test_perf.py::test_ratio",)
    assert on_casket.outcomes == {"exca/steps/test_perf.py::test_ratio": "passed",
                                  "exca/test_other.py::test_ratio": "failure"}
    assert verdict(on_exca, on_casket, {}) == [
        "passes on exca, failure on Casket: exca/test_other.py::test_ratio: AssertionError: too slow under load"]


if __name__ == "__main__":  # the figures of docs/EXCA.md, with the messages of what does not pass
    version = sys.argv[1] if len(sys.argv) > 1 else "0.6.0"
    modules = sys.argv[2:] or MODULES
    with tempfile.TemporaryDirectory(prefix="exca-suite-") as tmp:
        casket_python = layered_venv(version, Path(tmp), "suite")
        a, b = run_both(exca_python(version, "suite"), casket_python, Path(tmp) / "runs", modules)
        excepted = read_exceptions(version)
        print(f"exca {version}: both passes in {b.seconds:.0f} s\n{table(a, b, excepted)}")
        for test_id in b.rerun:
            print(f"run again alone: {test_id}: {b.outcomes[test_id]}")
        for test_id in sorted(b.outcomes):
            if b.outcomes[test_id] != "passed" or test_id in excepted:
                print(f"{'excepted ' if test_id in excepted else ''}exca={a.outcomes.get(test_id)} "
                      f"casket={b.outcomes[test_id]} {test_id}: {b.messages.get(test_id, '')}")
