import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseMaintenanceDocument,
  parseNotBefore,
  parseScheduledEventsDocument,
  toScheduledEventsDocument,
} from '../src/document.js';
import { FreezeguardError } from '../src/index.js';
import { fixtures } from './helpers.js';

describe('parseScheduledEventsDocument', () => {
  it.each(fixtures())('parses fixture $name', ({ text }) => {
    const doc = parseScheduledEventsDocument(text);
    expect(doc.incarnation).toBeGreaterThan(0);
    for (const ev of doc.events) {
      expect(ev.id).not.toBe('');
      expect(Array.isArray(ev.resources)).toBe(true);
      if (ev.status === 'Started') expect(ev.notBefore).toBeNull();
      else expect(typeof ev.notBefore).toBe('number');
    }
  });

  it('accepts a weekday that does not match the date (fixture 02)', () => {
    const doc = parseScheduledEventsDocument(fixtures().find((f) => f.name.startsWith('02'))!.text);
    expect(doc.events[0]!.notBefore).toBe(Date.UTC(2026, 3, 11, 22, 26, 58));
  });

  it('keeps the old format without the newer fields', () => {
    const doc = parseScheduledEventsDocument(fixtures().find((f) => f.name.startsWith('05'))!.text);
    expect(doc.events).toHaveLength(2);
    expect(doc.events[0]!.durationSeconds).toBeUndefined();
    expect(doc.events[0]!.description).toBeUndefined();
  });

  it('keeps unknown EventType and EventStatus', () => {
    const doc = parseScheduledEventsDocument({
      DocumentIncarnation: 3,
      Events: [
        {
          EventId: 'x',
          EventType: 'Hibernate',
          EventStatus: 'Pondering',
          Resources: ['a'],
          ResourceType: 'VirtualMachine',
          NotBefore: '',
        },
      ],
    });
    expect(doc.events[0]!.kind).toBe('Hibernate');
    expect(doc.events[0]!.status).toBe('Pondering');
  });

  it.each([
    ['not json', '{', /not JSON/],
    ['array', '[]', /JSON object/],
    ['no incarnation', '{"Events":[]}', /DocumentIncarnation/],
    ['events not array', '{"DocumentIncarnation":1,"Events":{}}', /Events must be an array/],
  ])('rejects %s with ERR_BAD_DOCUMENT saying what is wrong', (_name, text, message) => {
    try {
      parseScheduledEventsDocument(text);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FreezeguardError);
      expect((err as FreezeguardError).code).toBe('ERR_BAD_DOCUMENT');
      expect((err as Error).message).toMatch(message);
    }
  });

  it.each([
    [
      'resources not strings',
      '{"EventId":"a","EventType":"Freeze","EventStatus":"Scheduled","Resources":[1],"NotBefore":""}',
      /Events\[0\]\.Resources.*\(EventId a\)/,
    ],
    [
      'bad date',
      '{"EventId":"a","EventType":"Freeze","EventStatus":"Scheduled","Resources":["x"],"NotBefore":"tomorrow"}',
      /Events\[0\]\.NotBefore/,
    ],
    ['not an object', '42', /Events\[0\] must be an object/],
  ])('keeps the valid entries next to one with %s, and says what is wrong', (_n, bad, message) => {
    const good =
      '{"EventId":"b","EventType":"Freeze","EventStatus":"Scheduled","Resources":["x"],"NotBefore":"Mon, 19 Sep 2016 18:29:47 GMT"}';
    const parsed = parseScheduledEventsDocument(
      `{"DocumentIncarnation":3,"Events":[${bad},${good}]}`,
    );
    expect(parsed.events.map((e) => e.id)).toEqual(['b']);
    expect(parsed.problems).toHaveLength(1);
    expect(parsed.problems![0]).toMatch(message);
  });
});

describe('parseNotBefore', () => {
  it('reads RFC 1123 without checking the weekday', () => {
    expect(parseNotBefore('Mon, 19 Sep 2016 18:29:47 GMT')).toBe(Date.UTC(2016, 8, 19, 18, 29, 47));
    expect(parseNotBefore('Fri, 19 Sep 2016 18:29:47 GMT')).toBe(Date.UTC(2016, 8, 19, 18, 29, 47));
  });
  it('reads ISO 8601 with and without offsets', () => {
    expect(parseNotBefore('2026-04-11T22:26:58Z')).toBe(Date.UTC(2026, 3, 11, 22, 26, 58));
    expect(parseNotBefore('2026-04-11T22:26:58.250Z')).toBe(Date.UTC(2026, 3, 11, 22, 26, 58, 250));
    expect(parseNotBefore('2026-04-12T00:26:58+02:00')).toBe(Date.UTC(2026, 3, 11, 22, 26, 58));
  });
  it('maps "" to null', () => {
    expect(parseNotBefore('')).toBeNull();
  });
  it('rejects impossible dates', () => {
    expect(() => parseNotBefore('Mon, 31 Feb 2026 10:00:00 GMT')).toThrow(FreezeguardError);
  });
});

