/**
 * Registries of orchestrations (name -> semver -> handler, Latest policy) and activities
 * (docs/runtime.md, "Registration and versions").
 *
 * Registration never throws: like duroxide, mistakes (bad semver, a version that is not
 * strictly greater than the ones already registered, a reserved name) are collected and make
 * `Runtime.start()` fail with all of them listed.
 */
import * as semver from 'semver';
import { MAX_NAME_BYTES } from '../core/limits';
import { SYSTEM_ACTIVITY_PREFIX } from '../core/system-activities';
import type { OrchestrationFunction, ResolvedHandler, Untyped } from '../core/turn-api';

/** Version given to plain (unversioned) registrations. */
export const DEFAULT_VERSION = '1.0.0';

/** An activity implementation as registered by users. */
// Activity inputs and results are arbitrary JSON values chosen by the user.
export type ActivityFunction<Ctx> = (ctx: Ctx, input: Untyped) => unknown;

function nameProblem(kind: string, name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return `${kind} name must be a non-empty string`;
  // The same limits the Client enforces, so a registered name can always be started and stored.
  if (name.includes('\u0000')) return `${kind} name must not contain NUL characters`;
  if (/\p{Surrogate}/u.test(name)) return `${kind} name must not contain lone UTF-16 surrogates`;
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_NAME_BYTES)
    return `${kind} name is ${bytes} bytes long; the limit MAX_NAME_BYTES is ${MAX_NAME_BYTES} bytes`;
  if (name.startsWith(SYSTEM_ACTIVITY_PREFIX)) {
    return `${kind} name '${name}' uses the reserved prefix '${SYSTEM_ACTIVITY_PREFIX}'`;
  }
  return null;
}

/** Orchestration handlers by name and exact version. */
export class OrchestrationRegistry {
  /** Versions of each name in registration (= ascending) order. */
  private readonly byName = new Map<string, Array<{ version: string; handler: OrchestrationFunction }>>();
  readonly problems: string[] = [];
  /** Accepted but suspicious registrations, logged at WARN by `Runtime.start()` once logging is set up. */
  readonly warnings: string[] = [];

  register(name: string, version: string, handler: unknown): void {
    const problem = nameProblem('orchestration', name);
    if (problem !== null) return void this.problems.push(problem);
    if (typeof handler !== 'function') {
      return void this.problems.push(
        `orchestration '${name}': handler must be a generator function or an async function`,
      );
    }
    const exact = typeof version === 'string' ? semver.valid(version) : null;
    if (exact === null) {
      return void this.problems.push(`orchestration '${name}': invalid semver version '${String(version)}'`);
    }
    const versions = this.byName.get(name) ?? [];
    const existing = versions.find((v) => v.version === exact);
    if (existing !== undefined) {
      // Same name and version again: the newest function wins (duroxide's function map does
      // the same, and programs written for it may rely on it), but a duplicate is usually a mistake.
      existing.handler = handler as OrchestrationFunction;
      this.warnings.push(`orchestration '${name}' version ${exact} is registered twice; the last registration is used`);
      return;
    }
    const latest = versions[versions.length - 1];
    if (latest !== undefined && !semver.gt(exact, latest.version)) {
      return void this.problems.push(
        `orchestration '${name}': version ${exact} must be registered after versions lower than it ` +
          `(versions must be registered in strictly increasing order; ${latest.version} is already registered)`,
      );
    }
    versions.push({ version: exact, handler: handler as OrchestrationFunction });
    this.byName.set(name, versions);
  }

  /**
   * Registers a built-in orchestration under a reserved name (e.g. the schedule orchestration),
   * which user registrations cannot take.
   */
  registerSystem(name: string, version: string, handler: OrchestrationFunction): void {
    this.byName.set(name, [{ version, handler }]);
  }

  /** Exact version when one is requested, else the latest registered; null when none matches. */
  resolve(name: string, requestedVersion: string | null): ResolvedHandler | null {
    const versions = this.byName.get(name);
    if (versions === undefined || versions.length === 0) return null;
    if (requestedVersion === null) {
      const latest = versions[versions.length - 1];
      return { version: latest.version, handler: latest.handler };
    }
    const wanted = semver.valid(requestedVersion);
    const match = versions.find((v) => v.version === wanted);
    return match === undefined ? null : { version: match.version, handler: match.handler };
  }
}

/** Activity handlers by name (activities are not versioned). */
export class ActivityRegistry<Ctx> {
  private readonly handlers = new Map<string, ActivityFunction<Ctx>>();
  readonly problems: string[] = [];
  /** Accepted but suspicious registrations, logged at WARN by `Runtime.start()` once logging is set up. */
  readonly warnings: string[] = [];

  register(name: string, handler: unknown): void {
    const problem = nameProblem('activity', name);
    if (problem !== null) return void this.problems.push(problem);
    if (typeof handler !== 'function') {
      return void this.problems.push(`activity '${name}': handler must be a function`);
    }
    if (this.handlers.has(name)) {
      // Accepted as duroxide does (the last one wins), but a duplicate is usually a mistake.
      this.warnings.push(`activity '${name}' is registered twice; the last registration is used`);
    }
    this.handlers.set(name, handler as ActivityFunction<Ctx>);
  }

  get(name: string): ActivityFunction<Ctx> | undefined {
    return this.handlers.get(name);
  }
}
