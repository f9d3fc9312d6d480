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

/** `at` names the entry in messages: `Events[2]` in Azure's document, `events[2]` relayed. */
function requireString(event: Record<string, unknown>, key: string, at: string): string {
  const value = event[key];
  if (typeof value !== 'string') {
    bad(`${at}.${key} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

function optionalString(
  event: Record<string, unknown>,
  key: string,
  at: string,
): string | undefined {
  const value = event[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') bad(`${at}.${key} must be a string`);
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
  return readDocument(input, AZURE);
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
  return readDocument(input, RELAYED);
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

/** Where a document format keeps each field; the two formats differ only in names and in `notBefore`. */
interface DocumentFormat {
  readonly incarnation: string;
  readonly events: string;
  /** Problems relayed with the document (a relayed MaintenanceDocument carries its own). */
  readonly problems?: string;
  readonly keys: { readonly [K in keyof Required<MaintenanceEvent>]: string };
  /** `at` names the entry in messages (`Events[2]`), `key` the field. */
  notBefore(value: unknown, at: string, key: string): number | null;
}

const AZURE: DocumentFormat = {
  incarnation: 'DocumentIncarnation',
  events: 'Events',
  keys: {
    id: 'EventId',
    kind: 'EventType',
    status: 'EventStatus',
    resources: 'Resources',
    resourceType: 'ResourceType',
    notBefore: 'NotBefore',
    durationSeconds: 'DurationInSeconds',
    description: 'Description',
    origin: 'EventSource',
  },
  notBefore(value, at, key) {
    if (value !== undefined && value !== null && typeof value !== 'string')
      bad(`${at}.${key} must be a string`);
    try {
      return parseNotBefore((value as string | undefined | null) ?? '');
    } catch (cause) {
      bad(`${at}.${(cause as Error).message}`, cause);
    }
  },
};

const RELAYED: DocumentFormat = {
  incarnation: 'incarnation',
  events: 'events',
  problems: 'problems',
  keys: {
    id: 'id',
    kind: 'kind',
    status: 'status',
    resources: 'resources',
    resourceType: 'resourceType',
    notBefore: 'notBefore',
    durationSeconds: 'durationSeconds',
    description: 'description',
    origin: 'origin',
  },
  notBefore(value, at, key) {
    if (value !== null && (typeof value !== 'number' || !Number.isFinite(value)))
      bad(`${at}.${key} must be epoch ms or null`);
    return value as number | null;
  },
};

function readDocument(input: unknown, f: DocumentFormat): MaintenanceDocument {
  const value = jsonValue(input);
  if (!isRecord(value)) bad('document must be a JSON object');
  const incarnation = value[f.incarnation];
  if (typeof incarnation !== 'number' || !Number.isInteger(incarnation) || incarnation < 0) {
    bad(`${f.incarnation} must be a non-negative integer`);
  }
  const raw = value[f.events];
  if (!Array.isArray(raw)) bad(`${f.events} must be an array`);
  const relayed = f.problems ? value[f.problems] : undefined;
  const events: MaintenanceEvent[] = [];
  const problems = Array.isArray(relayed)
    ? relayed.filter((p): p is string => typeof p === 'string')
    : [];
  const idKey = f.keys.id;
  (raw as unknown[]).forEach((entry, index) => {
    try {
      events.push(readEvent(entry, index, f));
    } catch (err) {
      const id =
        isRecord(entry) && typeof entry[idKey] === 'string' ? ` (${idKey} ${entry[idKey]})` : '';
      problems.push(`${(err as Error).message}${id}`);
    }
  });
  const doc = { incarnation: incarnation as number, events };
  return problems.length === 0 ? doc : { ...doc, problems };
}

function readEvent(raw: unknown, index: number, f: DocumentFormat): MaintenanceEvent {
  const at = `${f.events}[${index}]`;
  if (!isRecord(raw)) bad(`${at} must be an object`);
  const k = f.keys;
  const resources = raw[k.resources];
  if (!Array.isArray(resources) || !resources.every((r) => typeof r === 'string')) {
    bad(`${at}.${k.resources} must be an array of strings`);
  }
  const id = requireString(raw, k.id, at);
  if (id === '') bad(`${at}.${k.id} must not be empty`);
  const notBefore = f.notBefore(raw[k.notBefore], at, k.notBefore);
  const duration = raw[k.durationSeconds];
  if (duration !== undefined && duration !== null) {
    if (typeof duration !== 'number' || !Number.isFinite(duration) || duration < -1) {
      bad(`${at}.${k.durationSeconds} must be a number ≥ -1`);
    }
  }
  return {
    id,
    kind: requireString(raw, k.kind, at),
    resourceType: optionalString(raw, k.resourceType, at) ?? 'VirtualMachine',
    resources: resources as string[],
    status: requireString(raw, k.status, at),
    notBefore,
    ...withOptional('description', optionalString(raw, k.description, at)),
    ...withOptional('origin', optionalString(raw, k.origin, at)),
    ...withOptional('durationSeconds', typeof duration === 'number' ? duration : undefined),
  };
}

function withOptional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}