describe('parser properties (fast-check)', () => {
  const isOk = (run: () => unknown) => {
    try {
      run();
      return true;
    } catch (err) {
      return err instanceof FreezeguardError && err.code === 'ERR_BAD_DOCUMENT';
    }
  };

  it('any string: a document or a FreezeguardError, nothing else', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) =>
        isOk(() => parseScheduledEventsDocument(s)),
      ),
      { numRuns: 10_000 },
    );
  });

  it('any JSON value: a document or a FreezeguardError, nothing else', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) =>
        isOk(() => parseScheduledEventsDocument(v)),
      ),
      {
        numRuns: 10_000,
      },
    );
  });

  const anyish = fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.boolean(), fc.double());
  const event = fc.record(
    {
      EventId: fc.oneof(fc.uuid(), anyish),
      EventType: fc.oneof(
        fc.constantFrom('Freeze', 'Reboot', 'Redeploy', 'Preempt', 'Terminate', 'Other'),
        anyish,
      ),
      EventStatus: fc.oneof(fc.constantFrom('Scheduled', 'Started'), anyish),
      ResourceType: fc.constant('VirtualMachine'),
      Resources: fc.oneof(fc.array(fc.string(), { maxLength: 4 }), anyish),
      NotBefore: fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        fc.constant(''),
        anyish,
      ),
      Description: fc.oneof(fc.string(), anyish),
      EventSource: fc.constantFrom('Platform', 'User'),
      DurationInSeconds: fc.oneof(fc.integer({ min: -1, max: 3600 }), anyish),
    },
    { requiredKeys: [] },
  );
  const document = fc.record(
    {
      DocumentIncarnation: fc.oneof(fc.nat(), anyish),
      Events: fc.oneof(fc.array(event, { maxLength: 4 }), anyish),
    },
    { requiredKeys: [] },
  );

  it('document-shaped values: well-formed ones parse, every result is typed', () => {
    let parsed = 0;
    fc.assert(
      fc.property(document, (d) => {
        try {
          const doc = parseScheduledEventsDocument(JSON.stringify(d));
          parsed++;
          return doc.events.every(
            (e) =>
              typeof e.id === 'string' && (e.notBefore === null || Number.isFinite(e.notBefore)),
          );
        } catch (err) {
          return err instanceof FreezeguardError && err.code === 'ERR_BAD_DOCUMENT';
        }
      }),
      { numRuns: 10_000 },
    );
    // The generator is useful only if a fair share of documents are valid.
    expect(parsed).toBeGreaterThan(100);
  });

  it('valid documents round-trip their dates to the second', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
        (d) => {
          const text = d.toUTCString();
          return parseNotBefore(text) === Math.floor(d.getTime() / 1000) * 1000;
        },
      ),
      { numRuns: 10_000 },
    );
  });
});

describe('parseMaintenanceDocument (what a poller relays to the other processes)', () => {
  it.each(fixtures())('reads back what was parsed from fixture $name', ({ text }) => {
    const doc = parseScheduledEventsDocument(text);
    expect(parseMaintenanceDocument(JSON.parse(JSON.stringify(doc)))).toEqual(doc);
    // And Azure's wire format written back reads as the same document.
    expect(parseScheduledEventsDocument(toScheduledEventsDocument(doc))).toEqual(doc);
  });

  it('names a bad entry by where it is in the relayed document and keeps relayed problems', () => {
    const doc = parseMaintenanceDocument({
      incarnation: 4,
      events: [
        { id: 'a', kind: 'Freeze', status: 'Scheduled', resources: ['vm'], notBefore: 'soon' },
        { id: 'b', kind: 'Freeze', status: 'Started', resources: ['vm'], notBefore: null },
      ],
      problems: ['Events[3].EventId must be a string, got number'],
    });
    expect(doc.events.map((e) => e.id)).toEqual(['b']);
    expect(doc.problems).toEqual([
      'Events[3].EventId must be a string, got number',
      'events[0].notBefore must be epoch ms or null (id a)',
    ]);
  });
});
