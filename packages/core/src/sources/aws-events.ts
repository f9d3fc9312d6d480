import { parseNotBefore } from '../document.js';
import { FreezeguardError } from '../errors.js';

/*
 * EC2 scheduled events as IMDS lists them, and how one that leaves the active list ended.
 *
 * EC2 never says an event started: an entry of `events/maintenance/scheduled` is `active`
 * until the work is done, then it is `completed` (or `canceled` when AWS withdrew it) and
 * moves to `events/maintenance/history`, its Description prefixed `[Completed]` or
 * `[Canceled]`. Some answers still list a finished entry under `scheduled` with that
 * State. The lifecycle needs to know which of the two it was: a completed maintenance
 * ends the cycle as a normal resume, a canceled one as cancelled.
 */

/** How an EC2 scheduled event ended. */
export type Ec2EventEnd = 'completed' | 'canceled';

/** One active entry of `events/maintenance/scheduled`. */
export interface Ec2ActiveEvent {
  readonly id: string;
  readonly code: string;
  readonly description: string;
  /** Epoch ms of NotBefore. */
  readonly notBefore: number;
}

/** A parsed `events/maintenance/scheduled` or `history` list. */
export interface Ec2EventList {
  readonly active: readonly Ec2ActiveEvent[];
  /** EventId → how it ended, for every entry that says it is over. */
  readonly ended: ReadonlyMap<string, Ec2EventEnd>;
}

function bad(message: string, cause?: unknown): FreezeguardError {
  return new FreezeguardError('ERR_BAD_DOCUMENT', `EC2 IMDS: ${message}`, { cause });
}

/** The end an entry's State or Description prefix states, or null while it is active. */
function endOf(state: string, description: string): Ec2EventEnd | null {
  if (state === 'completed' || /^\[completed\]/i.test(description)) return 'completed';
  if (
    state === 'canceled' ||
    state === 'cancelled' ||
    /^\[(canceled|cancelled)\]/i.test(description)
  )
    return 'canceled';
  return null;
}

/**
 * Parses the JSON array EC2 serves at `events/maintenance/scheduled` (or `history`):
 * entries `{ Code, Description, EventId, NotBefore, NotAfter, State }`. Finished entries
 * need only an EventId; active ones must carry a Code and a NotBefore.
 *
 * @example
 * ```ts
 * const list = parseEc2EventList(JSON.parse(body), 'events/maintenance/scheduled');
 * list.active[0]?.notBefore; // epoch ms
 * ```
 */
export function parseEc2EventList(body: unknown, what: string): Ec2EventList {
  if (!Array.isArray(body)) throw bad(`${what} must be a JSON array`);
  const active: Ec2ActiveEvent[] = [];
  const ended = new Map<string, Ec2EventEnd>();
  body.forEach((raw: unknown, i: number) => {
    if (typeof raw !== 'object' || raw === null) throw bad(`${what}[${i}] must be an object`);
    const e = raw as Record<string, unknown>;
    const state = typeof e.State === 'string' ? e.State.toLowerCase() : 'active';
    const description = typeof e.Description === 'string' ? e.Description : '';
    if (typeof e.EventId !== 'string' || e.EventId === '')
      throw bad(`${what}[${i}].EventId must be a string`);
    const end = endOf(state, description);
    if (end !== null) {
      ended.set(e.EventId, end);
      return;
    }
    if (typeof e.Code !== 'string' || e.Code === '')
      throw bad(`${what}[${i}].Code must be a string`);
    active.push({
      id: e.EventId,
      code: e.Code,
      description,
      notBefore: ec2Date(e.NotBefore, `${what}[${i}].NotBefore`),
    });
  });
  return { active, ended };
}

/**
 * Parses an EC2 date (`21 Jan 2019 09:00:43 GMT`, or ISO 8601) to epoch ms.
 *
 * @example
 * ```ts
 * ec2Date('21 Jan 2019 09:00:43 GMT', 'NotBefore'); // 1548061243000
 * ```
 */
export function ec2Date(value: unknown, what: string): number {
  if (typeof value !== 'string') throw bad(`${what} must be a date string`);
  let ms: number | null;
  try {
    ms = parseNotBefore(value);
  } catch (cause) {
    throw bad(`${what} is not a date: ${JSON.stringify(value.slice(0, 80))}`, cause);
  }
  if (ms === null) throw bad(`${what} is empty`);
  return ms;
}

/**
 * How an event that left the active list ended: what EC2 says about it (its State, in
 * `scheduled` or in `history`), else a guess from the time: EC2 does the work inside the
 * window, so an event gone after its NotBefore completed, one gone before it was canceled.
 *
 * @example
 * ```ts
 * ec2EventEnd({ said: undefined, notBefore: Date.parse('2026-01-01'), now: Date.now() }); // 'completed'
 * ```
 */
export function ec2EventEnd(input: {
  readonly said: Ec2EventEnd | undefined;
  readonly notBefore: number;
  readonly now: number;
}): Ec2EventEnd {
  if (input.said !== undefined) return input.said;
  return input.now >= input.notBefore ? 'completed' : 'canceled';
}
