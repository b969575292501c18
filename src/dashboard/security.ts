/**
 * Request guards of the dashboard:
 * - Host allow-list: only the addresses the server listens on (blocks DNS-rebinding pages that
 *   would otherwise be same-origin with a server on 127.0.0.1).
 * - Optional token: `Authorization: Bearer <token>` for scripts, or a session cookie set by the
 *   sign-in form (HttpOnly, SameSite=Strict, an HMAC of the token, never the token itself).
 * - Cross-site request protection for every state-changing request authenticated by the cookie or
 *   by nothing: a per-server secret in the `X-Durox-Csrf` header (a cross-site form or no-cors
 *   fetch cannot set it), and `Origin` / `Sec-Fetch-Site` must not name another site.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'durox_session';
export const CSRF_HEADER = 'x-durox-csrf';

/** Secrets of one running dashboard. */
export class DashboardSecurity {
  /** Secret the pages send back in {@link CSRF_HEADER}. */
  readonly csrfToken = randomBytes(24).toString('base64url');
  readonly #sessionKey = randomBytes(32);
  readonly #token: string | undefined;
  #allowedHosts = new Set<string>();
  #boundToAll = false;

  constructor(token: string | undefined) {
    if (token !== undefined && token.length < 8) throw new Error('dashboard token must be at least 8 characters long');
    this.#token = token;
  }

  get requiresToken(): boolean {
    return this.#token !== undefined;
  }

  /** Hosts (`name:port`) accepted in the Host header, once the port is known. */
  allowHosts(host: string, port: number): void {
    this.#boundToAll = host === '0.0.0.0' || host === '::';
    const names = new Set([host, '127.0.0.1', 'localhost', '[::1]']);
    this.#allowedHosts = new Set(
      [...names].map((n) => `${n.includes(':') && !n.startsWith('[') ? `[${n}]` : n}:${port}`.toLowerCase()),
    );
  }

  /** True when the Host header names this server (a wildcard bind accepts any host). */
  hostAllowed(hostHeader: string | undefined): boolean {
    if (this.#boundToAll) return true;
    return hostHeader !== undefined && this.#allowedHosts.has(hostHeader.toLowerCase());
  }

  /** Constant-time comparison of a presented token with the configured one. */
  tokenMatches(presented: string | undefined): boolean {
    if (this.#token === undefined) return true;
    if (presented === undefined) return false;
    return safeEqual(digest(this.#sessionKey, presented), digest(this.#sessionKey, this.#token));
  }

  /** Cookie value proving a successful sign-in. */
  sessionValue(): string {
    return digest(this.#sessionKey, `session:${this.#token ?? ''}`).toString('base64url');
  }

  sessionValid(cookie: string | undefined): boolean {
    if (this.#token === undefined) return true;
    if (cookie === undefined) return false;
    return safeEqual(Buffer.from(cookie), Buffer.from(this.sessionValue()));
  }

  csrfValid(header: string | undefined): boolean {
    return header !== undefined && safeEqual(Buffer.from(header), Buffer.from(this.csrfToken));
  }
}

function digest(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True when `Origin` / `Sec-Fetch-Site` show the request comes from another site. */
export function crossSite(
  origin: string | undefined,
  fetchSite: string | undefined,
  host: string | undefined,
): boolean {
  if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') return true;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host.toLowerCase() !== (host ?? '').toLowerCase();
  } catch {
    return true;
  }
}
