"""Benchmark harness for the bot (issue 5): `python -m bench.run`."""
