/**
 * Resolves after `ms` real milliseconds.
 *
 * @example
 * ```ts
 * await wait(100);
 * ```
 */
export const wait = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` every 20 ms until it is true; throws naming `what` after `timeoutMs`.
 *
 * @example
 * ```ts
 * await until(() => guard.state === 'idle', 5_000, 'idle');
 * ```
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await wait(20);
  }
}
