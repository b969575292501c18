// Written exactly as a duroxide-node user writes it; only the package name differs
// (`require('duroxide')` becomes `require('durox')`).
// Run: DATABASE_URL=postgres://... node examples/duroxide-user.js
const { PostgresProvider, Client, Runtime } = require('durox');

async function main(provider) {
  const client = new Client(provider);
  const runtime = new Runtime(provider, { dispatcherPollIntervalMs: 50 });

  runtime.registerActivity('ValidateOrder', async (ctx, order) => {
    ctx.traceInfo(`validating order ${order.id}`);
    if (!order.items || order.items.length === 0) throw new Error('order has no items');
    return { valid: true, total: order.items.reduce((sum, item) => sum + item.price * item.qty, 0) };
  });
  runtime.registerActivity('ChargePayment', async (ctx, { orderId, amount }) => `payment-${orderId}-${amount}`);
  runtime.registerActivity('ShipOrder', async (ctx, orderId) => `tracking-${orderId}`);

  runtime.registerOrchestration('ProcessOrder', function* (ctx, order) {
    ctx.traceInfo(`processing order ${order.id}`);
    const validation = yield ctx.scheduleActivity('ValidateOrder', order);
    ctx.setCustomStatus(JSON.stringify({ stage: 'validated', total: validation.total }));

    const paymentId = yield ctx.scheduleActivityWithRetry(
      'ChargePayment',
      { orderId: order.id, amount: validation.total },
      { maxAttempts: 3, backoff: 'exponential', timeoutMs: 5000 },
    );

    const [shipping, now] = [yield ctx.scheduleActivity('ShipOrder', order.id), yield ctx.utcNow()];
    ctx.setValue('trackingNumber', shipping);
    return { orderId: order.id, paymentId, trackingNumber: shipping, completedAt: now };
  });

  await runtime.start();
  try {
    const instanceId = `order-${Date.now()}`;
    await client.startOrchestration(instanceId, 'ProcessOrder', {
      id: 'A-1',
      items: [
        { sku: 'book', price: 12, qty: 2 },
        { sku: 'pen', price: 1, qty: 3 },
      ],
    });
    const result = await client.waitForOrchestration(instanceId);
    const tracking = await client.getValue(instanceId, 'trackingNumber');
    return { status: result.status, output: result.output, customStatus: result.customStatus, tracking };
  } finally {
    await runtime.shutdown();
  }
}

module.exports = { main };

if (require.main === module) {
  (async () => {
    const provider = await PostgresProvider.connect(process.env.DATABASE_URL || 'postgres://root@127.0.0.1:5432/test');
    console.log(await main(provider));
    await provider.close();
  })().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
