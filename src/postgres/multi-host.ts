/**
 * Multi-host connection targets, as libpq understands them: `postgres://h1:6001,h2:6002/db?target_session_attrs=read-write`
 * lists candidate nodes in order, and `target_session_attrs` says which kind of node a connection
 * must land on. node-postgres parses URLs with `new URL` and has no multi-host support
 * (brianc/node-postgres#1470), so Durox parses the host list itself and chooses the node
 * (see node-selector.ts); this module is the pure part: parsing and the role rules.
 */

/** Which node a connection must land on (libpq's `target_session_attrs`). */
export type TargetSessionAttrs = 'any' | 'read-write' | 'read-only' | 'primary' | 'standby' | 'prefer-standby';

const TARGET_SESSION_ATTRS: readonly TargetSessionAttrs[] = [
  'any',
  'read-write',
  'read-only',
  'primary',
  'standby',
  'prefer-standby',
];

/** The default for the runtime and the Client: they write, so only a writable node will do. */
export const DEFAULT_TARGET_SESSION_ATTRS: TargetSessionAttrs = 'read-write';

/** One candidate node. */
export interface HostAddress {
  host: string;
  port: number;
}

/** What a node reported at connect: PostgreSQL 14+ sends both as parameter status. */
export interface NodeRole {
  /** `in_hot_standby`: the server is a standby in recovery. */
  standby: boolean;
  /** `default_transaction_read_only` (or `transaction_read_only`): sessions cannot write. */
  readOnly: boolean;
}

/** A parsed connection target: the candidate nodes and one single-host URL per node. */
export interface ConnectionTarget {
  hosts: HostAddress[];
  targetSessionAttrs: TargetSessionAttrs;
  /** The URL with `host` as its only node and `target_session_attrs` removed (what node-postgres can parse). */
  urlFor(host: HostAddress): string;
}

/** Code-level overrides of what the URL says. */
export interface ConnectionTargetOptions {
  /** Candidate nodes in order, as `host:port` strings or objects; replaces the URL's host list. */
  hosts?: ReadonlyArray<string | HostAddress>;
  /** Replaces the URL's `target_session_attrs`. */
  targetSessionAttrs?: TargetSessionAttrs;
}

const DEFAULT_PORT = 5432;
const URI = /^(postgres(?:ql)?:\/\/)(?:([^@/?#]*)@)?([^/?#]*)(.*)$/i;

/**
 * Parses a `postgres://` URI that may list several `host:port` pairs separated by commas.
 *
 * @throws Error with a message naming what is wrong (not a postgres URI, an empty host, a bad
 *   port, an unknown `target_session_attrs`).
 */
export function parseConnectionTarget(url: string, options: ConnectionTargetOptions = {}): ConnectionTarget {
  const match = URI.exec(url);
  if (match === null) throw new Error('the database URL must start with postgres:// or postgresql://');
  const [, scheme, userInfo, hostList, rest] = match;
  const { path, query } = splitQuery(rest);
  const urlAttrs = query.get('target_session_attrs');
  query.delete('target_session_attrs');
  const portParam = query.get('port');
  const defaultPort = portParam === null ? DEFAULT_PORT : parsePort(portParam, 'port');
  const hosts = options.hosts !== undefined ? options.hosts.map(toHostAddress) : parseHostList(hostList, defaultPort);
  if (hosts.length === 0) throw new Error('the database URL names no host');
  const targetSessionAttrs = toTargetSessionAttrs(
    options.targetSessionAttrs ?? urlAttrs ?? DEFAULT_TARGET_SESSION_ATTRS,
  );
  const queryText = query.toString();
  const prefix = `${scheme}${userInfo === undefined ? '' : `${userInfo}@`}`;
  const suffix = `${path}${queryText === '' ? '' : `?${queryText}`}`;
  return {
    hosts,
    targetSessionAttrs,
    urlFor: (host) => `${prefix}${formatHost(host)}${suffix}`,
  };
}

/** True when a node with `role` is acceptable for `attrs` (prefer-standby accepts any node; see {@link candidateOrder}). */
export function roleMatches(role: NodeRole, attrs: TargetSessionAttrs): boolean {
  switch (attrs) {
    case 'any':
    case 'prefer-standby':
      return true;
    case 'read-write':
      return !role.readOnly && !role.standby;
    case 'read-only':
      return role.readOnly || role.standby;
    case 'primary':
      return !role.standby;
    case 'standby':
      return role.standby;
  }
}

/** For `prefer-standby`, a standby is better than a primary; every other choice takes the first match. */
export function isPreferred(role: NodeRole, attrs: TargetSessionAttrs): boolean {
  return attrs === 'prefer-standby' ? role.standby : roleMatches(role, attrs);
}

/** A plain description of a node's role for logs and errors. */
export function describeRole(role: NodeRole): string {
  if (role.standby) return 'a read-only standby (in recovery)';
  if (role.readOnly) return 'read-only (default_transaction_read_only is on)';
  return 'writable (primary)';
}

/** `host:port`, with brackets around an IPv6 address. */
export function formatHost(host: HostAddress): string {
  return `${host.host.includes(':') ? `[${host.host}]` : host.host}:${host.port}`;
}

function splitQuery(rest: string): { path: string; query: URLSearchParams } {
  const withoutFragment = rest.split('#')[0];
  const at = withoutFragment.indexOf('?');
  if (at < 0) return { path: withoutFragment, query: new URLSearchParams() };
  return { path: withoutFragment.slice(0, at), query: new URLSearchParams(withoutFragment.slice(at + 1)) };
}

function parseHostList(list: string, defaultPort: number): HostAddress[] {
  if (list === '') return [];
  return list.split(',').map((entry) => {
    if (entry === '') throw new Error('the database URL has an empty entry in its host list');
    return toHostAddress(entry, defaultPort);
  });
}

function toHostAddress(entry: string | HostAddress, defaultPort: number = DEFAULT_PORT): HostAddress {
  if (typeof entry !== 'string') {
    if (typeof entry?.host !== 'string' || entry.host === '') throw new Error('a host entry needs a non-empty host');
    return { host: entry.host, port: parsePort(String(entry.port ?? defaultPort), `port of ${entry.host}`) };
  }
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
  if (bracketed !== null) {
    return {
      host: bracketed[1],
      port: bracketed[2] === undefined ? defaultPort : parsePort(bracketed[2], `port of ${entry}`),
    };
  }
  const colon = entry.lastIndexOf(':');
  const host = decodeURIComponent(colon < 0 ? entry : entry.slice(0, colon));
  if (host === '') throw new Error(`the host entry '${entry}' has no host name`);
  return { host, port: colon < 0 ? defaultPort : parsePort(entry.slice(colon + 1), `port of ${entry}`) };
}

function parsePort(text: string, what: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535)
    throw new Error(`the ${what} must be a number from 1 to 65535, got '${text}'`);
  return port;
}

function toTargetSessionAttrs(value: string): TargetSessionAttrs {
  if ((TARGET_SESSION_ATTRS as readonly string[]).includes(value)) return value as TargetSessionAttrs;
  throw new Error(`target_session_attrs must be one of ${TARGET_SESSION_ATTRS.join(', ')}, got '${value}'`);
}
