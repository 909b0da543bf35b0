"""``make bench``: run every ``bench/bench_*.py`` (or those named) and print their figures.

Each benchmark records its figures, with the exact command, in ``docs/benchmarks.md``.
Usage: ``python -m bench [NAME ...]``.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    if not names:
        print("no benchmarks yet")
        return 0
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name}", flush=True)
        asyncio.run(module.main([]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
