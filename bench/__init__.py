"""Bosun's benchmarks: `python -m bench [NAME]` (DESIGN.md §5).

Each public module here is one benchmark exposing `run() -> dict` and `summary(result) -> str`;
modules whose names start with an underscore are shared helpers. Benchmarks are measurements,
never timed tests: they write `bench/results/NAME.json` and print one line, and a missed target
is recorded there rather than failing the run.
"""
