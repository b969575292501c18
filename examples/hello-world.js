// Hello world: one orchestration calling one activity.
// Run: DATABASE_URL=postgres://... node examples/hello-world.js
const { PostgresProvider, Client, Runtime } = require('durox');

async function main(provider) {
  const client = new Client(provider);
  const runtime = new Runtime(provider, { logLevel: 'warn' });

  runtime.registerActivity('Greet', async (ctx, name) => {
    ctx.traceInfo(`greeting ${name}`);
    return `Hello, ${name}!`;
  });

  runtime.registerOrchestration('HelloWorld', function* (ctx, name) {
    const greeting = yield ctx.scheduleActivity('Greet', name);
    return greeting;
  });

  await runtime.start();
  try {
    const instanceId = `hello-${Date.now()}`;
    await client.startOrchestration(instanceId, 'HelloWorld', 'World');
    const result = await client.waitForOrchestration(instanceId, 10000);
    return result.output;
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
