/**
 * The dashboard's flow limits: a page listing every limit with its permits in use (active), its
 * waiting (parked) activities and starts, and the instances' share of both, and the JSON behind it (`GET /api/limits`). Limits are
 * changed with `durox limits set|delete` or the Client; the page only reads.
 */
import type { Context, Hono } from 'hono';
import type { Client } from '../client/client';
import type { FlowLimitInfo } from '../provider/contract';
import { capacityText, isSaturated, rateText } from '../operator/flow-limits';
import { Html, html, time } from './html';

/** The limits table. */
export function limitsBody(limits: FlowLimitInfo[]): Html {
  const rows = limits.map(
    (l) => html`<tr data-limit="${l.flowKey}"${isSaturated(l) ? new Html(' class="saturated"') : ''}>
<td><code>${l.flowKey}</code></td>
<td data-testid="max-active">${capacityText(l)}</td>
<td data-testid="active">${l.active}</td>
<td data-testid="parked">${l.parked}</td>
<td data-testid="rate">${rateText(l)}</td>
<td data-testid="instances">${l.activeInstances} / ${l.parkedInstances}</td>
<td>${time(l.updatedAtMs)}</td>
</tr>`,
  );
  return html`<h1>Flow limits</h1>
<p class="muted">Active: activities of the key queued or running and instances started under it that have not ended (permits in use). Parked: activities and instance starts waiting for a permit. Instances: the running and the pending (parked) instances among them. Change limits with <code>durox limits set</code> or <code>client.setFlowLimit</code>.</p>
${limits.length === 0 ? html`<p>No flow limits.</p>` : ''}
<table data-testid="limits"><thead><tr><th>Key</th><th>Max active</th><th>Active</th><th>Parked</th><th>Rate</th><th>Instances running / pending</th><th>Updated</th></tr></thead>
<tbody>${rows}</tbody></table>`;
}

/** What the routes need from the dashboard. */
export interface LimitRoutesHost {
  /** Renders `body` in the page frame under the Limits section. */
  page(c: Context, title: string, body: Html): Response | Promise<Response>;
}

/** Adds the limits page and its API to the dashboard application. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function registerLimitRoutes(app: Hono<any>, client: Client, host: LimitRoutesHost): void {
  app.get('/limits', async (c) => host.page(c, 'Flow limits', limitsBody(await client.getFlowLimits())));
  app.get('/api/limits', async (c) => c.json(await client.getFlowLimits()));
}
