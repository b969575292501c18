/** Resolves after `ms` (for pacing a workload; never to wait for something to have happened). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
