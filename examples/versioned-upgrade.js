// Versioned upgrade: deploy v2 of an orchestration while v1 instances are running. Running
// instances stay on v1 (their history was written by v1) until they continue as new, which
// moves them to the latest version.
// Run: DATABASE_URL=postgres://... node examples/versioned-upgrade.js
const { PostgresProvider, Client, Runtime } = require('durox');

function* billingV1(ctx, cycle) {
  const invoice = yield ctx.scheduleActivity('Invoice', { cycle, format: 'v1' });
  ctx.setCustomStatus(`cycle ${cycle} on ${ctx.orchestrationVersion}`);
  yield ctx.waitForEvent('next-cycle');
  yield ctx.continueAsNew(cycle + 1);
  return invoice;
}

function* billingV2(ctx, cycle) {
  const invoice = yield ctx.scheduleActivity('Invoice', { cycle, format: 'v2' });
  return { cycle, invoice, version: ctx.orchestrationVersion };
}

function newRuntime(provider, withV2) {
  const runtime = new Runtime(provider, { logLevel: 'warn' });
  runtime.registerActivity('Invoice', async (ctx, request) => `invoice #${request.cycle} (${request.format})`);
  runtime.registerOrchestration('Billing', billingV1); // 1.0.0
  if (withV2) runtime.registerOrchestrationVersioned('Billing', '2.0.0', billingV2);
  return runtime;
}

async function main(provider) {
  const client = new Client(provider);
  const instanceId = `billing-${Date.now()}`;

  const oldDeployment = newRuntime(provider, false);
  await oldDeployment.start();
  await client.startOrchestration(instanceId, 'Billing', 1);
  const before = await client.waitForStatusChange(instanceId, 0, 20, 10000);
  await oldDeployment.shutdown(100);

  const newDeployment = newRuntime(provider, true);
  await newDeployment.start();
  try {
    await client.raiseEvent(instanceId, 'next-cycle', null);
    const result = await client.waitForOrchestration(instanceId, 10000);
    const firstStart = (await client.readExecutionHistory(instanceId, 1))[0];
    return {
      statusBeforeUpgrade: before.customStatus,
      firstExecutionVersion: JSON.parse(firstStart.data).version,
      output: result.output,
    };
  } finally {
    await newDeployment.shutdown(100);
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
