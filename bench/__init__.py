"""Benchmarks of the SCIM service, the reference server comparison and the licensing rules.

Run with `make bench` (or `.venv/bin/python -m bench --help`); results go to bench/RESULTS.md.
"""
