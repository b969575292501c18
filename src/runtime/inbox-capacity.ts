/**
 * How many claimed activities may wait in the activity pool's inbox for a busy slot.
 *
 * A fused ack that claims its chain's next activity while every slot is busy puts it in the inbox
 * (handoff-inbox.ts) instead of the queue, where it would cost a fetch: a round trip and a scan of
 * the queue. But an item in the inbox is this runtime's alone, and it runs before queued items of
 * a higher priority level, so its wait must stay short. With `capacity` places and `slots` slots
 * the last item waits about capacity / slots activity durations: one place per slot keeps that to
 * one activity's time, whatever the activities take. While the recent activities are all short, a
 * few places per slot still keep it within {@link INBOX_WAIT_BUDGET_MS}, and more chains of short
 * activities then run without a slot waiting for its fused ack (README, "An inbox sized by the
 * activities": 40 chains of 5 on fresh runtimes, 15-25 % more orchestrations/s).
 */

/** The longest an item should wait in the inbox when places are added for short activities (ms). */
export const INBOX_WAIT_BUDGET_MS = 2;
/** The most inbox places per slot, however short the activities. */
export const MAX_INBOX_PLACES_PER_SLOT = 4;
/** Activities remembered: the third longest of them sizes the inbox. */
const RECENT_ACTIVITIES = 16;
/** The rank (0: the longest) of the run time that sizes the inbox. */
const LONG_RANK = 2;

export class InboxCapacity {
  /** Run times of the last activities (ms); unknown ones count as long. */
  private readonly recentMs: number[] = new Array<number>(RECENT_ACTIVITIES).fill(Number.POSITIVE_INFINITY);
  private recorded = 0;
  private placesPerSlot = 1;

  constructor(private readonly slots: number) {}

  /** Places for the pool's slots now: one per slot until 14 short activities ran. */
  get current(): number {
    return this.slots * this.placesPerSlot;
  }

  /** Records how long an activity ran (ms); returns the capacity that follows. */
  record(runMs: number): number {
    this.recentMs[this.recorded++ % RECENT_ACTIVITIES] = runMs;
    // The third longest: a garbage collection or a compilation that lengthens one short activity
    // now and then does not shrink the inbox, three long activities in the last 16 do.
    const long = [...this.recentMs].sort((a, b) => b - a)[LONG_RANK];
    // k places per slot: the last item waits about k activity durations.
    const fit = long <= 0 ? MAX_INBOX_PLACES_PER_SLOT : Math.floor(INBOX_WAIT_BUDGET_MS / long);
    this.placesPerSlot = Math.min(MAX_INBOX_PLACES_PER_SLOT, Math.max(1, fit));
    return this.current;
  }
}
