import { FreezeguardError } from './errors.js';

/** Event types Azure documents. Unknown types are kept as plain strings. */
export type KnownEventType = 'Freeze' | 'Reboot' | 'Redeploy' | 'Preempt' | 'Terminate';
/** `KnownEventType`, or any future type Azure adds (kept, never acted on). */
export type EventType = KnownEventType | (string & {});
/** Azure has no `Completed`: a finished or cancelled event leaves the document. */
export type EventStatus = 'Scheduled' | 'Started' | (string & {});

/** Every event type freezeguard knows how to act on. */
export const KNOWN_EVENT_TYPES: readonly KnownEventType[] = [
  'Freeze',
  'Reboot',
  'Redeploy',
  'Preempt',
  'Terminate',
];

/** One entry of `Events`, normalised: `notBefore` parsed, optional fields filled. */
export interface ScheduledEvent {
  readonly EventId: string;
  readonly EventType: EventType;
  readonly ResourceType: string;
  readonly Resources: readonly string[];
  readonly EventStatus: EventStatus;
  /** The raw `NotBefore` string as Azure sent it (`""` once Started). */
  readonly NotBefore: string;
  readonly Description?: string;
  readonly EventSource?: string;
  /** `-1` unknown, `0` no impact; absent on api-versions before 2020-07-01. */
  readonly DurationInSeconds?: number;
  /** `NotBefore` as epoch milliseconds, or `null` when empty. */
  readonly notBefore: number | null;
}

/** A parsed Scheduled Events document. */
export interface ScheduledEventsDocument {
  readonly DocumentIncarnation: number;
  /** The entries that could be read. */
  readonly Events: readonly ScheduledEvent[];
  /**
   * Entries that could not be read, one message each (absent when all could). One bad
   * entry must not hide a valid Freeze next to it.
   */
  readonly Problems?: readonly string[];
}

const MONTHS: Record<string, number> = {
  jan: 0,
  feb: 1,
  mar: 2,
  apr: 3,
  may: 4,
  jun: 5,
  jul: 6,
  aug: 7,
  sep: 8,
  oct: 9,
  nov: 10,
  dec: 11,
};

// RFC 1123 with the weekday optional and unchecked: Azure has been seen sending a
// weekday that does not match the date, and the date is what matters.
const RFC1123 =
  /^(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2})(?::(\d{2}))?\s*(?:GMT|UTC|Z|\+0000)$/;
const ISO8601 =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Parses an IMDS `NotBefore`: RFC 1123 (weekday ignored), ISO 8601, or `""` → `null`.
 * Throws `ERR_BAD_DOCUMENT` for anything else.
 *
 * @example
 * ```ts
 * parseNotBefore('Mon, 11 Apr 2026 22:26:58 GMT'); // 1775946418000
 * parseNotBefore(''); // null
 * ```
 */
export function parseNotBefore(value: string): number | null {
  const text = value.trim();
  if (text === '') return null;
  const rfc = RFC1123.exec(text);
  if (rfc) {
    const month = MONTHS[rfc[2]!.toLowerCase()];
    if (month !== undefined) {
      return checkedUtc(text, +rfc[3]!, month, +rfc[1]!, +rfc[4]!, +rfc[5]!, +(rfc[6] ?? 0), 0);
    }
  }
  const iso = ISO8601.exec(text);
  if (iso) {
    const ms = iso[7] ? Math.floor(Number(`0.${iso[7]}`) * 1000) : 0;
    const base = checkedUtc(
      text,
      +iso[1]!,
      +iso[2]! - 1,
      +iso[3]!,
      +iso[4]!,
      +iso[5]!,
      +(iso[6] ?? 0),
      ms,
    );
    const zone = iso[8];
    if (!zone || zone.toUpperCase() === 'Z') return base;
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offsetMin = +digits.slice(0, 2) * 60 + +digits.slice(2, 4);
    return base - sign * offsetMin * 60_000;
  }
  throw new FreezeguardError(
    'ERR_BAD_DOCUMENT',
    `NotBefore is not a date: ${JSON.stringify(value)}`,
  );
}

function checkedUtc(
  text: string,
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  ms: number,
): number {
  const t = Date.UTC(year, month, day, hour, minute, second, ms);
  const d = new Date(t);
  // Date.UTC rolls 31 Feb over into March; a date that does not round-trip is invalid.
  if (
    Number.isNaN(t) ||
    d.getUTCFullYear() !== year ||
    d.getUTCMonth() !== month ||
    d.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 60
  ) {
    throw new FreezeguardError(
      'ERR_BAD_DOCUMENT',
      `NotBefore is not a valid date: ${JSON.stringify(text)}`,
    );
  }
  return t;
}

