"""Helpers the tests share; no tests in here.

pytest puts tests/ on sys.path (tests/ is not a package), so test modules import these as
`from support.cli import run_cli`. Fixtures live in tests/conftest.py instead.
"""
