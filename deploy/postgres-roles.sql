-- Roles for the Service Portal's database: the operations guide's "PostgreSQL Security".
--
-- Run by a superuser, connected to the portal's database, with psql 15 or later (\getenv):
--   docker-compose.production.yml mounts it into /docker-entrypoint-initdb.d/, so the postgres image
--   runs it once, when it creates an empty data directory (with POSTGRES_DB's database);
--   elsewhere: PORTAL_DB_OWNER_PASSWORD=... PORTAL_DB_PASSWORD=... psql -d portal -f deploy/postgres-roles.sql
-- It can be run again at any time (it creates what is missing and resets the rest), e.g. after
-- `flask backup restore` or after migrations were once applied by another role.
--
-- Two roles, neither a superuser, neither allowed to create databases or roles, replicate or bypass
-- row-level security:
--   PORTAL_DB_OWNER (default portal_owner) owns schema public and every table in it. Only migrations
--     (`flask db upgrade`, the compose `migrate` service) and restores sign in as this role.
--   PORTAL_DB_USER (default portal_app) is what the web, workers and scheduler sign in as: CONNECT,
--     USAGE on the schema, SELECT/INSERT/UPDATE/DELETE on the tables and USAGE/SELECT on the sequences.
--     It cannot create, alter or drop anything.
-- The guide grants CREATE ON SCHEMA public to the application's role itself, because its migrations
-- run as that role. Here CREATE goes to the owner role instead: a process serving the internet that
-- can create (and, owning them, drop) tables is what this hardening is meant to take away. The guide's
-- other grants (CONNECT, USAGE) stay as written; the DML and sequence grants are what an application
-- role that no longer owns the tables needs. Backups (pg_dump, run by the backup worker as this role)
-- need only SELECT on tables and sequences.
-- SSL (`ssl = on`, ssl_cert_file, ssl_key_file) is server configuration, not SQL: see README.md
-- "Deployment"; clients ask for it with ?sslmode=require (or verify-full) in DATABASE_URL.

\set ON_ERROR_STOP on
\set owner_role portal_owner
\set app_role portal_app
\getenv owner_role PORTAL_DB_OWNER
\getenv app_role PORTAL_DB_USER
\getenv owner_password PORTAL_DB_OWNER_PASSWORD
\getenv app_password PORTAL_DB_PASSWORD

\if :{?owner_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'PORTAL_DB_OWNER_PASSWORD must be set (the migration role''s password)'; END $$;
\endif
\if :{?app_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'PORTAL_DB_PASSWORD must be set (the application role''s password)'; END $$;
\endif

BEGIN;

-- The roles: created when missing, then (re)set to exactly these attributes.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner_role') AS owner_missing,
       NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') AS app_missing \gset
\if :owner_missing
CREATE ROLE :"owner_role";
\endif
\if :app_missing
CREATE ROLE :"app_role";
\endif
ALTER ROLE :"owner_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT
  PASSWORD :'owner_password';
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT
  PASSWORD :'app_password';

-- The database: only these two roles (and superusers) may connect. The owner may also create a
-- schema: a restore drops schema public and the dump creates it again.
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO :"app_role";
GRANT CONNECT, TEMPORARY, CREATE ON DATABASE :"DBNAME" TO :"owner_role";

-- The schema: owned by the owner role (so migrations create in it and a restore may drop it); nobody
-- else may create in it (PostgreSQL before 15 let every role create in public).
ALTER SCHEMA public OWNER TO :"owner_role";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_role";

-- Tables that exist already (migrations applied by another role before this ran) change hands, so
-- the owner role can migrate them further and the app role gets no more than the grants below.
SELECT set_config('portal.owner_role', :'owner_role', true) AS owner_setting \gset
DO $$
DECLARE
  item record;
BEGIN
  FOR item IN
    SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_setting('portal.owner_role'))
       -- a sequence owned by a table column follows its table
       AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE item.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                   item.name, current_setting('portal.owner_role'));
  END LOOP;
  FOR item IN
    SELECT t.oid::regtype AS name FROM pg_type t
     WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd')
       AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = current_setting('portal.owner_role'))
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO %I', item.name, current_setting('portal.owner_role'));
  END LOOP;
END
$$;

-- What the application may do with the tables and sequences there are now...
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
-- ...and with every one the owner role creates later (each migration). Not limited to schema public:
-- a default limited to a schema would be dropped with it by a restore.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

COMMIT;
