-- Least privilege (must stay the LAST migration). How to use it: test/reliability/README.md,
-- "Running under a least-privilege role".
--
-- Model: the role that runs the migrations owns the tables and the procedures. Applications may run
-- under a separate role that can only EXECUTE the procedures: every procedure of the schema runs
-- with its owner's rights (SECURITY DEFINER), and nobody but the owner can touch the tables.
--
-- Rules enforced by secure_procedures() below, for every function of this schema:
-- * SECURITY DEFINER, except the administrative functions (secure_procedures, grant_execute_role)
--   and the test clock hook, which keep the caller's rights.
-- * search_path pinned to "<schema>", pg_catalog, pg_temp. pg_temp must be named LAST: when it is
--   not named at all PostgreSQL searches it FIRST for tables, so a caller could shadow `instances`
--   with a temporary table and have an elevated procedure read or write it.
-- * EXECUTE revoked from PUBLIC (PostgreSQL grants it by default), so only the owner and roles
--   passed to grant_execute_role() may call them. Table privileges are revoked from PUBLIC too.
--
-- A later migration that uses CREATE OR REPLACE FUNCTION resets these attributes (the statement
-- replaces them). So the migration runner calls secure_procedures() after every run that applied
-- a migration; functions created by migrations numbered after this one are covered as well.

CREATE OR REPLACE FUNCTION schema_version() RETURNS INTEGER
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT COALESCE(max(version), 0)::INTEGER FROM schema_migrations
$$;

CREATE OR REPLACE FUNCTION secure_procedures() RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_schema TEXT := current_schema();
    v_function RECORD;
    v_secured INTEGER := 0;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure AS signature, p.proname AS name
        FROM pg_proc p
        WHERE p.pronamespace = v_schema::regnamespace AND p.prokind = 'f'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_function.signature);
        IF v_function.name IN ('secure_procedures', 'grant_execute_role', 'set_test_clock_offset') THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER SET search_path = %I, pg_catalog, pg_temp',
                           v_function.signature, v_schema);
        ELSE
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_catalog, pg_temp',
                           v_function.signature, v_schema);
            v_secured := v_secured + 1;
        END IF;
    END LOOP;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', v_schema);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM PUBLIC', v_schema);
    RETURN json_build_object('securityDefiner', v_secured);
END;
$$;

-- Lets p_role call the procedures of this schema and nothing else: USAGE on the schema and
-- EXECUTE on every SECURITY DEFINER function (not the administrative ones, not the test clock).
-- No table, sequence or CREATE privilege is granted. Call it as the schema owner, after migrating.
CREATE OR REPLACE FUNCTION grant_execute_role(p_role TEXT) RETURNS json
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_schema TEXT := current_schema();
    v_function RECORD;
    v_granted INTEGER := 0;
BEGIN
    IF p_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role) THEN
        RAISE EXCEPTION 'grant_execute_role: role % does not exist', quote_nullable(p_role) USING ERRCODE = 'DX003';
    END IF;
    PERFORM secure_procedures();
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, p_role);
    FOR v_function IN
        SELECT p.oid::regprocedure AS signature
        FROM pg_proc p
        WHERE p.pronamespace = v_schema::regnamespace AND p.prokind = 'f' AND p.prosecdef
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_function.signature, p_role);
        v_granted := v_granted + 1;
    END LOOP;
    RETURN json_build_object('role', p_role, 'schema', v_schema, 'functions', v_granted);
END;
$$;

SELECT secure_procedures();
