"""Benchmarks run by hand (issue 7): not tests, no pass/fail, each prints a table.

Run them from the repository root, e.g. ``python -m tests.bench.intercom_calls --help``.
"""
