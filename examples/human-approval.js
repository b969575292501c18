// Human approval: wait for an "approval" event, but give up when a durable timer fires first.
// Run: DATABASE_URL=postgres://... node examples/human-approval.js
const { PostgresProvider, Client, Runtime } = require('durox');

async function main(provider, timeoutMs = 1000) {
  const client = new Client(provider);
  const runtime = new Runtime(provider, { logLevel: 'warn' });

  runtime.registerActivity('NotifyApprover', async (ctx, request) => `notified about ${request.item}`);

  runtime.registerOrchestration('ApprovalWorkflow', function* (ctx, request) {
    yield ctx.scheduleActivity('NotifyApprover', request);
    ctx.setCustomStatus('waiting for approval');
    const winner = yield ctx.race(ctx.waitForEvent('approval'), ctx.scheduleTimer(request.timeoutMs));
    if (winner.index === 1) return { item: request.item, decision: 'expired' };
    return { item: request.item, decision: winner.value.approved ? 'approved' : 'rejected', by: winner.value.by };
  });

  await runtime.start();
  try {
    const stamp = Date.now();
    const approvedId = `approval-${stamp}-a`;
    const expiredId = `approval-${stamp}-b`;
    await client.startOrchestration(approvedId, 'ApprovalWorkflow', { item: 'laptop', timeoutMs: 30000 });
    await client.startOrchestration(expiredId, 'ApprovalWorkflow', { item: 'yacht', timeoutMs });

    // An event is only delivered once the wait is recorded: watch the custom status first.
    await client.waitForStatusChange(approvedId, 0, 20, 10000);
    await client.raiseEvent(approvedId, 'approval', { approved: true, by: 'alice' });

    const approved = await client.waitForOrchestration(approvedId, 10000);
    const expired = await client.waitForOrchestration(expiredId, 10000);
    return { approved: approved.output, expired: expired.output };
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
