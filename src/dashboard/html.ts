/**
 * HTML of the dashboard pages, rendered on the server. Every piece of stored or user-supplied
 * text goes through {@link escapeHtml} (element content and quoted attributes alike), and data
 * handed to the page's script travels as JSON inside a non-executable script element with `<`
 * escaped, so ids, inputs and errors holding markup are shown, never run.
 */

/** Escapes the five characters that matter in HTML text and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A fragment of trusted HTML (built only from escaped values and literals). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Template tag: interpolated values are escaped unless they are {@link Html} (or arrays of it). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  values.forEach((value, i) => {
    out += render(value) + strings[i + 1];
  });
  return new Html(out);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(value);
}

/** JSON for a `<script type="application/json">` element: `<`, `>` and `&` cannot end the element. */
export function jsonScript(id: string, value: unknown): Html {
  const json = JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return new Html(`<script type="application/json" id="${escapeHtml(id)}">${json}</script>`);
}

/** Options of the page frame. */
export interface PageFrame {
  title: string;
  csrfToken: string;
  readOnly: boolean;
  /** Which navigation entry is current. */
  section: 'overview' | 'instances' | 'schedules' | 'limits' | 'login';
}

/** The page frame: head (styles, scripts), navigation and the body. */
export function page(frame: PageFrame, body: Html): string {
  const nav = (href: string, label: string, key: PageFrame['section']): Html =>
    html`<a href="${href}"${frame.section === key ? new Html(' aria-current="page"') : ''}>${label}</a>`;
  return `<!doctype html>${
    html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="durox-csrf" content="${frame.csrfToken}">
<meta name="durox-read-only" content="${frame.readOnly ? 'true' : 'false'}">
<title>${frame.title} · Durox</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/chart.umd.min.js" defer></script>
<script src="/static/dashboard.js" defer></script>
</head>
<body>
<header><strong>Durox</strong> ${nav('/', 'Overview', 'overview')} ${nav('/instances', 'Instances', 'instances')} ${nav('/schedules', 'Schedules', 'schedules')} ${nav('/limits', 'Limits', 'limits')}
${frame.readOnly ? html`<span class="badge">read-only</span>` : ''}</header>
<main>
${body}
</main>
</body>
</html>`.text
  }`;
}

/** CSS class of a status badge. */
export function statusClass(status: string): string {
  return `status status-${status.toLowerCase().replace(/[^a-z]/g, '')}`;
}

/** ISO time or empty. */
export function time(ms: number | undefined | null): string {
  return ms === undefined || ms === null ? '' : new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** Link path of an instance page. */
export function instanceHref(instanceId: string, executionId?: number): string {
  return `/instances/${encodeURIComponent(instanceId)}${executionId === undefined ? '' : `?execution=${executionId}`}`;
}

/** A page that only reports an error (bad filter, unknown instance). */
export function errorBody(title: string, message: string): Html {
  return html`<h1>${title}</h1><p class="error-message" role="alert">${message}</p><p><a href="/instances">Back to instances</a></p>`;
}
