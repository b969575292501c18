/**
 * Stalls and lock expiry: a worker process paused with SIGSTOP past its lock timeout, mid-turn
 * and mid-activity. Another runtime takes the work over; when the paused process resumes, its
 * late acknowledgement is refused and changes nothing. An activity whose lock is taken away sees
 * `ctx.isCancelled()`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DATABASE_URL,
  durox,
  eventually,
  sleep,
  startRuntime,
  uid,
  type Client,
  type Provider,
  type Runtime,
} from '../e2e/helpers';
import { instanceProblems } from '../chaos/invariants';
import { PgExecutor } from '../../src/postgres/pg-executor';
import { ProcedureProvider } from '../../src/store/procedure-provider';
import { adminConnection, freshSchema } from './support';
import { dropTestSchema } from '../helpers/postgres-harness';

const schema = freshSchema('rel_stall');
let provider: Provider;
let client: Client;
const children: ChildProcess[] = [];

before(async () => {
  provider = await durox.PostgresProvider.connectWithSchema(DATABASE_URL, schema);
  client = new durox.Client(provider);
});

after(async () => {
  for (const child of children) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  await provider.close();
  await dropTestSchema(schema);
});

/** Starts the stall worker and returns a reader of everything it printed so far. */
async function startStallWorker(): Promise<{ child: ChildProcess; output: () => string; exited: Promise<void> }> {
  const child = spawn(process.execPath, [join(__dirname, 'fixtures', 'stall-worker.js'), DATABASE_URL, schema], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await eventually(
    async () => (output.includes('ready') ? true : undefined),
    15_000,
    `the stall worker to start: ${output}`,
  );
  return { child, output: () => output, exited };
}

function survivor(register: (rt: Runtime) => void, workerConcurrency?: number): Promise<Runtime> {
  return startRuntime(provider, register, { workerLockTimeoutMs: 2000, workerConcurrency });
}

test('a worker paused mid-activity past its lock timeout: another takes over, the late ack is refused', async () => {
  const worker = await startStallWorker();
  const id = uid('stall-activity');
  await client.startOrchestration(id, 'SlowJob', 'the job');
  await eventually(
    async () => (worker.output().includes(`activity started ${id}`) ? true : undefined),
    15_000,
    'the activity to start',
  );
  worker.child.kill('SIGSTOP');
  const runtime = await survivor((rt) => {
    rt.registerActivity('Slow', async (_ctx, input: string) => `survivor did ${input}`);
    rt.registerOrchestration('SlowJob', function* (ctx, input: string) {
      return yield ctx.scheduleActivity('Slow', input);
    });
  });
  try {
    const status = await client.waitForOrchestration(id, 30_000);
    assert.equal(status.output, 'survivor did the job');
    worker.child.kill('SIGCONT');
    await eventually(
      async () => (worker.output().includes('activity finished') ? true : undefined),
      15_000,
      'the paused activity to finish',
    );
    await eventually(
      async () => (/activity result discarded|lost its lock/.test(worker.output()) ? true : undefined),
      10_000,
      'the paused worker to report its refused result',
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; the paused worker printed:\n${worker.output()}`);
    });
    const after = await client.getStatus(id);
    assert.equal(after.output, JSON.stringify('survivor did the job'), 'the late result changed nothing');
    const kinds = (await provider.readHistory(id)).map((e) => e.kind);
    assert.equal(kinds.filter((k) => k === 'ActivityCompleted').length, 1);
    assert.deepEqual(await instanceProblems(provider, id), []);
    assert.equal((await provider.getQueueDepths()).workerQueue, 0);
  } finally {
    await runtime.shutdown(100);
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
});

test(
  'a worker paused mid-turn past the orchestration lock: another runs the turn, ' + 'the late ack is refused',
  async () => {
    const worker = await startStallWorker();
    const id = uid('stall-turn');
    await client.startOrchestration(id, 'Stall', 'input');
    await eventually(
      async () => (worker.output().includes(`turn started ${id}`) ? true : undefined),
      15_000,
      'the turn to start',
    );
    worker.child.kill('SIGSTOP');
    const runtime = await survivor((rt) => {
      rt.registerActivity('Quick', async (_ctx, input: string) => `survivor ${input}`);
      rt.registerOrchestration('Stall', function* (ctx, input: string) {
        return yield ctx.scheduleActivity('Quick', `resumed ${input}`);
      });
    });
    try {
      const status = await client.waitForOrchestration(id, 40_000);
      assert.equal(status.output, 'survivor resumed input');
      worker.child.kill('SIGCONT');
      await eventually(
        async () => (/turn discarded, another worker owns the instance now/.test(worker.output()) ? true : undefined),
        15_000,
        'the paused turn to be refused',
      );
      const history = await provider.readHistory(id);
      assert.equal(history.filter((e) => e.kind === 'OrchestrationStarted').length, 1);
      assert.equal(history.filter((e) => e.kind === 'ActivityScheduled').length, 1);
      assert.deepEqual(await instanceProblems(provider, id), []);
      assert.equal((await client.getStatus(id)).output, JSON.stringify('survivor resumed input'));
    } finally {
      await runtime.shutdown(100);
      worker.child.kill('SIGKILL');
      await worker.exited;
    }
  },
);

test('an activity whose lock is taken by another worker sees isCancelled(), and its result is dropped', async () => {
  const seen: string[] = [];
  // One slot, busy with the watched activity: once the clock jumps past the lease, an idle slot of
  // this runtime (woken by the lease's due time) could take the expired item before the thief
  // does and run it a second time (the run-at-least-once the test is not about).
  const runtime = await survivor((rt) => {
    rt.registerActivity('Watch', async (ctx) => {
      seen.push('started');
      const started = Date.now();
      while (!ctx.isCancelled() && Date.now() - started < 15_000) await sleep(50);
      seen.push(ctx.isCancelled() ? 'cancelled' : 'not cancelled');
      return 'watcher result';
    });
    rt.registerOrchestration('Watched', function* (ctx) {
      return yield ctx.scheduleActivity('Watch', null);
    });
  }, 1);
  const admin = await adminConnection();
  const thief = new ProcedureProvider(PgExecutor.fromUrl(DATABASE_URL, 2), schema, 'postgres');
  try {
    const id = uid('stolen');
    await client.startOrchestration(id, 'Watched');
    await eventually(async () => (seen.includes('started') ? true : undefined), 15_000, 'the activity to start');
    // Move this schema's database clock past the lock, then take the item as another worker would.
    // The runtime renews its 2 s lock every second; a renewal landing between the jump and the
    // fetch extends the lock from the new time, so each attempt jumps a minute further.
    let offsetMs = 0;
    const stolen = await eventually(
      async () => {
        offsetMs += 60_000;
        await admin.query(`SELECT "${schema}".set_test_clock_offset(${offsetMs})`);
        return (await thief.fetchWorkItem({ lockTimeoutMs: 30_000, tagFilter: { mode: 'defaultOnly' } })) ?? undefined;
      },
      5000,
      'the expired item to be fetchable',
    );
    await eventually(
      async () => (seen.includes('cancelled') ? true : undefined),
      10_000,
      'the activity to see isCancelled()',
    );
    // Back to real time first, or the completion would become visible only a minute from now.
    await admin.query(`SELECT "${schema}".set_test_clock_offset(0)`);
    await thief.ackWorkItem(stolen.lockToken, {
      type: 'ActivityCompleted',
      instance: id,
      executionId: 1,
      id: stolen.item.id,
      result: JSON.stringify('thief result'),
    });
    const status = await client.waitForOrchestration(id, 15_000);
    assert.equal(status.output, 'thief result');
    assert.deepEqual(seen, ['started', 'cancelled']);
    assert.deepEqual(await instanceProblems(provider, id), []);
  } finally {
    await admin.query(`SELECT "${schema}".set_test_clock_offset(0)`);
    await admin.end();
    await thief.close();
    await runtime.shutdown(100);
  }
});
