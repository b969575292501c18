-- Administrative functions: the store's recorded state, the least-privilege rules and the test
-- clock. Conventions: docs/sql.md.
--
-- Least privilege. The role that runs the migrations owns the tables and the functions.
-- Applications may run under a separate role that can only EXECUTE the public procedures:
-- every public procedure runs with its owner's rights (SECURITY DEFINER), and nobody but the
-- owner can touch the tables or call an internal function. How to use it:
-- test/reliability/README.md, "Running under a least-privilege role".
--
-- Three kinds of functions, told apart by name (secure_procedures below enforces it):
-- * internal_*: helpers and trigger functions. SECURITY INVOKER (they only ever run inside a
--   public procedure, as the owner), never executable by the application role: calling one
--   directly would skip the advisory-lock order of the procedure that wraps it.
-- * administrative (schema_version excepted): secure_procedures, grant_execute_role and the
--   test clock hook set_test_clock_offset. SECURITY INVOKER, for the owner only.
-- * every other function is a public procedure called by the TypeScript: SECURITY DEFINER and
--   granted to the application roles.
-- Every public and administrative function gets search_path pinned to "<schema>", pg_catalog,
-- pg_temp. pg_temp must be named LAST: when it is not named at all PostgreSQL searches it FIRST
-- for tables, so a caller could shadow `instances` with a temporary table and have an elevated
-- procedure read or write it. The internal_* helpers pin nothing: they run only inside a public
-- procedure and resolve names in its pinned path. A pinned path costs every call a settings
-- change (about 8 us, some 45 helper calls per orchestration) and keeps PostgreSQL from inlining
-- a one-line SQL helper into the statement that calls it.
-- EXECUTE is revoked from PUBLIC (PostgreSQL grants it by default). Table privileges are revoked
-- from PUBLIC too.

-- schema_version(): the store's recorded state, read by the migration runner on every start
-- (one statement when nothing changed; also by the application role).
-- Locks: none (reads schema_migrations and schema_procedures).
-- Errors: none.
-- Returns: {migration: highest recorded migration version, procedures: sha256 of the procedure
-- files last applied, or null}.
CREATE OR REPLACE FUNCTION schema_version() RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object(
        'migration', (SELECT COALESCE(max(m.version), 0) FROM schema_migrations m),
        'procedures', (SELECT p.hash FROM schema_procedures p))
$$;

-- Applies the rules above to every function of this schema, and grants the public procedures to
-- every application role (a role other than the owner holding USAGE on the schema, i.e. one
-- passed to grant_execute_role), so procedures added by a later build reach it too. Called by
-- the migration runner after every (re)application of the procedures, which resets them.
-- Returns {public, internal, administrative}: the number of functions of each kind.
CREATE OR REPLACE FUNCTION secure_procedures() RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_schema TEXT := current_schema();
    v_function RECORD;
    v_role TEXT;
    v_roles TEXT[];
    v_public INTEGER := 0;
    v_internal INTEGER := 0;
    v_administrative INTEGER := 0;
BEGIN
    SELECT COALESCE(array_agg(a.grantee::regrole::TEXT), ARRAY[]::TEXT[]) INTO v_roles
    FROM pg_namespace n, aclexplode(n.nspacl) a
    WHERE n.oid = v_schema::regnamespace AND a.privilege_type = 'USAGE'
      AND a.grantee <> n.nspowner AND a.grantee <> 0;
    FOR v_function IN
        SELECT p.oid::regprocedure AS signature, p.proname AS name
        FROM pg_proc p
        WHERE p.pronamespace = v_schema::regnamespace AND p.prokind = 'f'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_function.signature);
        IF v_function.name LIKE 'internal\_%' OR v_function.name IN ('secure_procedures', 'grant_execute_role', 'set_test_clock_offset') THEN
            IF v_function.name LIKE 'internal\_%' THEN
                EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER RESET search_path', v_function.signature);
            ELSE
                EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER SET search_path = %I, pg_catalog, pg_temp',
                               v_function.signature, v_schema);
            END IF;
            FOREACH v_role IN ARRAY v_roles LOOP
                EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %s', v_function.signature, v_role);
            END LOOP;
            IF v_function.name LIKE 'internal\_%' THEN
                v_internal := v_internal + 1;
            ELSE
                v_administrative := v_administrative + 1;
            END IF;
        ELSE
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_catalog, pg_temp',
                           v_function.signature, v_schema);
            FOREACH v_role IN ARRAY v_roles LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', v_function.signature, v_role);
            END LOOP;
            v_public := v_public + 1;
        END IF;
    END LOOP;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', v_schema);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM PUBLIC', v_schema);
    RETURN json_build_object('public', v_public, 'internal', v_internal, 'administrative', v_administrative);
END;
$$;

-- Lets p_role call the public procedures of this schema and nothing else: USAGE on the schema
-- and EXECUTE on every public procedure (not the internal or administrative functions). No
-- table, sequence or CREATE privilege is granted. Call it as the schema owner, after migrating.
-- Errors: DX003 when the role does not exist.
-- Returns {role, schema, functions: the number of procedures granted}.
CREATE OR REPLACE FUNCTION grant_execute_role(p_role TEXT) RETURNS json
LANGUAGE plpgsql
AS $$
DECLARE
    v_schema TEXT := current_schema();
BEGIN
    IF p_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role) THEN
        RAISE EXCEPTION 'grant_execute_role: role % does not exist', quote_nullable(p_role) USING ERRCODE = 'DX003';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, p_role);
    RETURN json_build_object('role', p_role, 'schema', v_schema, 'functions', (secure_procedures()->>'public')::INTEGER);
END;
$$;

-- Test hook: shifts the database clock of this schema by p_offset_ms (0 restores real time).
-- Lets tests expire locks and reveal delayed items without sleeping. Returns {nowMs}.
CREATE OR REPLACE FUNCTION set_test_clock_offset(p_offset_ms BIGINT) RETURNS json
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE test_clock SET offset_ms = p_offset_ms WHERE singleton;
    RETURN json_build_object('nowMs', internal_current_time_ms());
END;
$$;
