/**
 * The dashboard's own browser script and stylesheet, served as static files. They are kept here
 * as text so the package ships them without a build step; Chart.js is served from node_modules.
 * The script only reads data the server put in the page (JSON script elements, data attributes)
 * and writes it with textContent, never as HTML.
 */

export const DASHBOARD_JS = String.raw`'use strict';
(function () {
  var meta = function (name) { var m = document.querySelector('meta[name="' + name + '"]'); return m ? m.content : ''; };

  function drawThroughput() {
    var data = document.getElementById('throughput-data');
    var canvas = document.getElementById('throughput-chart');
    if (!data || !canvas || typeof Chart === 'undefined') return;
    var buckets = JSON.parse(data.textContent);
    var labels = buckets.map(function (b) { return new Date(b.bucketStart).toISOString().slice(11, 16); });
    var series = function (label, key, colour) {
      return { label: label, data: buckets.map(function (b) { return b[key]; }), borderColor: colour, backgroundColor: colour, tension: 0.2 };
    };
    window.duroxChart = new Chart(canvas, {
      type: 'line',
      data: { labels: labels, datasets: [series('started', 'started', '#2563eb'), series('completed', 'completed', '#16a34a'), series('failed', 'failed', '#dc2626')] },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    canvas.setAttribute('data-ready', 'true');
  }

  function post(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-durox-csrf': meta('durox-csrf') },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) throw new Error(json.error || ('HTTP ' + response.status));
        return json;
      });
    });
  }

  function waitForChange(id, before) {
    var started = Date.now();
    var poll = function () {
      fetch('/api/instances/' + encodeURIComponent(id), { credentials: 'same-origin' }).then(function (r) {
        if (r.status === 404) { window.location.href = '/instances'; return null; }
        return r.json();
      }).then(function (d) {
        if (d === null) return;
        if (d.status.status !== before || Date.now() - started > 15000) window.location.reload();
        else setTimeout(poll, 300);
      });
    };
    poll();
  }

  function setupActions() {
    var section = document.querySelector('.actions');
    var dialog = document.getElementById('confirm-dialog');
    if (!section || !dialog) return;
    var id = section.getAttribute('data-instance-id');
    var statusNode = document.querySelector('[data-testid="instance-status"]');
    var before = statusNode ? statusNode.textContent : '';
    var current = null;
    var texts = {
      cancel: ['Cancel instance?', 'The instance fails with "canceled: <reason>" on its next turn.'],
      raise: ['Raise an event?', 'The event is delivered to a matching waitForEvent.'],
      'delete': ['Delete instance?', 'The instance, its history and its sub-orchestrations are deleted for good.'],
    };
    section.addEventListener('click', function (event) {
      var action = event.target.getAttribute && event.target.getAttribute('data-action');
      if (!action) return;
      current = action;
      document.getElementById('confirm-title').textContent = texts[action][0];
      document.getElementById('confirm-text').textContent = texts[action][1] + ' Instance: ' + id;
      document.getElementById('confirm-error').textContent = '';
      dialog.querySelectorAll('label[data-for]').forEach(function (label) { label.hidden = label.getAttribute('data-for') !== action; });
      dialog.showModal();
    });
    document.getElementById('confirm-ok').addEventListener('click', function () {
      var base = '/api/instances/' + encodeURIComponent(id);
      var request;
      if (current === 'cancel') request = post('POST', base + '/cancel', { reason: document.getElementById('confirm-reason').value });
      else if (current === 'delete') request = post('DELETE', base + (document.getElementById('confirm-force').checked ? '?force=true' : ''));
      else {
        var data;
        try { data = JSON.parse(document.getElementById('confirm-data').value); }
        catch (e) { document.getElementById('confirm-error').textContent = 'Data must be JSON: ' + e.message; return; }
        request = post('POST', base + '/events', { name: document.getElementById('confirm-event').value, data: data });
      }
      request.then(function () {
        dialog.close();
        if (current === 'delete') window.location.href = '/instances';
        else if (current === 'cancel') waitForChange(id, before);
        else window.location.reload();
      }, function (error) {
        document.getElementById('confirm-error').textContent = error.message;
      });
    });
  }

  document.addEventListener('DOMContentLoaded', function () { drawThroughput(); setupActions(); });
})();
`;

