/**
 * The schedule half of the Client: create, pause, resume, trigger, update, delete and list
 * schedules. A schedule is an instance of the built-in schedule orchestration
 * (src/schedules/schedule-orchestration.ts); this module only validates, starts it, sends it
 * commands on its control queue and reads the view it publishes as custom status.
 */
import type { InstancePageCursor, Provider } from '../provider/contract';
import { ScheduleError } from '../schedules/errors';
import {
  parseScheduleView,
  requireScheduleId,
  SCHEDULE_CONTROL_QUEUE,
  SCHEDULE_ORCHESTRATION,
  scheduleIdOf,
  scheduleInstanceId,
  toScheduleSpec,
  type ScheduleCommand,
  type ScheduleInfo,
  type ScheduleOptions,
  type ScheduleState,
} from '../schedules/model';

/** What the schedule operations need from the Client that owns them. */
export interface ScheduleClientHost {
  startOrchestration(instanceId: string, orchestrationName: string, input?: unknown): Promise<void>;
  enqueueEvent(instanceId: string, queueName: string, data?: unknown): Promise<void>;
}

const PAGE_SIZE = 1000;

function toScheduleInfo(summary: {
  instanceId: string;
  status: string;
  customStatus: string | null;
  error: string | null;
}): ScheduleInfo | null {
  const view = parseScheduleView(summary.customStatus);
  if (view === null) return null;
  return { ...view, scheduleId: scheduleIdOf(summary.instanceId), status: summary.status, error: summary.error };
}

/** Schedule operations of one Client. */
export class ScheduleClient {
  constructor(
    private readonly provider: Provider,
    private readonly host: ScheduleClientHost,
  ) {}

  async create(scheduleId: unknown, options: ScheduleOptions): Promise<void> {
    const op = 'createSchedule';
    const id = requireScheduleId(op, scheduleId);
    const spec = toScheduleSpec(op, id, options);
    const instanceId = scheduleInstanceId(id);
    const existing = await this.provider.getInstanceInfo(instanceId);
    if (existing !== null) {
      const what =
        existing.orchestrationName === SCHEDULE_ORCHESTRATION
          ? 'a schedule with this id already exists'
          : `instance '${instanceId}' already exists (orchestration '${existing.orchestrationName}')`;
      throw new ScheduleError(op, 'duplicate_schedule', `${what}; delete it first or pick another id`, id);
    }
    const state: ScheduleState = {
      scheduleId: id,
      spec,
      paused: false,
      cursorMs: null,
      lastRun: null,
      counts: { started: 0, triggered: 0, skippedOverlap: 0, cancelledPrevious: 0, missed: 0 },
    };
    await this.host.startOrchestration(instanceId, SCHEDULE_ORCHESTRATION, state);
  }

  async update(scheduleId: unknown, options: ScheduleOptions): Promise<void> {
    const op = 'updateSchedule';
    const id = requireScheduleId(op, scheduleId);
    const spec = toScheduleSpec(op, id, options);
    await this.send(op, id, { command: 'update', spec });
  }

  async command(operation: string, scheduleId: unknown, command: ScheduleCommand): Promise<void> {
    await this.send(operation, requireScheduleId(operation, scheduleId), command);
  }

  async delete(scheduleId: unknown): Promise<void> {
    const op = 'deleteSchedule';
    const id = requireScheduleId(op, scheduleId);
    await this.requireSchedule(op, id);
    // Force: the schedule instance always waits on a timer or its queue; its runs are left alone.
    await this.provider.deleteInstance(scheduleInstanceId(id), { force: true });
  }

  async get(scheduleId: unknown): Promise<ScheduleInfo> {
    const op = 'getSchedule';
    const id = requireScheduleId(op, scheduleId);
    const instanceId = await this.requireSchedule(op, id);
    const [info, status] = await Promise.all([
      this.provider.getInstanceInfo(instanceId),
      this.provider.getInstanceStatus(instanceId),
    ]);
    const schedule = toScheduleInfo({
      instanceId,
      status: info?.status ?? status.status,
      customStatus: status.customStatus,
      error: status.error ?? null,
    });
    if (schedule === null)
      throw new ScheduleError(op, 'schedule_not_found', 'the schedule has not taken its first turn yet', id);
    return schedule;
  }

  async list(): Promise<ScheduleInfo[]> {
    const provider = this.provider;
    if (provider.listInstancesPage === undefined)
      throw new Error(`listSchedules: provider '${provider.name}' cannot page instances`);
    const schedules: ScheduleInfo[] = [];
    let cursor: InstancePageCursor | undefined;
    for (;;) {
      const page = await provider.listInstancesPage({
        orchestrationName: SCHEDULE_ORCHESTRATION,
        limit: PAGE_SIZE,
        cursor,
      });
      for (const summary of page.items) {
        const schedule = toScheduleInfo(summary);
        if (schedule !== null) schedules.push(schedule);
      }
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    return schedules.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
  }

  private async send(operation: string, scheduleId: string, command: ScheduleCommand): Promise<void> {
    const instanceId = await this.requireSchedule(operation, scheduleId);
    await this.host.enqueueEvent(instanceId, SCHEDULE_CONTROL_QUEUE, command);
  }

  /** @throws ScheduleError `schedule_not_found` unless a schedule instance with this id exists. */
  private async requireSchedule(operation: string, scheduleId: string): Promise<string> {
    const instanceId = scheduleInstanceId(scheduleId);
    const info = await this.provider.getInstanceInfo(instanceId);
    if (info === null || info.orchestrationName !== SCHEDULE_ORCHESTRATION) {
      throw new ScheduleError(
        operation,
        'schedule_not_found',
        'no schedule with this id exists (a new schedule appears once a runtime has taken its first turn)',
        scheduleId,
      );
    }
    return instanceId;
  }
}
