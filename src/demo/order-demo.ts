/**
 * The order-processing workflow run by `npm start`, written exactly as a duroxide program would be.
 *
 * ProcessOrder: reserve every item in parallel (fan-out of activities), charge the payment with
 * retries (the simulated card network fails the first attempt of every order), wait a short
 * cooling-off timer, ask a manager for approval and wait for the `Approval` event the demo raises
 * through `Client.raiseEvent`, then ship through the ShipOrder sub-orchestration (an async function).
 */
import { EventEmitter } from 'node:events';
import type { ActivityContext } from '../runtime/activity-context';
import type { AsyncOrchestrationContext } from '../core/async-context';
import type { ScheduledTask } from '../core/descriptors';
import type { OrchestrationContext } from '../core/orchestration-context';
import type { Runtime } from '../runtime/runtime';

export interface OrderItem {
  sku: string;
  quantity: number;
  unitPriceCents: number;
}

export interface Order {
  orderId: string;
  customer: string;
  items: OrderItem[];
}

export interface OrderResult {
  orderId: string;
  reserved: number;
  chargedCents: number;
  approvedBy: string;
  trackingNumber: string;
}

/** Names of the orchestrations and activities (also what the history shows). */
export const ORDER_ORCHESTRATION = 'ProcessOrder';
export const SHIP_ORCHESTRATION = 'ShipOrder';
export const APPROVAL_EVENT = 'Approval';

/** Milliseconds of the cooling-off timer each order waits. */
export const COOLING_OFF_MS = 200;

/**
 * In-process side effects of the activities that the demo observes: payment attempts (to show the
 * retry) and approval requests (the demo answers them with `Client.raiseEvent`).
 */
export class OrderDemoWorld extends EventEmitter<{ approvalRequested: [orderId: string] }> {
  readonly paymentAttempts = new Map<string, number>();
  activitiesRun = 0;
}

function* processOrder(ctx: OrchestrationContext, order: Order): Generator<ScheduledTask, OrderResult, unknown> {
  ctx.setCustomStatus('reserving');
  const reservations = (yield ctx.all(
    order.items.map((item) => ctx.scheduleActivity('ReserveItem', { orderId: order.orderId, ...item })),
  )) as Array<{ ok?: unknown; err?: string }>;
  const failed = reservations.find((r) => r.err !== undefined);
  if (failed !== undefined) throw new Error(`reservation failed for ${order.orderId}: ${failed.err}`);

  ctx.setCustomStatus('charging');
  const totalCents = order.items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0);
  const charge = (yield ctx.scheduleActivityWithRetry(
    'ChargePayment',
    { orderId: order.orderId, amountCents: totalCents },
    { maxAttempts: 3, backoff: 'exponential' },
  )) as { chargedCents: number };

  ctx.setCustomStatus('cooling-off');
  yield ctx.scheduleTimer(COOLING_OFF_MS);

  // The subscription and the request are scheduled in the same turn, so the event raised in answer
  // to the request always finds the subscription (an event raised earlier would be dropped).
  ctx.setCustomStatus('awaiting-approval');
  const [, approval] = (yield ctx.all([
    ctx.scheduleActivity('RequestApproval', { orderId: order.orderId, totalCents }),
    ctx.waitForEvent(APPROVAL_EVENT),
  ])) as Array<{ ok?: { approvedBy: string }; err?: string }>;

  ctx.setCustomStatus('shipping');
  const shipment = (yield ctx.scheduleSubOrchestration(SHIP_ORCHESTRATION, {
    orderId: order.orderId,
    itemCount: order.items.length,
  })) as { trackingNumber: string };
  ctx.setCustomStatus('done');
  return {
    orderId: order.orderId,
    reserved: reservations.length,
    chargedCents: charge.chargedCents,
    approvedBy: approval.ok?.approvedBy ?? 'unknown',
    trackingNumber: shipment.trackingNumber,
  };
}

/** The shipping child, written as an async function: it runs beside the generator parent. */
async function shipOrder(
  ctx: AsyncOrchestrationContext,
  shipment: { orderId: string; itemCount: number },
): Promise<{ trackingNumber: string }> {
  await ctx.scheduleActivity('PackParcel', shipment);
  const trackingNumber = await ctx.scheduleActivity<string>('BookCarrier', { orderId: shipment.orderId });
  return { trackingNumber };
}

/** Registers the demo's orchestrations and activities on `runtime`. */
export function registerOrderDemo(runtime: Runtime, world: OrderDemoWorld): void {
  const counted =
    <I, O>(fn: (ctx: ActivityContext, input: I) => O) =>
    (ctx: ActivityContext, input: I): O => {
      world.activitiesRun++;
      return fn(ctx, input);
    };

  runtime.registerActivity(
    'ReserveItem',
    counted((_ctx, item: OrderItem & { orderId: string }) => ({ sku: item.sku, reserved: item.quantity })),
  );
  runtime.registerActivity(
    'ChargePayment',
    counted((_ctx, payment: { orderId: string; amountCents: number }) => {
      const attempt = (world.paymentAttempts.get(payment.orderId) ?? 0) + 1;
      world.paymentAttempts.set(payment.orderId, attempt);
      if (attempt === 1) throw new Error('card network timeout (simulated; the retry policy will try again)');
      return { chargedCents: payment.amountCents };
    }),
  );
  runtime.registerActivity(
    'RequestApproval',
    counted((_ctx, request: { orderId: string }) => {
      world.emit('approvalRequested', request.orderId);
      return 'requested';
    }),
  );
  runtime.registerActivity(
    'PackParcel',
    counted((_ctx, shipment: { itemCount: number }) => ({ parcels: 1, items: shipment.itemCount })),
  );
  runtime.registerActivity(
    'BookCarrier',
    counted((_ctx, booking: { orderId: string }) => `TRK-${booking.orderId.toUpperCase()}`),
  );
  runtime.registerOrchestration(ORDER_ORCHESTRATION, processOrder);
  runtime.registerOrchestration(SHIP_ORCHESTRATION, shipOrder);
}

/** A deterministic order `n` of a run: 1 to 4 items. */
export function makeOrder(runId: string, n: number): Order {
  const skus = ['widget', 'gadget', 'gizmo', 'sprocket'];
  const items: OrderItem[] = [];
  for (let i = 0; i <= n % 4; i++) {
    items.push({ sku: skus[(n + i) % skus.length], quantity: 1 + ((n + i) % 3), unitPriceCents: 250 + 125 * i });
  }
  return { orderId: `order-${runId}-${String(n).padStart(3, '0')}`, customer: `customer-${n % 7}`, items };
}
