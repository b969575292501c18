// Fan-out/fan-in: schedule 100 activities at once, wait for all of them, aggregate.
// Run: DATABASE_URL=postgres://... node examples/fan-out-fan-in.js
const { PostgresProvider, Client, Runtime } = require('durox');

async function main(provider, count = 100) {
  const client = new Client(provider);
  const runtime = new Runtime(provider, { workerConcurrency: 16, logLevel: 'warn' });

  runtime.registerActivity('Square', async (ctx, n) => n * n);

  runtime.registerOrchestration('SumOfSquares', function* (ctx, n) {
    const tasks = [];
    for (let i = 1; i <= n; i++) tasks.push(ctx.scheduleActivity('Square', i));
    const results = yield ctx.all(tasks);
    const failures = results.filter((r) => r.err !== undefined);
    if (failures.length > 0) throw new Error(`${failures.length} squares failed`);
    return results.reduce((sum, r) => sum + r.ok, 0);
  });

  await runtime.start();
  try {
    const instanceId = `fan-out-${Date.now()}`;
    await client.startOrchestration(instanceId, 'SumOfSquares', count);
    const result = await client.waitForOrchestration(instanceId, 60000);
    if (result.status !== 'Completed') throw new Error(result.error);
    return { sum: result.output, instanceId };
  } finally {
    await runtime.shutdown(100);
  }
}

module.exports = { main };

if (require.main === module) {
  (async () => {
    const url = process.env.DATABASE_URL || 'postgres://root@127.0.0.1:5432/test';
    const provider = await PostgresProvider.connectWithSchema(url, 'examples');
    console.log(await main(provider));
    await provider.close();
  })().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
