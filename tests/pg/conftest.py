from tests.pg.plugin import pg_server, pg_url  # noqa: F401 (fixtures)
