/**
 * Chooses the node every new connection lands on (libpq's `target_session_attrs` for
 * node-postgres, which has none). A {@link NodeSelector} remembers the node that last matched;
 * while it keeps matching a new connection costs nothing extra, since PostgreSQL 14+ reports
 * `in_hot_standby` and `default_transaction_read_only` in the startup reply. When a connection
 * finds that node gone or no longer suitable (a failover demoted it), the selector forgets it and
 * the next connection probes the candidates in order.
 */
import { Client, type ClientConfig } from 'pg';
import {
  describeRole,
  formatHost,
  isPreferred,
  roleMatches,
  type ConnectionTarget,
  type HostAddress,
  type NodeRole,
} from './multi-host';

/** SQLSTATE of libpq's "could not establish a connection": classified `unavailable` (error-mapping.ts). */
const NO_SUITABLE_NODE = '08001';

/** Raised when no candidate node can take a connection of the wanted kind. */
export class NoSuitableNodeError extends Error {
  readonly code = NO_SUITABLE_NODE;
  /** True when some node answered but every one that answered was a read-only standby. */
  readonly onlyReadOnlyNodes: boolean;

  constructor(wanted: string, findings: string[], onlyReadOnlyNodes: boolean) {
    super(`no node accepts a ${wanted} connection: ${findings.join('; ')}`);
    this.name = 'NoSuitableNodeError';
    this.onlyReadOnlyNodes = onlyReadOnlyNodes;
  }
}

/** What the selector tells its owner (for logs and metrics). */
export interface NodeSelectorEvents {
  /** A node was chosen; `previous` is the node chosen before, if any. */
  chosen?(node: HostAddress, role: NodeRole, previous: HostAddress | null): void;
}

export class NodeSelector {
  private chosen: HostAddress | null = null;
  /** The node chosen last, kept after it is forgotten, to tell a failover from a first choice. */
  private lastChosen: HostAddress | null = null;
  private probing: Promise<HostAddress> | null = null;
  /** Bumped whenever the chosen node is forgotten: connections of an older generation are stale. */
  generation = 0;

  constructor(
    readonly target: ConnectionTarget,
    private readonly clientConfig: (host: HostAddress) => ClientConfig,
    private readonly events: NodeSelectorEvents = {},
  ) {}

  /** The node a new connection should use: the remembered one, else the best match of a probe. */
  choose(): Promise<HostAddress> {
    if (this.chosen !== null) return Promise.resolve(this.chosen);
    this.probing ??= this.probe().finally(() => {
      this.probing = null;
    });
    return this.probing;
  }

  /** `node` refused a connection or turned out unsuitable: the next connection probes again. */
  reject(node: HostAddress): void {
    if (this.chosen === null || !sameHost(this.chosen, node)) return;
    this.chosen = null;
    this.generation += 1;
  }

  /** Connection settings for `node`. */
  configFor(node: HostAddress): ClientConfig {
    return this.clientConfig(node);
  }

  /** Records what a real connection to `node` reported, so a wrong role is caught at once. */
  confirm(node: HostAddress, role: NodeRole): void {
    if (roleMatches(role, this.target.targetSessionAttrs)) return;
    this.reject(node);
    throw this.unsuitable([`${formatHost(node)} is ${describeRole(role)}`], role.readOnly || role.standby);
  }

