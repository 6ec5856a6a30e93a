"""The collector's Alembic migrations (``env.py``, ``versions/``) and how to run them
(:mod:`collector.migrations.run`; ``classprobe collector migrate``).

Changing a model needs a new revision (``tests/collector/test_migrations.py`` fails while
the models and the migrations differ)::

    rm -f /tmp/rev.db && classprobe collector migrate --db sqlite:////tmp/rev.db
    python -c "from alembic import command; from collector.migrations.run import \\
    alembic_config; command.revision(alembic_config(url='sqlite:////tmp/rev.db'), \\
    'what changed', autogenerate=True, rev_id='0002')"

then review the new file in ``versions/`` by hand: SQLite gets batch operations
(``render_as_batch``); keep PostgreSQL-only options such as ``postgresql_include``.
"""
