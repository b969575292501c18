/** Bodies of the dashboard pages (see ./html.ts for the escaping rules). */
import type { InstanceListPage } from '../client/client';
import type { JsQueueDepths, JsSystemMetrics } from '../client/status-shapes';
import type { InstanceDetails } from '../operator/details';
import { formatOffset, type TimelineEntry } from '../operator/timeline';
import type { ThroughputBucket } from '../provider/contract';
import { Html, html, instanceHref, jsonScript, statusClass, time } from './html';

const STATUSES = ['Running', 'Completed', 'Failed', 'ContinuedAsNew'];

/** Overview: instances by status, queue depths, throughput chart. */
export function overviewBody(metrics: JsSystemMetrics, queues: JsQueueDepths, throughput: ThroughputBucket[]): Html {
  const card = (label: string, value: number, href: string, cls: string): Html =>
    html`<a class="card ${cls}" href="${href}" data-testid="card-${label.toLowerCase()}"><span class="card-value">${value}</span><span class="card-label">${label}</span></a>`;
  return html`<h1>Overview</h1>
<section class="cards">
${card('Total', metrics.totalInstances, '/instances', 'total')}
${card('Running', metrics.runningInstances, '/instances?status=Running', 'running')}
${card('Completed', metrics.completedInstances, '/instances?status=Completed', 'completed')}
${card('Failed', metrics.failedInstances, '/instances?status=Failed', 'failed')}
</section>
<section class="cards">
<div class="card"><span class="card-value" data-testid="orchestrator-queue">${queues.orchestratorQueue}</span><span class="card-label">Orchestrator queue</span></div>
<div class="card"><span class="card-value" data-testid="worker-queue">${queues.workerQueue}</span><span class="card-label">Worker queue</span></div>
<div class="card"><span class="card-value">${metrics.totalExecutions}</span><span class="card-label">Executions</span></div>
<div class="card"><span class="card-value">${metrics.totalEvents}</span><span class="card-label">History events</span></div>
</section>
<h2>Throughput and failures, last hour (per minute)</h2>
<div class="chart-box"><canvas id="throughput-chart" aria-label="Executions started, completed and failed per minute" role="img"></canvas></div>
${jsonScript('throughput-data', throughput)}`;
}

/** The filter values shown back in the list form (raw query text). */
export interface ListFormValues {
  status?: string;
  name?: string;
  since?: string;
  until?: string;
  limit?: string;
}

/** Instance list with its filter form and a link to the next page. */
export function instancesBody(values: ListFormValues, result: InstanceListPage | null, error: string | null): Html {
  const option = (s: string): Html =>
    html`<option value="${s}"${values.status === s ? new Html(' selected') : ''}>${s}</option>`;
  const form = html`<form class="filters" method="get" action="/instances">
<label>Status <select name="status"><option value="">any</option>${STATUSES.map(option)}</select></label>
<label>Orchestration <input name="name" value="${values.name ?? ''}" placeholder="name"></label>
<label>Created since <input name="since" value="${values.since ?? ''}" placeholder="2h, 7d or ISO date"></label>
<label>until <input name="until" value="${values.until ?? ''}" placeholder="ISO date"></label>
<label>Per page <input name="limit" value="${values.limit ?? '50'}" size="4"></label>
<button type="submit">Filter</button>
</form>`;
  if (result === null) return html`<h1>Instances</h1>${form}<p class="error-message" role="alert">${error ?? ''}</p>`;
  const rows = result.items.map(
    (r) => html`<tr data-instance="${r.instanceId}">
<td><a href="${instanceHref(r.instanceId)}">${r.instanceId}</a></td>
<td>${r.orchestrationName}</td><td>${r.orchestrationVersion}</td>
<td><span class="${statusClass(r.status)}">${r.status}</span></td>
<td data-testid="priority">${r.priority}</td>
<td>${r.currentExecutionId}</td><td>${time(r.createdAt)}</td><td>${time(r.updatedAt)}</td>
<td class="error-cell">${r.error ?? ''}</td></tr>`,
  );
  const next =
    result.nextCursor === null
      ? ''
      : html`<a class="next" href="/instances?${new Html(nextQuery(values, result.nextCursor))}">Next page →</a>`;
  return html`<h1>Instances</h1>${form}
<table class="list"><thead><tr><th>Instance</th><th>Orchestration</th><th>Version</th><th>Status</th><th>Priority</th><th>Execution</th><th>Created</th><th>Updated</th><th>Error</th></tr></thead>
<tbody>${rows.length === 0 ? html`<tr><td colspan="9" class="empty">No instances match.</td></tr>` : rows}</tbody></table>
<p class="pager"><span data-testid="row-count">${result.items.length}</span> shown. ${next}</p>`;
}