export const DASHBOARD_CSS = `
:root { font-family: system-ui, sans-serif; color: #111827; background: #f9fafb; }
body { margin: 0; }
header { background: #111827; color: #f9fafb; padding: 0.75rem 1.5rem; display: flex; gap: 1.25rem; align-items: center; }
header a { color: #d1d5db; text-decoration: none; }
header a[aria-current="page"] { color: #fff; border-bottom: 2px solid #60a5fa; }
main { padding: 1rem 1.5rem 3rem; max-width: 1400px; }
h1 { font-size: 1.4rem; word-break: break-all; }
h2 { font-size: 1.1rem; margin-top: 1.5rem; }
.badge { background: #f59e0b; color: #111827; border-radius: 4px; padding: 0 0.4rem; font-size: 0.8rem; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; margin-bottom: 1rem; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 0.75rem 1rem; min-width: 140px; display: flex; flex-direction: column; color: inherit; text-decoration: none; }
.card-value { font-size: 1.6rem; font-weight: 600; }
.card-label { color: #6b7280; font-size: 0.85rem; }
.card.running .card-value { color: #b45309; } .card.completed .card-value { color: #15803d; } .card.failed .card-value { color: #b91c1c; }
.chart-box { position: relative; height: 300px; background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 0.5rem; }
table.list { border-collapse: collapse; width: 100%; background: #fff; font-size: 0.9rem; }
table.list th, table.list td { border-bottom: 1px solid #e5e7eb; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
table.list tr.current { background: #eff6ff; }
td.error-cell { color: #b91c1c; max-width: 28rem; overflow-wrap: anywhere; }
.status { border-radius: 999px; padding: 0.05rem 0.55rem; font-size: 0.8rem; font-weight: 600; background: #e5e7eb; }
.status-running { background: #fef3c7; color: #92400e; } .status-completed { background: #dcfce7; color: #166534; }
.status-failed { background: #fee2e2; color: #991b1b; } .status-continuedasnew { background: #dbeafe; color: #1e40af; }
.filters { display: flex; gap: 0.75rem; flex-wrap: wrap; align-items: end; margin-bottom: 1rem; }
.filters label { display: flex; flex-direction: column; font-size: 0.8rem; color: #374151; }
.fields { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
.field pre { background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; padding: 0.5rem; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 20rem; overflow: auto; }
.field.failed pre { border-color: #fca5a5; color: #991b1b; }
.error-message { color: #b91c1c; font-weight: 600; overflow-wrap: anywhere; }
.timeline { list-style: none; padding-left: 0; border-left: 3px solid #d1d5db; margin-left: 0.5rem; }
.timeline .event { padding: 0.3rem 0.75rem; position: relative; font-size: 0.9rem; overflow-wrap: anywhere; }
.timeline .event::before { content: ''; position: absolute; left: -0.5rem; top: 0.65rem; width: 0.6rem; height: 0.6rem; border-radius: 50%; background: #9ca3af; }
.timeline .event[class*="Failed"]::before { background: #dc2626; } .timeline .event[class*="Completed"]::before { background: #16a34a; }
.event.dropped .event-summary { color: #b45309; font-weight: 600; }
.event-time { color: #6b7280; display: inline-block; min-width: 5.5rem; } .event-id { color: #9ca3af; } .event-summary { color: #374151; margin-left: 0.5rem; }
.actions { display: flex; gap: 0.5rem; margin: 0.75rem 0; }
button { font: inherit; padding: 0.3rem 0.8rem; border-radius: 6px; border: 1px solid #9ca3af; background: #fff; cursor: pointer; }
button.danger { border-color: #dc2626; color: #b91c1c; }
dialog { border-radius: 8px; border: 1px solid #9ca3af; min-width: 24rem; }
dialog label { display: flex; flex-direction: column; margin: 0.5rem 0; }
dialog label[hidden] { display: none; }
.muted { color: #6b7280; }
tr.saturated td[data-testid="parked"] { color: #b45309; font-weight: 600; }
`;
