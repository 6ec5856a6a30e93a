-- A read-only PostgreSQL role for Grafana: it may read what the dashboards show and
-- nothing else (no token or credential hashes, no site salts, no room flag keys, no admin,
-- session, share-link or notification tables), and it cannot write.
--
-- Run it as the owner of the collector's tables, connected to the collector's database:
--     psql -d classprobe -f dashboards/grafana-reader.sql
-- then give the role a password (psql sends it hashed):
--     psql -d classprobe -c '\password classprobe_grafana'
-- Running it again is harmless. After an upgrade that adds tables or columns the
-- dashboards use, run it again.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'classprobe_grafana') THEN
    CREATE ROLE classprobe_grafana LOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO classprobe_grafana', current_database());
END
$$;

ALTER ROLE classprobe_grafana SET default_transaction_read_only = on;
ALTER ROLE classprobe_grafana SET statement_timeout = '30s';

GRANT USAGE ON SCHEMA public TO classprobe_grafana;

-- only the columns the dashboards need from the tables that hold secrets
GRANT SELECT (id, name, created_at) ON site TO classprobe_grafana;
GRANT SELECT (id, site_id, name) ON room TO classprobe_grafana;
GRANT SELECT (id, site_id, room_id, revoked, agent_version, created_at, last_seen,
              clock_offset_s) ON agent TO classprobe_grafana;

-- measurements and what describes them
GRANT SELECT ON report, proberun, measurement, measurement_run, flag, verdictstate
    TO classprobe_grafana;
