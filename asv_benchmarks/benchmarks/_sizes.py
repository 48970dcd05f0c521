"""Problem sizes a benchmark run covers.

``RANDLA_BENCH_SIZES`` (comma-separated size names, e.g. ``small``) restricts
the parametrised sizes, so ``RANDLA_BENCH_SIZES=small asv run --quick`` stays
quick; unset, every size runs.
"""
import os


def selected_sizes(names):
    """The size names to run, in their given order (the first one if none match)."""
    chosen = os.environ.get("RANDLA_BENCH_SIZES")
    if not chosen:
        return list(names)
    return [name for name in names if name in chosen.split(",")] or list(names)[:1]
