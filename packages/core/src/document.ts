import { FreezeguardError } from './errors.js';
import type { EventStatus, EventType, MaintenanceDocument, MaintenanceEvent } from './event.js';

/**
 * One entry of Azure's Scheduled Events document, as IMDS sends it: the wire format,
 * read only by {@link parseScheduledEventsDocument} (and written by emulators).
 */
export interface ScheduledEvent {
  readonly EventId: string;
  readonly EventType: EventType;
  readonly ResourceType?: string;
  readonly Resources: readonly string[];
  readonly EventStatus: EventStatus;
  /** RFC 1123 text (`""` once Started). */
  readonly NotBefore: string;
  readonly Description?: string;
  readonly EventSource?: string;
  /** `-1` unknown, `0` no impact; absent on api-versions before 2020-07-01. */
  readonly DurationInSeconds?: number;
}

/** Azure's Scheduled Events document, as IMDS sends it (the wire format). */
export interface ScheduledEventsDocument {
  readonly DocumentIncarnation: number;
  readonly Events: readonly ScheduledEvent[];
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
 * Reads Azure's Scheduled Events document (JSON text or a parsed object) into a
 * {@link MaintenanceDocument}: the edge where Azure's wire format ends. Missing newer
 * fields (Description, EventSource, DurationInSeconds) are fine; unknown EventType and
 * EventStatus values are kept. A malformed entry is left out and described in `problems`
 * (the valid ones are kept); a malformed document throws a {@link FreezeguardError} with
 * `code: 'ERR_BAD_DOCUMENT'` saying what is wrong.
 *
 * @example
 * ```ts
 * const doc = parseScheduledEventsDocument(await res.text());
 * for (const ev of doc.events) console.log(ev.kind, ev.notBefore);
 * ```
 */
export function parseScheduledEventsDocument(input: unknown): MaintenanceDocument {
  const value = jsonValue(input);
  if (!isRecord(value)) bad('document must be a JSON object');
  const incarnation = value.DocumentIncarnation;
  if (typeof incarnation !== 'number' || !Number.isInteger(incarnation) || incarnation < 0) {
    bad('DocumentIncarnation must be a non-negative integer');
  }
  const rawEvents = value.Events;
  if (!Array.isArray(rawEvents)) bad('Events must be an array');
  return collect(incarnation as number, rawEvents as unknown[], parseEvent, 'EventId');
}

/**
 * Reads a {@link MaintenanceDocument} back from its JSON (what one process relays to the
 * others of its VM, or the fleet's poller through Redis), with the same checks as
 * {@link parseScheduledEventsDocument}: a bad entry is left out and named in `problems`.
 *
 * @example
 * ```ts
 * const doc = parseMaintenanceDocument(JSON.parse(message));
 * ```
 */
export function parseMaintenanceDocument(input: unknown): MaintenanceDocument {
  const value = jsonValue(input);
  if (!isRecord(value)) bad('document must be a JSON object');
  const incarnation = value.incarnation;
  if (typeof incarnation !== 'number' || !Number.isInteger(incarnation) || incarnation < 0) {
    bad('incarnation must be a non-negative integer');
  }
  if (!Array.isArray(value.events)) bad('events must be an array');
  const doc = collect(incarnation as number, value.events as unknown[], readEvent, 'id');
  const relayed = Array.isArray(value.problems)
    ? value.problems.filter((p): p is string => typeof p === 'string')
    : [];
  const problems = [...relayed, ...(doc.problems ?? [])];
  return problems.length === 0 ? doc : { ...doc, problems };
}

/**
 * Writes a {@link MaintenanceDocument} in Azure's wire format (`NotBefore` as RFC 1123
 * text, `""` when none): for tools that print what IMDS says, and for emulators.
 *
 * @example
 * ```ts
 * JSON.stringify(toScheduledEventsDocument(doc)); // {"DocumentIncarnation":3,"Events":[…]}
 * ```
 */
export function toScheduledEventsDocument(doc: MaintenanceDocument): ScheduledEventsDocument {
  return {
    DocumentIncarnation: doc.incarnation,
    Events: doc.events.map((e) => ({
      EventId: e.id,
      EventType: e.kind,
      ResourceType: e.resourceType,
      Resources: [...e.resources],
      EventStatus: e.status,
      NotBefore: e.notBefore === null ? '' : new Date(e.notBefore).toUTCString(),
      ...withOptional('Description', e.description),
      ...withOptional('EventSource', e.origin),
      ...withOptional('DurationInSeconds', e.durationSeconds),
    })),
  };
}

function jsonValue(input: unknown): unknown {
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) return input;
  const text = typeof input === 'string' ? input : new TextDecoder().decode(input);
  try {
    return JSON.parse(text);
  } catch (cause) {
    bad(`document is not JSON: ${(cause as Error).message}`, cause);
  }
}

