"""Benchmarks of the SCIM service, the reference server comparison and the licensing rules.

Run with `make bench` (or `.venv/bin/python -m bench --help`); results go to bench/RESULTS.md.
`.venv/bin/python -m bench.ab COMMIT` compares this checkout's SCIM creates and lookups with
another commit's, both served at once, for a change smaller than the machine's drift.
"""