  private async probe(): Promise<HostAddress> {
    const attrs = this.target.targetSessionAttrs;
    const findings: string[] = [];
    let fallback: { node: HostAddress; role: NodeRole } | null = null;
    let answered = 0;
    let readOnly = 0;
    for (const node of this.target.hosts) {
      let role: NodeRole;
      try {
        role = await probeRole(this.clientConfig(node));
      } catch (error) {
        findings.push(`${formatHost(node)}: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      answered += 1;
      if (role.readOnly || role.standby) readOnly += 1;
      if (isPreferred(role, attrs)) return this.take(node, role);
      if (fallback === null && roleMatches(role, attrs)) fallback = { node, role };
      findings.push(`${formatHost(node)} is ${describeRole(role)}`);
    }
    if (fallback !== null) return this.take(fallback.node, fallback.role);
    throw this.unsuitable(findings, answered > 0 && readOnly === answered);
  }

  private take(node: HostAddress, role: NodeRole): HostAddress {
    const previous = this.lastChosen;
    this.chosen = node;
    this.lastChosen = node;
    this.events.chosen?.(node, role, previous);
    return node;
  }

  private unsuitable(findings: string[], onlyReadOnly: boolean): NoSuitableNodeError {
    return new NoSuitableNodeError(this.target.targetSessionAttrs, findings, onlyReadOnly);
  }
}

function sameHost(a: HostAddress, b: HostAddress): boolean {
  return a.host === b.host && a.port === b.port;
}

/** The parts of a pg Client this module reads that its typings do not declare. */
interface ClientInternals {
  connection: {
    on(event: 'parameterStatus', listener: (message: { parameterName: string; parameterValue: string }) => void): void;
    stream: { destroyed?: boolean };
  };
  connectionParameters: { host: string; port: number };
}

/** Collects the parameter status messages of `client`'s startup (must be called before connecting). */
function recordParameterStatus(client: Client): Map<string, string> {
  const status = new Map<string, string>();
  (client as unknown as ClientInternals).connection.on('parameterStatus', (message) =>
    status.set(message.parameterName, message.parameterValue),
  );
  return status;
}

/** The role `client` reported at startup; servers before 14 report neither parameter, so ask them. */
async function roleOf(client: Client, status: Map<string, string>): Promise<NodeRole> {
  const standby = status.get('in_hot_standby');
  const readOnly = status.get('default_transaction_read_only');
  if (standby !== undefined && readOnly !== undefined)
    return { standby: standby === 'on', readOnly: readOnly === 'on' };
  const result = await client.query<{ standby: boolean; read_only: string }>(
    "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS read_only",
  );
  return { standby: result.rows[0].standby, readOnly: result.rows[0].read_only === 'on' };
}

/** Connects to one node only to learn its role. */
async function probeRole(config: ClientConfig): Promise<NodeRole> {
  const client = new Client(config);
  client.on('error', () => undefined);
  const status = recordParameterStatus(client);
  try {
    await client.connect();
    return await roleOf(client, status);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A pg Client that connects to the node `selector` chooses and refuses a node of the wrong role. */
export interface ChosenNodeClient extends Client {
  /** The node this connection landed on. */
  readonly node: HostAddress | null;
  /** The selector generation it was chosen in; older than the selector's means stale. */
  readonly generation: number;
}

/** The Client class a pg Pool (its `Client` option) and the LISTEN connection construct. */
export function chosenNodeClientClass(selector: NodeSelector): new (config?: ClientConfig) => ChosenNodeClient {
  return class extends Client implements ChosenNodeClient {
    node: HostAddress | null = null;
    generation = -1;
    private readonly status = recordParameterStatus(this);

    constructor(config?: ClientConfig) {
      super(config);
      // A connection lost while checked out must not crash the process: the query in progress
      // rejects with the error, and the pool's own listener drops the connection when idle.
      this.on('error', () => undefined);
    }

    override connect(): Promise<Client>;
    override connect(callback: (err: Error | null) => void): void;
    override connect(callback?: (err: Error | null) => void): Promise<Client> | void {
      const connected = this.connectToChosenNode();
      if (callback === undefined) return connected;
      connected.then(
        () => callback(null),
        (error: Error) => callback(error),
      );
    }

    private async connectToChosenNode(): Promise<Client> {
      const node = await selector.choose();
      const internals = this as unknown as ClientInternals;
      // The pool's connect timeout may have fired while the probe ran.
      if (internals.connection.stream.destroyed === true)
        throw new Error('Connection terminated due to connection timeout');
      this.host = node.host;
      this.port = node.port;
      internals.connectionParameters.host = node.host;
      internals.connectionParameters.port = node.port;
      try {
        await super.connect();
      } catch (error) {
        selector.reject(node);
        throw error;
      }
      try {
        selector.confirm(node, await roleOf(this, this.status));
      } catch (error) {
        await this.end().catch(() => undefined);
        throw error;
      }
      this.node = node;
      this.generation = selector.generation;
      return this;
    }
  };
}
