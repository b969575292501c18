/** Conformance suite on the PostgreSQL server from DATABASE_URL (default: local PostgreSQL 15). */
import { defineProviderConformanceTests } from './kit';
import { databaseUrl, postgresFactory } from '../helpers/postgres-harness';

defineProviderConformanceTests(postgresFactory('postgres', databaseUrl));
