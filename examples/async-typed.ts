// A typed async orchestration, compiled by the test build under `strict`: awaited ctx tasks
// carry the types given to them, and the registration checks the input and output types.
// (User code imports from 'durox'; this file imports the sources so the build type-checks it.)
import { Client, Runtime, type AsyncOrchestrationContext } from '../src/index';

interface Order {
  id: string;
  quantities: number[];
}

interface Receipt {
  id: string;
  total: number;
  approvedBy: string;
}

async function checkout(ctx: AsyncOrchestrationContext, order: Order): Promise<Receipt> {
  const prices = await ctx.all<number>(order.quantities.map((q) => ctx.scheduleActivity<number>('Price', q)));
  const total = prices.reduce((sum, price) => sum + (price.ok ?? 0), 0);
  const decision = await ctx.race<string | null>(ctx.waitForEvent<string>('approve'), ctx.scheduleTimer(5_000));
  const approvedBy: string = decision.index === 0 && decision.value !== null ? decision.value : 'auto';
  return { id: order.id, total, approvedBy };
}

export async function main(provider: ConstructorParameters<typeof Runtime>[0]): Promise<Receipt> {
  const client = new Client(provider);
  const runtime = new Runtime(provider, { logLevel: 'warn', asyncOrchestrationGuards: true });
  runtime.registerActivity('Price', (_ctx, quantity: number) => quantity * 10);
  runtime.registerOrchestrationTyped<Order, Receipt>('Checkout', checkout);
  await runtime.start();
  try {
    const id = `checkout-${Date.now()}`;
    await client.startOrchestrationTyped(id, 'Checkout', { id: 'o-1', quantities: [1, 2, 3] });
    while ((await client.readExecutionHistory(id, 1).catch(() => [])).every((e) => e.kind !== 'ExternalSubscribed')) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await client.raiseEvent(id, 'approve', 'alice');
    return await client.waitForOrchestrationTyped<Receipt>(id, 10_000);
  } finally {
    await runtime.shutdown(100);
  }
}
