/**
 * Process-level plumbing of async orchestrations: the deterministic microtask drain, the
 * async-local scope every orchestration body runs in, and what that scope lets us attribute to
 * an orchestration (non-durable resources it creates, promises it leaves rejected).
 *
 * Async code cannot be stopped mid-way like a generator, so the engine drives it by settling one
 * durable task at a time and then waiting until the microtask queue is empty ({@link drain}).
 * Anything that resumes the code from outside the microtask queue (timers, I/O) is invisible to
 * that drive and therefore non-deterministic; the scope exists to notice it.
 */
import { AsyncLocalStorage, createHook } from 'node:async_hooks';

/** What the engine learns about one drive of an orchestration body. */
export interface DriveScope {
  /** Guard mode: report non-durable resources created by the orchestration. */
  readonly guarded: boolean;
  /** A non-durable resource (`what` names it) was created by orchestration code at `where`. */
  foreignResource(what: string, where: string): void;
  /** A promise created by orchestration code was rejected and nothing handled it. */
  unhandledRejection(reason: unknown): void;
}

/**
 * Resource types that resume code from a macrotask, by async_hooks type name. Promise-only
 * types and the write requests of `console.log` are absent on purpose: they do not make the
 * orchestration wait for anything outside its history.
 */
const NON_DURABLE_RESOURCES: Readonly<Record<string, string>> = {
  Timeout: 'a timer (setTimeout/setInterval)',
  Immediate: 'setImmediate',
  FSREQCALLBACK: 'file-system I/O (fs)',
  FSREQPROMISE: 'file-system I/O (fs/promises)',
  FILEHANDLE: 'file-system I/O (fs/promises)',
  STATWATCHER: 'a file watcher (fs.watchFile)',
  FSEVENTWRAP: 'a file watcher (fs.watch)',
  TCPWRAP: 'a network socket (net, http, fetch)',
  TCPCONNECTWRAP: 'a network connection (net, http, fetch)',
  PIPECONNECTWRAP: 'a pipe connection (net)',
  TLSWRAP: 'a TLS connection (https, fetch)',
  UDPWRAP: 'a UDP socket (dgram)',
  GETADDRINFOREQWRAP: 'a DNS lookup (dns, net, http, fetch)',
  GETNAMEINFOREQWRAP: 'a DNS lookup (dns)',
  QUERYWRAP: 'a DNS query (dns)',
  HTTPCLIENTREQUEST: 'an HTTP request (http)',
  PROCESSWRAP: 'a child process',
  WORKER: 'a worker thread',
  ZLIB: 'zlib compression',
  SIGNALWRAP: 'a signal handler',
};

const storage = new AsyncLocalStorage<DriveScope>();
/** Promises created inside a drive scope; weak so settled promises are collected. */
const ownedPromises = new WeakMap<object, DriveScope>();

/** The first stack frame outside Node internals and this file: where orchestration code made the resource. */
function callSite(): string {
  const lines = (new Error().stack ?? '').split('\n').slice(1);
  const frame = lines.find(
    (line) => !line.includes('node:') && !line.includes('<anonymous>') && !line.includes(__filename),
  );
  return frame === undefined
    ? 'a place inside Node (no orchestration frame on the stack)'
    : frame.trim().replace(/^at /, '');
}

const hook = createHook({
  init(_asyncId, type, _triggerAsyncId, resource) {
    const scope = storage.getStore();
    if (scope === undefined) return;
    if (type === 'PROMISE') ownedPromises.set(resource, scope);
    else if (scope.guarded && NON_DURABLE_RESOURCES[type] !== undefined)
      scope.foreignResource(`${NON_DURABLE_RESOURCES[type]} [${type}]`, callSite());
  },
});

/**
 * Node treats an unhandled rejection as fatal by default. A rejection that belongs to an
 * orchestration goes to its scope instead (it is logged; it must not take the process down);
 * any other rejection keeps Node's default behaviour, which this listener's mere presence would
 * otherwise switch off.
 */
function onUnhandledRejection(reason: unknown, promise: Promise<unknown>): void {
  const scope = ownedPromises.get(promise);
  if (scope !== undefined) return scope.unhandledRejection(reason);
  const explicitMode = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((arg) =>
    arg.startsWith('--unhandled-rejections'),
  );
  if (!explicitMode && process.listenerCount('unhandledRejection') === 1) throw reason;
}

let activeDrives = 0;
let listening = false;

/** Starts tracking for one async turn (refcounted: the hooks cost something only while a turn runs). */
export function enterDrive(): void {
  if (activeDrives++ === 0) hook.enable();
  if (!listening) {
    // Kept for the life of the process: a rejection may be reported after its turn ended.
    process.on('unhandledRejection', onUnhandledRejection);
    listening = true;
  }
}

/** Ends tracking for one async turn. */
export function leaveDrive(): void {
  if (--activeDrives > 0) return;
  hook.disable();
  // Stops the async-local propagation cost for every other promise in the process.
  storage.disable();
}

/** Calls `fn` with `scope` as the current drive scope; promises and resources it creates inherit it. */
export function runInScope<T>(scope: DriveScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/**
 * Resolves once every microtask queued so far, and every microtask those queue, has run.
 * A `process.nextTick` callback queued from inside a microtask runs only after Node has emptied
 * the whole microtask queue, so it marks quiescence exactly, without a macrotask boundary
 * (about a microsecond instead of a trip around the event loop).
 */
export function drain(): Promise<void> {
  return new Promise((resolve) => queueMicrotask(() => process.nextTick(resolve)));
}
