/**
 * Group fetch on the real PostgreSQL server (docs/runtime.md, "Group fetch"): while one fetch of
 * a runtime's activity slots is out, the slots that ask next wait and go out together in one
 * fetch_work_item_group call. The first fetch is held back by the store wrapper below, so the
 * other slots, which finish their activities meanwhile, are certain to queue behind it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, Runtime } from '../../src/index';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import type { FetchWorkItemOptions, WorkItemLease } from '../../src/provider/contract';
import { sleep } from '../../src/runtime/timing';
import { databaseUrl, dropTestSchema, migrateTestSchema, uniqueSchemaName } from '../helpers/postgres-harness';

const SLOTS = 4;
const WIDTH = 24;
const schema = uniqueSchemaName('perf_group');
const groups: number[] = [];
let singles = 0;
let provider: ProcedureProvider;
let runtime: Runtime;

/** The store, with its first single fetch held back 300 ms and every fetch counted. */
class HeldBackStore extends ProcedureProvider {
  override async fetchWorkItem(options: FetchWorkItemOptions): Promise<WorkItemLease | null> {
    singles += 1;
    if (singles === 1) await sleep(300);
    return super.fetchWorkItem(options);
  }

  override async fetchWorkItemGroup(requests: readonly FetchWorkItemOptions[]): Promise<Array<WorkItemLease | null>> {
    groups.push(requests.length);
    return super.fetchWorkItemGroup(requests);
  }
}

before(async () => {
  await migrateTestSchema(schema);
  provider = new HeldBackStore(PgExecutor.fromUrl(databaseUrl(), 6), schema, 'postgres');
  runtime = new Runtime(provider, { logLevel: 'warn', workerConcurrency: SLOTS, orchestrationConcurrency: 1 });
  runtime.registerActivity('Square', (_ctx, n: number) => n * n);
  runtime.registerOrchestration('Fan', function* (ctx, width: number) {
    const results = (yield ctx.all(
      Array.from({ length: width }, (_, i) => ctx.scheduleActivity('Square', i)),
    )) as unknown[];
    return results.length;
  });
  await runtime.start();
});

after(async () => {
  await runtime.shutdown(500);
  await provider.close();
  await dropTestSchema(schema);
});

test(`the slots of a fan-out of ${WIDTH} fetch together while a fetch is out`, async () => {
  const client = new Client(provider);
  await client.startOrchestration('fan', 'Fan', WIDTH);
  const result = await client.waitForOrchestration('fan', 30_000);
  assert.equal(result.status, 'Completed');
  assert.equal(result.output, WIDTH);
  assert.ok(
    groups.some((size) => size >= 2),
    `no group fetch served two slots or more (groups: [${groups.join(', ')}], single fetches: ${singles})`,
  );
  const calls = singles + groups.length;
  const served = singles + groups.reduce((a, b) => a + b, 0);
  assert.ok(calls < served, `${calls} fetch calls served ${served} slot fetches`);
});
