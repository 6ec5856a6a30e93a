"""Fixtures shared by every test directory: one throwaway PostgreSQL server per session
(``pg_server``, ``pg_url``; they skip with the reason where PostgreSQL is missing)."""

pytest_plugins = ["tests.pg.plugin"]
