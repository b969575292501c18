/**
 * The dashboard's schedules: a page listing every schedule with its next fire time, last run and
 * counters, with pause/resume/trigger buttons, and the JSON API behind them
 * (`GET /api/schedules`, `POST /api/schedules/:id/pause|resume|trigger`). Everything goes through
 * the Client; the dashboard's middleware has already checked the token, the CSRF header and
 * read-only mode before a POST reaches these routes.
 */
import type { Context, Hono } from 'hono';
import type { Client } from '../client/client';
import { ScheduleError } from '../schedules/errors';
import { httpStatusOf } from '../operator/errors';
import type { ScheduleInfo } from '../schedules/model';
import { Html, html, instanceHref, statusClass, time } from './html';

/** The schedules page's script (served at /static/schedules.js: the CSP allows only same-origin scripts). */
export const SCHEDULES_JS = `'use strict';
(function () {
  function csrf() {
    var node = document.querySelector('meta[name="durox-csrf"]');
    return node ? node.getAttribute('content') : '';
  }
  document.addEventListener('DOMContentLoaded', function () {
    var table = document.querySelector('[data-testid="schedules"]');
    var message = document.querySelector('[data-testid="schedule-message"]');
    if (!table) return;
    table.addEventListener('click', function (event) {
      var button = event.target.closest ? event.target.closest('button[data-schedule-action]') : null;
      if (!button) return;
      var id = button.getAttribute('data-schedule-id');
      var action = button.getAttribute('data-schedule-action');
      button.disabled = true;
      fetch('/api/schedules/' + encodeURIComponent(id) + '/' + action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'x-durox-csrf': csrf() },
      }).then(function (response) {
        return response.json().then(function (json) {
          if (!response.ok) throw new Error(json.error || ('HTTP ' + response.status));
          message.textContent = action + ' sent to ' + id + '; the schedule applies it on its next turn';
          setTimeout(function () { window.location.reload(); }, 500);
        });
      }).catch(function (error) {
        message.textContent = error.message;
        button.disabled = false;
      });
    });
  });
})();
`;

function stateOf(schedule: ScheduleInfo): string {
  if (schedule.status !== 'Running') return schedule.status;
  return schedule.paused ? 'Paused' : 'Active';
}

/** The schedules table. */
export function schedulesBody(schedules: ScheduleInfo[], readOnly: boolean): Html {
  const button = (s: ScheduleInfo, action: string, label: string): Html =>
    html`<button type="button" data-schedule-action="${action}" data-schedule-id="${s.scheduleId}">${label}</button>`;
  const rows = schedules.map(
    (s) => html`<tr data-schedule="${s.scheduleId}">
<td>${s.scheduleId}</td>
<td><code>${s.spec.cron}</code>${s.spec.timezone === null ? '' : html` <span class="muted">${s.spec.timezone}</span>`}</td>
<td>${s.spec.orchestration}</td>
<td><span class="${statusClass(stateOf(s))}" data-testid="schedule-state">${stateOf(s)}</span></td>
<td data-testid="next-fire">${s.nextFireAtMs === null ? '—' : time(s.nextFireAtMs)}</td>
<td>${s.lastRun === null ? '' : html`<a href="${instanceHref(s.lastRun.instanceId)}">${s.lastRun.instanceId}</a>`}</td>
<td data-testid="started">${s.counts.started}</td>
<td>${s.counts.skippedOverlap}</td><td>${s.counts.missed}</td>
<td>${s.spec.overlap} / ${s.spec.catchUp}</td>
${readOnly ? '' : html`<td class="schedule-actions">${s.paused ? button(s, 'resume', 'Resume') : button(s, 'pause', 'Pause')} ${button(s, 'trigger', 'Run now')}</td>`}
</tr>`,
  );
  return html`<h1>Schedules</h1>
<p class="muted">Each fire starts the orchestration as instance <code>&lt;schedule&gt;@&lt;fire time&gt;</code>. Times are UTC.</p>
<p data-testid="schedule-message" role="status"></p>
${schedules.length === 0 ? html`<p>No schedules. Create one with <code>client.createSchedule</code> or <code>durox schedules create</code>.</p>` : ''}
<table data-testid="schedules"><thead><tr><th>Schedule</th><th>Cron</th><th>Orchestration</th><th>State</th><th>Next fire</th><th>Last run</th>
<th>Started</th><th>Skipped (overlap)</th><th>Missed</th><th>Overlap / catch-up</th>${readOnly ? '' : html`<th></th>`}</tr></thead>
<tbody>${rows}</tbody></table>
<script src="/static/schedules.js" defer></script>`;
}

/** What the routes need from the dashboard. */
export interface ScheduleRoutesHost {
  /** Renders `body` in the page frame under the Schedules section. */
  page(c: Context, title: string, body: Html): Response | Promise<Response>;
  readOnly: boolean;
}

/** Answers a ScheduleError with its HTTP status; anything else goes to the dashboard's error handler. */
async function answering(c: Context, work: () => Promise<Response>): Promise<Response> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ScheduleError)
      return c.json({ error: error.message, code: error.code }, httpStatusOf(error) as 400 | 404 | 409);
    throw error;
  }
}

/** Adds the schedules page, its script and its API to the dashboard application. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function registerScheduleRoutes(app: Hono<any>, client: Client, host: ScheduleRoutesHost): void {
  app.get('/static/schedules.js', (c) =>
    c.body(SCHEDULES_JS, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=300' }),
  );
  app.get('/schedules', async (c) =>
    host.page(c, 'Schedules', schedulesBody(await client.listSchedules(), host.readOnly)),
  );
  app.get('/api/schedules', async (c) => c.json(await client.listSchedules()));
  const actions = {
    pause: (id: string) => client.pauseSchedule(id),
    resume: (id: string) => client.resumeSchedule(id),
    trigger: (id: string) => client.triggerSchedule(id),
  } as const;
  for (const [action, call] of Object.entries(actions)) {
    app.post(`/api/schedules/:id/${action}`, (c) =>
      answering(c, async () => {
        const id = c.req.param('id');
        await call(id);
        return c.json({ scheduleId: id, [action]: true }, 202);
      }),
    );
  }
}