function collect(
  incarnation: number,
  raw: unknown[],
  read: (raw: unknown, index: number) => MaintenanceEvent,
  idKey: string,
): MaintenanceDocument {
  const events: MaintenanceEvent[] = [];
  const problems: string[] = [];
  raw.forEach((entry, index) => {
    try {
      events.push(read(entry, index));
    } catch (err) {
      const id =
        isRecord(entry) && typeof entry[idKey] === 'string' ? ` (${idKey} ${entry[idKey]})` : '';
      problems.push(`${(err as Error).message}${id}`);
    }
  });
  return problems.length === 0 ? { incarnation, events } : { incarnation, events, problems };
}

function resourcesOf(raw: Record<string, unknown>, key: string, index: number): string[] {
  const resources = raw[key];
  if (!Array.isArray(resources) || !resources.every((r) => typeof r === 'string')) {
    bad(`Events[${index}].${key} must be an array of strings`);
  }
  return resources as string[];
}

function durationOf(raw: Record<string, unknown>, key: string, index: number) {
  const duration = raw[key];
  if (duration === undefined || duration === null) return undefined;
  if (typeof duration !== 'number' || !Number.isFinite(duration) || duration < -1) {
    bad(`Events[${index}].${key} must be a number ≥ -1`);
  }
  return duration;
}

function parseEvent(raw: unknown, index: number): MaintenanceEvent {
  if (!isRecord(raw)) bad(`Events[${index}] must be an object`);
  const resources = resourcesOf(raw, 'Resources', index);
  const eventId = requireString(raw, 'EventId', index);
  if (eventId === '') bad(`Events[${index}].EventId must not be empty`);
  const notBeforeText = optionalString(raw, 'NotBefore', index) ?? '';
  let notBefore: number | null;
  try {
    notBefore = parseNotBefore(notBeforeText);
  } catch (cause) {
    bad(`Events[${index}].${(cause as Error).message}`, cause);
  }
  return {
    id: eventId,
    kind: requireString(raw, 'EventType', index),
    resourceType: optionalString(raw, 'ResourceType', index) ?? 'VirtualMachine',
    resources,
    status: requireString(raw, 'EventStatus', index),
    notBefore,
    ...withOptional('description', optionalString(raw, 'Description', index)),
    ...withOptional('origin', optionalString(raw, 'EventSource', index)),
    ...withOptional('durationSeconds', durationOf(raw, 'DurationInSeconds', index)),
  };
}

function readEvent(raw: unknown, index: number): MaintenanceEvent {
  if (!isRecord(raw)) bad(`Events[${index}] must be an object`);
  const id = requireString(raw, 'id', index);
  if (id === '') bad(`Events[${index}].id must not be empty`);
  const notBefore = raw.notBefore;
  if (notBefore !== null && (typeof notBefore !== 'number' || !Number.isFinite(notBefore))) {
    bad(`Events[${index}].notBefore must be epoch ms or null`);
  }
  return {
    id,
    kind: requireString(raw, 'kind', index),
    resourceType: optionalString(raw, 'resourceType', index) ?? 'VirtualMachine',
    resources: resourcesOf(raw, 'resources', index),
    status: requireString(raw, 'status', index),
    notBefore: notBefore as number | null,
    ...withOptional('description', optionalString(raw, 'description', index)),
    ...withOptional('origin', optionalString(raw, 'origin', index)),
    ...withOptional('durationSeconds', durationOf(raw, 'durationSeconds', index)),
  };
}

function withOptional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}
