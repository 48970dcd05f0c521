"""asv_benchmarks/run_quick.py, the asv-free benchmark runner, on a synthetic suite."""
import importlib.util
import io
import json
import pathlib
import sys
import textwrap

import pytest

RUNNER = pathlib.Path(__file__).resolve().parents[1] / "asv_benchmarks" / "run_quick.py"

SUITE = '''
import os

from ._helper import OFFSET

CALLS = []


class SkipNotImplemented(NotImplementedError):
    pass


class Squares:
    params = ([2, 3], ["a", "b"])
    param_names = ["n", "tag"]
    repeat = 4

    def setup(self, n, tag):
        self.n = n
        CALLS.append(("setup", n, tag))

    def teardown(self, n, tag):
        CALLS.append(("teardown", n, tag))

    def time_square(self, n, tag):
        CALLS.append(("time", n, tag))

    def track_square(self, n, tag):
        return self.n ** 2 + OFFSET

    track_square.unit = "units"

    def track_skip_body(self, n, tag):
        raise SkipNotImplemented("not for this one")


class Budget:
    params = ["x"]
    repeat = (2, 50, 0.0)
    warmup_time = 0

    def time_counted(self, x):
        CALLS.append(("budget", x))


class NoDevice:
    def setup(self):
        raise NotImplementedError("no device here")

    def time_never(self):
        CALLS.append(("never",))

    def track_never(self):
        return 1.0


class Broken:
    def time_fine(self):
        pass

    def track_raises(self):
        raise ZeroDivisionError("boom")


class Cached:
    params = [1]

    def setup_cache(self):
        with open("cache.txt", "w") as f:
            f.write("hello")
        return os.path.abspath("cache.txt")

    def setup(self, path, k):
        self.path = path

    def track_cache_text(self, path, k):
        with open(path) as f:
            return f.read() + str(k)


def track_module_level():
    return 7
'''


@pytest.fixture(scope="module")
def run_quick():
    spec = importlib.util.spec_from_file_location("run_quick_under_test", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def suite_dir(tmp_path, request):
    # A unique package name per test: the runner imports the suite as <package>.<module>.
    package = tmp_path / f"fakebench_{request.node.name.replace('[', '_').replace(']', '_')}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_helper.py").write_text("OFFSET = 100\n")
    (package / "bench_fake.py").write_text(textwrap.dedent(SUITE))
    yield package
    for name in [n for n in sys.modules if n.startswith(package.name)]:
        del sys.modules[name]


def _run(run_quick, suite_dir, *extra):
    out = io.StringIO()
    status = run_quick.main(["bench_fake", "--benchmark-dir", str(suite_dir), *extra],
                            stream=out)
    return status, out.getvalue()


def test_results_skips_and_failures(run_quick, suite_dir, tmp_path):
    path = tmp_path / "out.json"
    status, text = _run(run_quick, suite_dir, "--json", str(path))
    assert status == 1                                   # Broken.track_raises raised
    assert "ZeroDivisionError: boom" in text and "Traceback" in text
    records = {(r["name"].split(".", 1)[1], tuple(r["params"].values())): r
               for r in json.loads(path.read_text())["results"]}

    for n in (2, 3):
        for tag in ("a", "b"):
            square = records[("Squares.track_square", (repr(n), repr(tag)))]
            assert square["status"] == "ok" and square["value"] == n ** 2 + 100
            assert square["unit"] == "units"
            timed = records[("Squares.time_square", (repr(n), repr(tag)))]
            assert timed["status"] == "ok" and len(timed["samples"]) == 4   # class repeat
            assert timed["min"] <= timed["median"]
            skipped = records[("Squares.track_skip_body", (repr(n), repr(tag)))]
            assert (skipped["status"], skipped["reason"]) == ("skipped", "not for this one")

    # (2, 0.0): a zero time budget stops at the minimum of 2 repeats, no warm-up call
    assert len(records[("Budget.time_counted", ("'x'",))]["samples"]) == 2
    for name in ("NoDevice.time_never", "NoDevice.track_never"):
        assert records[(name, ())]["status"] == "skipped"
        assert records[(name, ())]["reason"] == "no device here"
    assert records[("Broken.time_fine", ())]["status"] == "ok"
    assert records[("Broken.track_raises", ())]["status"] == "failed"
    assert records[("Cached.track_cache_text", ("1",))]["value"] == "hello1"
    assert records[("(module).track_module_level", ())]["value"] == 7

    assert "skipped: no device here" in text
    assert "== bench_fake.Squares" in text and "== bench_fake.NoDevice" in text
    assert "n=3, tag='b'" in text


def test_call_sequence_and_repeat_override(run_quick, suite_dir):
    status, text = _run(run_quick, suite_dir, "--filter", r"Squares\.time|Budget",
                        "--repeat", "2")
    assert status == 0
    module = sys.modules[f"{suite_dir.name}.bench_fake"]
    # per combination: setup, warm-up + 2 timed calls, teardown; combinations in product order
    expected = []
    for n in (2, 3):
        for tag in ("a", "b"):
            expected += [("setup", n, tag)] + [("time", n, tag)] * 3 + [("teardown", n, tag)]
    expected += [("budget", "x")] * 2                    # warmup_time = 0: no warm-up
    assert module.CALLS == expected
    assert "never" not in text and "track_square" not in text
    assert "5 ok" in text
