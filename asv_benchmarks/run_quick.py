"""Run asv benchmark suites without asv (for machines where asv is missing).

Usage, from the repository root::

    PYTHONPATH=. python asv_benchmarks/run_quick.py bench_gpu [bench_lstsq ...]
        [--filter REGEX] [--repeat N] [--json PATH]

Each named module of ``asv_benchmarks/benchmarks/`` is imported as a package
module (so its relative imports work) and walked the way asv walks it:
classes and module-level functions whose names start with ``time_`` or
``track_``; ``params`` / ``param_names`` expanded to their cartesian product;
``setup_cache`` run once (in a temporary working directory) and its value
passed first; ``setup`` and ``teardown`` called around each parameter
combination.  Unlike asv, everything runs in this one process, one parameter
combination after the other, so module-level problem caches are reused.

Timing (``time_*``): one warm-up call (none if the benchmark sets
``warmup_time = 0``), then the repeats, each timed with
``time.perf_counter``; min and median are reported.  The repeats are
``--repeat N`` if given, else the benchmark's ``repeat`` (an int, or asv's
``(min_repeat, max_repeat, max_time)``: at least min_repeat, at most
max_repeat, no new repeat once max_time seconds have passed), else 3.
``track_*`` return values are recorded as they are.  ``peakmem_*``,
``mem_*`` and ``timeraw_*`` benchmarks are listed as not measured.

A setup raising ``NotImplementedError``, or a benchmark raising asv's
``SkipNotImplemented``, marks the benchmark skipped (with the reason).
Any other exception is printed with its traceback and the run goes on; the
exit status is then 1 (0 when every benchmark ran or was skipped).

With ``--json PATH`` every result is written to PATH as soon as it is known,
so a run cut short still leaves the results so far.  ``RANDLA_BENCH_SIZES``
is read by the suites themselves.  Needs nothing beyond the standard library.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import itertools
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import traceback

MEASURED_PREFIXES = ("time_", "track_")
UNMEASURED_PREFIXES = ("peakmem_", "mem_", "timeraw_")
DEFAULT_REPEAT = 3
BENCHMARK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmarks")


def import_suite(name, benchmark_dir=BENCHMARK_DIR):
    """Import ``<benchmark_dir>/<name>.py`` as a module of the benchmark package."""
    benchmark_dir = os.path.abspath(benchmark_dir)
    parent, package = os.path.split(benchmark_dir)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    name = name[:-3] if name.endswith(".py") else name
    return importlib.import_module(f"{package}.{name.rsplit('.', 1)[-1]}")


def _attribute_names(cls):
    """Attribute names of a class in definition order, base classes first."""
    names = []
    for klass in reversed(cls.__mro__):
        for name in vars(klass):
            if name not in names:
                names.append(name)
    return names


def _is_benchmark_name(name):
    return name.startswith(MEASURED_PREFIXES + UNMEASURED_PREFIXES)


def discover(module):
    """[(group name, owner class or None, [benchmark names])] in definition order."""
    groups, functions = [], []
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(value) and value.__module__ == module.__name__:
            names = [n for n in _attribute_names(value)
                     if _is_benchmark_name(n) and callable(getattr(value, n))]
            if names:
                groups.append((name, value, names))
        elif inspect.isfunction(value) and _is_benchmark_name(name):
            functions.append(name)
    if functions:
        groups.append(("(module)", None, functions))
    return groups


def expand_params(owner):
    """Parameter names and the list of parameter combinations, as asv reads them."""
    params = list(getattr(owner, "params", []) or [])
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]
    params = [list(p) for p in params]
    names = [str(n) for n in getattr(owner, "param_names", [])][:len(params)]
    names += [f"param{i + 1}" for i in range(len(names), len(params))]
    return names, list(itertools.product(*params))


def _setting(name, sources, default=None):
    """A benchmark setting as asv looks it up: the function, then its class, then its module."""
    for source in sources:
        if source is not None and hasattr(source, name):
            return getattr(source, name)
    return default


def repeat_plan(sources, override):
    """(min_repeat, max_repeat, max_time) for a timed benchmark."""
    if override is not None:
        return override, override, math.inf
    repeat = _setting("repeat", sources, 0)
    if isinstance(repeat, (tuple, list)):
        low, high, max_time = repeat
        return max(1, int(low)), max(1, int(high)), float(max_time)
    if repeat:
        return int(repeat), int(repeat), math.inf
    return DEFAULT_REPEAT, DEFAULT_REPEAT, math.inf


def time_benchmark(func, args, sources, override):
    """Warm-up call (unless warmup_time == 0), then the repeats: list of seconds."""
    low, high, max_time = repeat_plan(sources, override)
    start = time.perf_counter()
    if _setting("warmup_time", sources) != 0:
        func(*args)
    samples = []
    while len(samples) < high:
        if len(samples) >= low and time.perf_counter() - start > max_time:
            break
        t0 = time.perf_counter()
        func(*args)
        samples.append(time.perf_counter() - t0)
    return samples


def _is_skip(exc):
    return any(klass.__name__ == "SkipNotImplemented" for klass in type(exc).__mro__)


def _format_seconds(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _format_params(names, combo):
    return ", ".join(f"{n}={v!r}" for n, v in zip(names, combo))


def _format_value(record):
    status = record["status"]
    if status == "ok" and record["kind"] == "time":
        return (f"min {_format_seconds(record['min'])}  median "
                f"{_format_seconds(record['median'])}  ({len(record['samples'])} runs)")
    if status == "ok":
        value = record["value"]
        text = f"{value:.4g}" if isinstance(value, float) else repr(value)
        unit = record.get("unit")
        return f"{text} {unit}" if unit else text
    return f"{status}: {record['reason']}" if record.get("reason") else status


class Runner:
    """Runs the benchmarks of several modules, printing rows and collecting records."""

    def __init__(self, pattern=None, repeat=None, json_path=None, stream=None):
        self.pattern = re.compile(pattern) if pattern else None
        self.repeat = repeat
        self.json_path = json_path
        self.stream = stream or sys.stdout
        self.records = []
        self.failed = False
        self._caches = {}          # setup_cache function -> (value, directory)
        self._temporary = []
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def print(self, *parts):
        print(*parts, file=self.stream, flush=True)

    def run_module(self, module):
        for group, owner, names in discover(module):
            full = [f"{module.__name__.rsplit('.', 1)[-1]}.{group}.{n}" for n in names]
            selected = [(n, f) for n, f in zip(names, full)
                        if self.pattern is None or self.pattern.search(f)]
            if selected:
                self._run_group(module, group, owner, selected)

    def _run_group(self, module, group, owner, selected):
        self.print(f"\n== {module.__name__.rsplit('.', 1)[-1]}.{group}")
        source = owner if owner is not None else module
        param_names, combos = expand_params(source)
        cache_args, cache_dir, cache_error = self._setup_cache(owner)
        cwd = os.getcwd()
        if cache_dir:
            os.chdir(cache_dir)
        try:
            for combo in combos:
                self._run_combo(owner, module, selected, param_names, combo,
                                cache_args, cache_error)
        finally:
            os.chdir(cwd)

    def _setup_cache(self, owner):
        """(leading args, working directory, error text) of the owner's setup_cache."""
        func = getattr(owner, "setup_cache", None) if owner is not None else None
        if func is None:
            return (), None, None
        key = (func.__module__, func.__qualname__)
        if key not in self._caches:
            directory = tempfile.mkdtemp(prefix="run_quick_")
            self._temporary.append(directory)
            cwd = os.getcwd()
            os.chdir(directory)
            try:
                self._caches[key] = ((func(owner()),), directory, None)
            except NotImplementedError as exc:
                self._caches[key] = ((), directory, ("skipped", str(exc)))
            except Exception:
                text = traceback.format_exc()
                self.print(f"setup_cache failed:\n{text}")
                self._caches[key] = ((), directory, ("failed", "setup_cache raised"))
            finally:
                os.chdir(cwd)
        return self._caches[key]

    def _run_combo(self, owner, module, selected, param_names, combo, cache_args,
                   cache_error):
        args = cache_args + tuple(combo)
        instance = owner() if owner is not None else None
        hooks = instance if instance is not None else module
        error = cache_error
        if error is None:
            try:
                if hasattr(hooks, "setup"):
                    hooks.setup(*args)
            except NotImplementedError as exc:
                error = ("skipped", str(exc) or type(exc).__name__)
            except Exception:
                self.print(f"setup({_format_params(param_names, combo)}) failed:\n"
                           f"{traceback.format_exc()}")
                error = ("failed", "setup raised")
        try:
            for name, full in selected:
                func = getattr(hooks, name)
                record = {"name": full, "params": dict(zip(param_names, map(repr, combo)))}
                if error is not None:
                    record.update(status=error[0], reason=error[1],
                                  kind="time" if name.startswith("time_") else "track")
                else:
                    sources = (func, owner, module)
                    record.update(self._measure(name, func, args, sources))
                self._report(record, param_names, combo)
        finally:
            if error is None and hasattr(hooks, "teardown"):
                try:
                    hooks.teardown(*args)
                except Exception:
                    self.print(f"teardown failed:\n{traceback.format_exc()}")
                    self.failed = True

    def _measure(self, name, func, args, sources):
        if name.startswith(UNMEASURED_PREFIXES):
            return {"kind": name.split("_", 1)[0], "status": "not measured",
                    "reason": "run_quick measures time_ and track_ only"}
        kind = "time" if name.startswith("time_") else "track"
        try:
            if kind == "time":
                samples = time_benchmark(func, args, sources, self.repeat)
                return {"kind": kind, "status": "ok", "samples": samples,
                        "min": min(samples), "median": statistics.median(samples)}
            value = func(*args)
            if hasattr(value, "item") and callable(value.item):   # numpy / CuPy scalars
                value = value.item()
            return {"kind": kind, "status": "ok", "value": value,
                    "unit": _setting("unit", sources)}
        except Exception as exc:
            if _is_skip(exc):
                return {"kind": kind, "status": "skipped", "reason": str(exc)}
            self.print(f"{name} raised:\n{traceback.format_exc()}")
            return {"kind": kind, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}

    def _report(self, record, param_names, combo):
        if record["status"] == "failed":
            self.failed = True
        self.records.append(record)
        short = record["name"].rsplit(".", 1)[-1]
        self.print(f"  {short:<36} {_format_params(param_names, combo):<40} "
                   f"{_format_value(record)}")
        self.write_json()

    def write_json(self):
        if not self.json_path:
            return
        document = {"machine": platform.node(), "python": sys.version.split()[0],
                    "started": self.started, "bench_sizes": os.environ.get("RANDLA_BENCH_SIZES"),
                    "results": self.records}
        partial = self.json_path + ".tmp"
        with open(partial, "w") as f:
            json.dump(document, f, indent=1, default=repr)
        os.replace(partial, self.json_path)

    def close(self):
        import shutil
        for directory in self._temporary:
            shutil.rmtree(directory, ignore_errors=True)
        self._temporary.clear()


def main(argv=None, stream=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", help="benchmark modules, e.g. bench_gpu")
    parser.add_argument("--filter", help="regular expression on module.Class.benchmark")
    parser.add_argument("--repeat", type=int, help="timed repeats per benchmark "
                        "(default: the benchmark's own repeat, else 3)")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--benchmark-dir", default=BENCHMARK_DIR,
                        help="package directory holding the modules (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    runner = Runner(args.filter, args.repeat, args.json, stream)
    try:
        for name in args.modules:
            try:
                module = import_suite(name, args.benchmark_dir)
            except Exception:
                runner.print(f"importing {name} failed:\n{traceback.format_exc()}")
                runner.failed = True
                continue
            runner.run_module(module)
    finally:
        runner.close()
        runner.write_json()
    counts = {}
    for record in runner.records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    runner.print("\n" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(main())
