// Eternal orchestration: a periodic job that keeps its history short with continue-as-new.
// Each execution does one round of work, sleeps on a durable timer and starts over with the new
// state. This demo stops after `rounds` rounds; a real one would loop forever.
// Run: DATABASE_URL=postgres://... node examples/eternal.js
const { PostgresProvider, Client, Runtime } = require('durox');

async function main(provider, rounds = 5) {
  const client = new Client(provider);
  const runtime = new Runtime(provider, { logLevel: 'warn' });

  runtime.registerActivity('CheckHealth', async (ctx, round) => `healthy at round ${round}`);

  runtime.registerOrchestration('Monitor', function* (ctx, state) {
    const report = yield ctx.scheduleActivity('CheckHealth', state.round);
    ctx.setCustomStatus(report);
    if (state.round >= state.rounds) return { rounds: state.round, last: report };
    yield ctx.scheduleTimer(state.intervalMs);
    yield ctx.continueAsNew({ ...state, round: state.round + 1 });
  });

  await runtime.start();
  try {
    const instanceId = `monitor-${Date.now()}`;
    await client.startOrchestration(instanceId, 'Monitor', { round: 1, rounds, intervalMs: 20 });
    const result = await client.waitForOrchestration(instanceId, 30000);
    const executions = await client.listExecutions(instanceId);
    return { output: result.output, executions: executions.length, customStatus: result.customStatus };
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
