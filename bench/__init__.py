"""Benchmarks: one module per benchmark, ``bench_<name>.py`` with ``async def main(args)``."""
