// Hello world and fan-out/fan-in as async functions: `await` ctx tasks instead of yielding them.
// The histories are the same as the generator versions (hello-world.js, fan-out-fan-in.js).
// Run: DATABASE_URL=postgres://... node examples/async-hello-world.js
const { PostgresProvider, Client, Runtime } = require('durox');

async function main(provider, count = 10) {
  const client = new Client(provider);
  // Guard mode: awaiting anything but a ctx task (a timer, fetch, fs) fails the orchestration.
  const runtime = new Runtime(provider, { logLevel: 'warn', asyncOrchestrationGuards: true });

  runtime.registerActivity('Greet', async (ctx, name) => `Hello, ${name}!`);
  runtime.registerActivity('Square', async (ctx, n) => n * n);

  runtime.registerOrchestration('AsyncHelloWorld', async (ctx, name) => {
    const greeting = await ctx.scheduleActivity('Greet', name);
    return greeting;
  });

  runtime.registerOrchestration('AsyncSumOfSquares', async (ctx, n) => {
    const tasks = [];
    for (let i = 1; i <= n; i++) tasks.push(ctx.scheduleActivity('Square', i));
    const results = await ctx.all(tasks);
    return results.reduce((sum, r) => sum + r.ok, 0);
  });

  await runtime.start();
  try {
    const id = `async-${Date.now()}`;
    await client.startOrchestration(`${id}-hello`, 'AsyncHelloWorld', 'World');
    await client.startOrchestration(`${id}-sum`, 'AsyncSumOfSquares', count);
    const hello = await client.waitForOrchestration(`${id}-hello`, 10000);
    const sum = await client.waitForOrchestration(`${id}-sum`, 30000);
    return { greeting: hello.output, sum: sum.output };
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