function nextQuery(values: ListFormValues, cursor: string): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (typeof v === 'string' && v !== '') params.set(k, v);
  params.set('cursor', cursor);
  // URLSearchParams output is already URL-encoded; escaping it for the attribute keeps '&' valid.
  return params.toString().replace(/&/g, '&amp;');
}

function block(label: string, text: string | undefined, testId: string, cls = ''): Html {
  if (text === undefined) return html``;
  return html`<div class="field ${cls}"><h3>${label}</h3><pre data-testid="${testId}">${text}</pre></div>`;
}

/** One instance: fields, actions, executions and the history timeline of one execution. */
export function instanceBody(
  d: InstanceDetails,
  executionId: number,
  entries: TimelineEntry[],
  readOnly: boolean,
): Html {
  const id = d.info.instanceId;
  const running = d.status.status === 'Running';
  const actions = readOnly
    ? html``
    : html`<section class="actions" data-instance-id="${id}">
${running ? html`<button type="button" data-action="cancel">Cancel…</button> <button type="button" data-action="raise">Raise event…</button>` : ''}
<button type="button" data-action="delete" class="danger">Delete…</button>
</section>
<dialog id="confirm-dialog"><form method="dialog">
<h2 id="confirm-title"></h2><p id="confirm-text"></p>
<label data-for="cancel">Reason <input name="reason" id="confirm-reason"></label>
<label data-for="raise">Event name <input name="event" id="confirm-event"></label>
<label data-for="raise">Data (JSON) <textarea name="data" id="confirm-data">null</textarea></label>
<label data-for="delete"><input type="checkbox" id="confirm-force"> force (instance is running)</label>
<p class="error-message" id="confirm-error" role="alert"></p>
<menu><button value="cancel" type="submit" formnovalidate>Back</button> <button value="confirm" id="confirm-ok" type="button">Confirm</button></menu>
</form></dialog>`;
  const executions = d.executions.map(
    (e) => html`<tr${e.executionId === executionId ? new Html(' class="current"') : ''}>
<td><a href="${instanceHref(id, e.executionId)}">${e.executionId}</a></td><td><span class="${statusClass(e.status)}">${e.status}</span></td>
<td>${time(e.startedAt)}</td><td>${time(e.completedAt)}</td><td>${e.eventCount}</td></tr>`,
  );
  const events = entries.map(
    (
      e,
    ) => html`<li class="event kind-${e.kind.replace(/[^A-Za-z]/g, '')}${e.dropped ? ' dropped' : ''}"${e.dropped ? new Html(' data-testid="dropped-event"') : ''}>
<span class="event-time" title="${time(e.timestampMs)}">${formatOffset(e.offsetMs)}</span>
<span class="event-id">#${e.eventId}</span> <strong class="event-kind">${e.kind}</strong>${e.sourceEventId === undefined ? '' : html` <span class="event-source">for #${e.sourceEventId}</span>`}
<span class="event-summary">${e.summary}</span></li>`,
  );
  return html`<h1>Instance <code data-testid="instance-id">${id}</code></h1>
<p><span class="${statusClass(d.status.status)}" data-testid="instance-status">${d.status.status}</span>
${d.info.orchestrationName} <span class="muted">${d.info.orchestrationVersion}</span>
· created ${time(d.info.createdAt)} · updated ${time(d.info.updatedAt)}
${d.info.parentInstanceId === undefined ? '' : html` · parent <a href="${instanceHref(d.info.parentInstanceId)}">${d.info.parentInstanceId}</a>`}${d.info.priority === undefined ? '' : html` · priority <span data-testid="instance-priority">${d.info.priority}</span>`}</p>
${actions}
<section class="fields">
${block('Input', d.input, 'instance-input')}
${block('Output', d.status.output, 'instance-output')}
${block('Error', d.status.error, 'instance-error', 'failed')}
${block('Custom status', d.status.customStatus === undefined ? undefined : `${d.status.customStatus} (version ${d.status.customStatusVersion})`, 'instance-custom-status')}
</section>
${d.children.length === 0 ? '' : html`<h2>Sub-orchestrations</h2><ul>${d.children.map((c) => html`<li><a href="${instanceHref(c)}">${c}</a></li>`)}</ul>`}
<h2>Executions</h2>
<table class="list"><thead><tr><th>Execution</th><th>Status</th><th>Started</th><th>Completed</th><th>Events</th></tr></thead><tbody>${executions}</tbody></table>
<h2>History of execution ${executionId}</h2>
<ol class="timeline" data-testid="timeline">${events}</ol>`;
}

/** Token form shown when the dashboard requires a token. */
export function loginBody(failed: boolean): Html {
  return html`<h1>Sign in</h1>
${failed ? html`<p class="error-message" role="alert">Wrong token.</p>` : ''}
<form method="post" action="/login" class="login"><label>Dashboard token <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>`;
}