function bad(message: string, cause?: unknown): never {
  throw new FreezeguardError('ERR_BAD_DOCUMENT', message, { cause });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(event: Record<string, unknown>, key: string, index: number): string {
  const value = event[key];
  if (typeof value !== 'string') {
    bad(`Events[${index}].${key} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

function optionalString(
  event: Record<string, unknown>,
  key: string,
  index: number,
): string | undefined {
  const value = event[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') bad(`Events[${index}].${key} must be a string`);
  return value;
}

/**
 * Validates and normalises a Scheduled Events document, from JSON text or a parsed
 * object. Missing newer fields (Description, EventSource, DurationInSeconds) are fine;
 * unknown EventType/EventStatus values are kept. A malformed entry is left out and
 * described in `Problems` (the valid ones are kept); a malformed document throws a
 * {@link FreezeguardError} with `code: 'ERR_BAD_DOCUMENT'` saying what is wrong.
 *
 * @example
 * ```ts
 * const doc = parseScheduledEventsDocument(await res.text());
 * for (const ev of doc.Events) console.log(ev.EventType, ev.notBefore);
 * ```
 */
export function parseScheduledEventsDocument(input: unknown): ScheduledEventsDocument {
  let value: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const text = typeof input === 'string' ? input : new TextDecoder().decode(input);
    try {
      value = JSON.parse(text);
    } catch (cause) {
      bad(`document is not JSON: ${(cause as Error).message}`, cause);
    }
  }
  if (!isRecord(value)) bad('document must be a JSON object');
  const incarnation = value.DocumentIncarnation;
  if (typeof incarnation !== 'number' || !Number.isInteger(incarnation) || incarnation < 0) {
    bad('DocumentIncarnation must be a non-negative integer');
  }
  const rawEvents = value.Events;
  if (!Array.isArray(rawEvents)) bad('Events must be an array');
  const events: ScheduledEvent[] = [];
  const problems: string[] = [];
  (rawEvents as unknown[]).forEach((raw, index) => {
    try {
      events.push(parseEvent(raw, index));
    } catch (err) {
      const id =
        isRecord(raw) && typeof raw.EventId === 'string' ? ` (EventId ${raw.EventId})` : '';
      problems.push(`${(err as Error).message}${id}`);
    }
  });
  return problems.length === 0
    ? { DocumentIncarnation: incarnation as number, Events: events }
    : { DocumentIncarnation: incarnation as number, Events: events, Problems: problems };
}

function parseEvent(raw: unknown, index: number): ScheduledEvent {
  if (!isRecord(raw)) bad(`Events[${index}] must be an object`);
  const resources = raw.Resources;
  if (!Array.isArray(resources) || !resources.every((r) => typeof r === 'string')) {
    bad(`Events[${index}].Resources must be an array of strings`);
  }
  const eventId = requireString(raw, 'EventId', index);
  if (eventId === '') bad(`Events[${index}].EventId must not be empty`);
  const notBeforeText = optionalString(raw, 'NotBefore', index) ?? '';
  let notBefore: number | null;
  try {
    notBefore = parseNotBefore(notBeforeText);
  } catch (cause) {
    bad(`Events[${index}].${(cause as Error).message}`, cause);
  }
  const duration = raw.DurationInSeconds;
  if (duration !== undefined && duration !== null) {
    if (typeof duration !== 'number' || !Number.isFinite(duration) || duration < -1) {
      bad(`Events[${index}].DurationInSeconds must be a number ≥ -1`);
    }
  }
  const event: ScheduledEvent = {
    EventId: eventId,
    EventType: requireString(raw, 'EventType', index),
    ResourceType: optionalString(raw, 'ResourceType', index) ?? 'VirtualMachine',
    Resources: resources as string[],
    EventStatus: requireString(raw, 'EventStatus', index),
    NotBefore: notBeforeText,
    notBefore,
    ...withOptional('Description', optionalString(raw, 'Description', index)),
    ...withOptional('EventSource', optionalString(raw, 'EventSource', index)),
    ...withOptional('DurationInSeconds', typeof duration === 'number' ? duration : undefined),
  };
  return event;
}

function withOptional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

/** True for the event types a VM does not survive in place (it reboots or goes away). */
export function isShutdownEvent(type: EventType): boolean {
  return type === 'Reboot' || type === 'Redeploy' || type === 'Preempt' || type === 'Terminate';
}
