/**
 * Shared set-up of the reliability tests: a provider on a fresh schema whose every statement is
 * recorded (to prove that no SQL text is ever built from user input), and an administrative
 * connection for the few checks that must look at the catalog or the tables directly.
 *
 * Test code only: the admin statements below inspect or set up the database (roles, catalog
 * reads); no runtime code path sends anything but procedure calls.
 */
import { randomBytes } from 'node:crypto';
import { Client as PgClient } from 'pg';
import { applyMigrations } from '../../src/store/migrations';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { CountingExecutor } from '../helpers/counting-executor';
import { DATABASE_URL } from '../e2e/helpers';

/** A fresh schema name with a readable prefix. */
export function freshSchema(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** A migrated schema and a provider on it whose statements are recorded. */
export async function recordedProvider(
  prefix: string,
): Promise<{ provider: ProcedureProvider; recorder: CountingExecutor; schema: string }> {
  const schema = freshSchema(prefix);
  const admin = PgExecutor.fromUrl(DATABASE_URL, 2);
  try {
    await applyMigrations(admin, schema);
  } finally {
    await admin.close();
  }
  const recorder = new CountingExecutor(PgExecutor.fromUrl(DATABASE_URL, 6));
  return { provider: new ProcedureProvider(recorder, schema, 'postgres'), recorder, schema };
}

/** Every statement must be a fixed procedure call on `schema` with only placeholders as arguments. */
export function foreignStatements(texts: string[], schema: string): string[] {
  const call = new RegExp(`^SELECT "${schema}"\\.[a-z_]+\\((\\$\\d+(, \\$\\d+)*)?\\) AS result$`);
  return texts.filter((text) => !call.test(text));
}

/** An administrative connection (the test database's superuser). */
export async function adminConnection(url: string = DATABASE_URL): Promise<PgClient> {
  const client = new PgClient({ connectionString: url });
  await client.connect();
  return client;
}

/** `url` with another user and password. */
export function urlAs(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = password;
  return parsed.toString();
}

/** `url` with an application_name, so a test can find (and terminate) only its own backends. */
export function urlWithApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', name);
  return parsed.toString();
}
