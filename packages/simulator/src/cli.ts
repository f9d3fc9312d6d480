#!/usr/bin/env node
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  chooseCloud,
  type FreezeguardError,
  type ScheduledEvent,
  type ScheduledEventsDocument,
  silentLogger,
  systemClock,
  systemTimers,
} from '@freezeguard/core';
import { cloudScenarios, parseCloud, simulateCloud, watchSourceFor } from './cloud-cli.js';
import { formatDrillReport, runDrill } from './drill.js';
import { FleetUsageError, fleetCommand } from './fleet-command.js';
import { renderDrillReport } from './report.js';
import { runScenario, SCENARIO_NAMES, type ScenarioName, scenarioSummary } from './scenarios.js';
import { startSimulator } from './simulator.js';

/** One flag of a command: its parseArgs type, default, and the line `--help` shows. */
interface Flag {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
  /** Placeholder of the value, e.g. `<port>`; booleans have none. */
  readonly value?: string;
  readonly help: string;
}

/** A command's usage: adding a flag is one line in its `flags`. */
interface CommandSpec {
  readonly usage: string;
  readonly summary: string;
  readonly flags: Readonly<Record<string, Flag>>;
  readonly positionals?: boolean;
}

const COMMANDS = {
  simulate: {
    usage: 'freezeguard simulate [options]',
    summary: 'Run the IMDS Scheduled Events emulator and print what it serves.',
    flags: {
      port: {
        type: 'string',
        default: '0',
        value: '<port>',
        help: 'port to listen on (0: any free port)',
      },
      host: { type: 'string', default: '127.0.0.1', value: '<host>', help: 'address to listen on' },
      resource: {
        type: 'string',
        default: 'vm-1',
        value: '<name>',
        help: "this VM's name in Resources",
      },
      scenario: {
        type: 'string',
        value: '<name>',
        help: `play a scenario: ${SCENARIO_NAMES.join(', ')}`,
      },
      'time-scale': {
        type: 'string',
        default: '1',
        value: '<factor>',
        help: 'speed scenarios up (> 1) or down',
      },
      cloud: {
        type: 'string',
        default: 'azure',
        value: '<cloud>',
        help: 'emulate azure, gcp or aws (metadata server, headers, tokens)',
      },
    },
  },
  watch: {
    usage: 'freezeguard watch [options]',
    summary: 'Poll a real or emulated IMDS and print a live timeline of its events.',
    flags: {
      endpoint: {
        type: 'string',
        value: '<url>',
        help: 'IMDS base URL (default: $FREEZEGUARD_IMDS_ENDPOINT or http://169.254.169.254)',
      },
      json: { type: 'boolean', default: false, help: 'one JSON object per document' },
      once: { type: 'boolean', default: false, help: 'print the current document and exit' },
      interval: { type: 'string', default: '1s', value: '<duration>', help: 'poll interval' },
      'give-up-after': {
        type: 'string',
        default: '3',
        value: '<n>',
        help: 'exit 2 after n failures in a row before any success',
      },
      cloud: {
        type: 'string',
        value: '<cloud>',
        help: 'azure, gcp or aws (default: $FREEZEGUARD_CLOUD, else detected, else azure)',
      },
    },
  },
  drill: {
    usage: 'freezeguard drill [options] -- <command…>',
    summary:
      'Start the app with the emulator, schedule a Freeze, stop the app with SIGSTOP for the\n' +
      'freeze, probe its health like a load balancer, print a timeline and a verdict.\n' +
      'Exit code 0 only when the app drained before the freeze and was healthy within 5 s after.',
    positionals: true,
    flags: {
      freeze: {
        type: 'string',
        default: '5s',
        value: '<duration>',
        help: 'how long the app is stopped',
      },
      notice: {
        type: 'string',
        default: '20s',
        value: '<duration>',
        help: 'time between announcing the Freeze and its NotBefore',
      },
      health: {
        type: 'string',
        value: '<url>',
        help: 'readiness URL to probe (default: http://127.0.0.1:$PORT/health/ready)',
      },
      resource: {
        type: 'string',
        default: 'drill-vm',
        value: '<name>',
        help: "the app's VM name in Resources",
      },
      json: { type: 'boolean', default: false, help: 'print the report as JSON' },
      cloud: {
        type: 'string',
        default: 'azure',
        value: '<cloud>',
        help: 'the cloud whose maintenance is rehearsed: azure, gcp (live migration) or aws (Spot interruption)',
      },
      report: {
        type: 'string',
        value: '<file>',
        help: 'also write the drill as a self-contained HTML page',
      },
      load: {
        type: 'string',
        value: '<rps>',
        help: "steady GETs at the app's / during the drill, counted per 100 ms",
      },
    },
  },
} satisfies Record<string, CommandSpec>;

type CommandName = keyof typeof COMMANDS;

const USAGE = `freezeguard — rehearse cloud VM maintenance without Azure

Usage:
${Object.values(COMMANDS as Record<string, CommandSpec>)
  .map((c) => `  ${c.usage}\n      ${c.summary.replaceAll('\n', '\n      ')}`)
  .join('\n')}

  freezeguard fleet --redis URL --group NAME [--key-prefix freezeguard:] [--interval 1s] [--once] [--json]
      Live table of a @freezeguard/fleet group: members, states, drain slots, IMDS pollers.

Run \`freezeguard <command> --help\` for a command's options.
Scenarios: ${SCENARIO_NAMES.join(', ')}
  gcp: ${cloudScenarios('gcp').join(', ')}
  aws: ${cloudScenarios('aws').join(', ')}
Durations: 500ms, 5s, 2m, or a plain number of seconds.`;

function commandHelp(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  const rows = Object.entries(spec.flags).map(([flag, f]) => {
    const left = `--${flag}${f.value ? ` ${f.value}` : ''}`;
    const def = f.default === undefined || f.default === false ? '' : ` (default ${f.default})`;
    return `  ${left.padEnd(26)} ${f.help}${def}`;
  });
  return `Usage: ${spec.usage}\n\n${spec.summary}\n\nOptions:\n${rows.join('\n')}\n  ${'--help, -h'.padEnd(26)} show this help`;
}

/** A mistake in the command line: exit 64 with one line naming the flag. */
class UsageError extends Error {}

function cloudOption(text: string): 'azure' | 'gcp' | 'aws' {
  const cloud = parseCloud(text);
  if (!cloud)
    throw new UsageError(`--cloud: must be azure, gcp or aws (got ${JSON.stringify(text)})`);
  return cloud;
}

/**
 * Parses a command's flags from its table; `--help` prints the command's help and returns
 * null. Unknown flags and missing values become a {@link UsageError} naming the flag.
 */
function parseCommand(name: CommandName, argv: string[]) {
  const spec: CommandSpec = COMMANDS[name];
  const options = Object.fromEntries(
    Object.entries(spec.flags).map(([flag, f]) => [
      flag,
      f.default === undefined ? { type: f.type } : { type: f.type, default: f.default },
    ]),
  ) as Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean }>;
  options.help = { type: 'boolean', short: 'h', default: false };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: spec.positionals ?? false });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err));
  }
  if (parsed.values.help) {
    process.stdout.write(`${commandHelp(name)}\n`);
    return null;
  }
  return {
    values: parsed.values as Record<string, string | boolean | undefined>,
    positionals: parsed.positionals,
  };
}

/** node:util's parse errors, as one short line naming the flag. */
function parseArgsMessage(err: unknown): string {
  const { code, message } = err as { code?: string; message: string };
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${flag}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
    return /argument missing/.test(message) ? `${flag}: missing value` : `${flag}: takes no value`;
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
    return `unexpected argument ${JSON.stringify(/'([^']*)'/.exec(message)?.[1] ?? '')}`;
  return message.split('\n')[0] ?? message;
}

const str = (v: string | boolean | undefined): string => (typeof v === 'string' ? v : '');

/** Parses `500ms`, `5s`, `2m` or a number of seconds into ms; > 0 unless `allowZero`. */
export function parseDuration(text: string, option: string, allowZero = false): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m)
    throw new UsageError(
      `--${option}: not a duration: ${JSON.stringify(text)} (try 5s, 500ms, 2m)`,
    );
  const n = Number(m[1]);
  const ms = Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
  if (ms <= 0 && !allowZero)
    throw new UsageError(`--${option}: must be longer than 0 (got ${JSON.stringify(text)})`);
  return ms;
}

function parseInteger(text: string, option: string, min: number, max: number): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max))
    throw new UsageError(
      `--${option}: must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`,
    );
  return n;
}

function parseUrl(text: string, option: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `--${option}: not a URL: ${JSON.stringify(text)} (try http://127.0.0.1:8080)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`--${option}: must be an http(s) URL (got ${JSON.stringify(text)})`);
  return text.replace(/\/+$/, '');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function simulate(argv: string[]): Promise<number> {
  const parsed = parseCommand('simulate', argv);
  if (!parsed) return 0;
  const { values } = parsed;
  const timeScale = Number(values['time-scale']);
  if (!(timeScale > 0))
    throw new UsageError(
      `--time-scale: must be a number > 0 (got ${JSON.stringify(values['time-scale'])})`,
    );
  const scenario = str(values.scenario);
  const cloud = cloudOption(str(values.cloud));
  if (cloud !== 'azure') {
    if (values.scenario !== undefined && !cloudScenarios(cloud).includes(scenario))
      throw new UsageError(
        `--scenario: unknown ${JSON.stringify(scenario)} for ${cloud} (known: ${cloudScenarios(cloud).join(', ')})`,
      );
    const resource = str(values.resource);
    return simulateCloud({
      cloud,
      port: parseInteger(str(values.port), 'port', 0, 65_535),
      host: str(values.host),
      ...(resource === 'vm-1' ? {} : { resource }),
      ...(scenario ? { scenario } : {}),
      timeScale,
    });
  }
  if (values.scenario !== undefined && !SCENARIO_NAMES.includes(scenario as ScenarioName)) {
    throw new UsageError(
      `--scenario: unknown ${JSON.stringify(scenario)} (known: ${SCENARIO_NAMES.join(', ')})`,
    );
  }
  const port = parseInteger(str(values.port), 'port', 0, 65_535);
  const resource = str(values.resource);
  if (resource === '') throw new UsageError('--resource: must not be empty');
  const sim = await startSimulator({ port, host: str(values.host), resourceName: resource });
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()}  ${line}\n`);
  log(`IMDS Scheduled Events emulator at ${sim.url}`);
  log(
    `  GET  ${sim.url}/metadata/scheduledevents?api-version=2020-07-01   (header Metadata: true)`,
  );
  log(
    `  GET  ${sim.url}/metadata/instance/compute/name?api-version=2021-02-01&format=text → ${sim.resourceName}`,
  );
  log(
    `  control: GET ${sim.url}/__freezeguard/state, POST ${sim.url}/__freezeguard/events {"type":"Freeze","notBeforeInMs":30000}`,
  );
  log(
    `Point an app at it: FREEZEGUARD_IMDS_ENDPOINT=${sim.url} FREEZEGUARD_RESOURCE_NAME=${sim.resourceName}`,
  );
  sim.on('change', () =>
    log(`document incarnation ${sim.incarnation}: ${JSON.stringify(sim.document().Events)}`),
  );
  sim.on('approved', (a) => log(`StartRequests for ${a.eventId}`));
  if (scenario) {
    const name = scenario as ScenarioName;
    log(`scenario ${name}: ${scenarioSummary(name)} (time scale ${timeScale})`);
    runScenario(sim, name, { timeScale });
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await sim.close();
  return 0;
}

function describeEvent(ev: ScheduledEvent): string {
  const when =
    ev.notBefore === null
      ? 'now'
      : `NotBefore ${ev.NotBefore} (in ${Math.round((ev.notBefore - Date.now()) / 1000)} s)`;
  const duration = ev.DurationInSeconds === undefined ? '' : ` duration ${ev.DurationInSeconds} s`;
  return `${ev.EventType} ${ev.EventId} ${ev.EventStatus} ${when}${duration} Resources [${ev.Resources.join(', ')}]${ev.Description ? ` — ${ev.Description}` : ''}`;
}

/** The document as IMDS sent it: the parsed `notBefore` (epoch ms) is ours, not Azure's. */
function wireDocument(doc: ScheduledEventsDocument): unknown {
  return {
    DocumentIncarnation: doc.DocumentIncarnation,
    Events: doc.Events.map(({ notBefore: _parsed, ...wire }) => wire),
  };
}

async function watch(argv: string[]): Promise<number> {
  const parsed = parseCommand('watch', argv);
  if (!parsed) return 0;
  const { values } = parsed;
  const cloud = values.cloud === undefined ? chooseCloud() : cloudOption(str(values.cloud));
  const pollIntervalMs = parseDuration(str(values.interval), 'interval');
  const giveUpAfter = parseInteger(str(values['give-up-after']), 'give-up-after', 1, 1_000_000);
  const source = watchSourceFor(cloud, {
    ...(values.endpoint === undefined
      ? {}
      : { endpoint: parseUrl(str(values.endpoint), 'endpoint') }),
    pollIntervalMs,
  });
  const endpoint = source.endpoint;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let previous = new Map<string, ScheduledEvent>();
  let incarnation: number | null = null;
  let everOk = false;
  // The source's timers are unref()ed (a guard must never hold a process open); the CLI must.
  const keepAlive = setInterval(() => {}, 60_000);
  return await new Promise<number>((resolve) => {
    const finish = (code: number) => {
      clearInterval(keepAlive);
      void source.stop().then(() => resolve(code));
    };
    process.once('SIGINT', () => finish(0));
    if (!values.json)
      out(values.once ? `reading ${endpoint} once` : `watching ${endpoint} (Ctrl-C to stop)`);
    source.start({
      logger: silentLogger,
      clock: systemClock,
      timers: systemTimers,
      onDocument(doc: ScheduledEventsDocument) {
        everOk = true;
        if (doc.DocumentIncarnation !== incarnation) {
          incarnation = doc.DocumentIncarnation;
          const at = new Date().toISOString();
          if (values.json) out(JSON.stringify({ at, document: wireDocument(doc) }));
          else {
            out(`${at}  incarnation ${doc.DocumentIncarnation}, ${doc.Events.length} event(s)`);
            const next = new Map(doc.Events.map((e) => [e.EventId, e]));
            for (const ev of doc.Events) {
              const old = previous.get(ev.EventId);
              if (!old) out(`    + ${describeEvent(ev)}`);
              else if (old.EventStatus !== ev.EventStatus)
                out(`    ~ ${ev.EventId} ${old.EventStatus} → ${ev.EventStatus}`);
            }
            for (const [id, old] of previous)
              if (!next.has(id))
                out(`    - ${id} ${old.EventType} left the document (was ${old.EventStatus})`);
            previous = next;
          }
        }
        if (values.once) finish(0);
      },
      onError(error: FreezeguardError, streak: number) {
        const line = `IMDS error (${streak} in a row): ${error.message}`;
        if (values.json)
          process.stderr.write(
            `${JSON.stringify({ at: new Date().toISOString(), error: error.toJSON(), streak })}\n`,
          );
        else process.stderr.write(`${line}\n`);
        if (!everOk && (values.once || streak >= giveUpAfter)) {
          process.stderr.write(
            `freezeguard watch: IMDS is unreachable at ${endpoint}. On an Azure VM check that nothing blocks 169.254.169.254; elsewhere run \`freezeguard simulate\` and pass --endpoint.\n`,
          );
          finish(2);
        }
      },
    });
  });
}

async function drill(argv: string[]): Promise<number> {
  const parsed = parseCommand('drill', argv);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const freezeMs = parseDuration(str(values.freeze), 'freeze');
  const noticeMs = parseDuration(str(values.notice), 'notice');
  const healthUrl =
    values.health === undefined ? undefined : parseUrl(str(values.health), 'health');
  const cloud = cloudOption(str(values.cloud));
  const rps = values.load === undefined ? undefined : Number(values.load);
  if (rps !== undefined && !(rps > 0 && rps <= 1000))
    throw new UsageError(
      `--load: requests per second in (0, 1000], got ${JSON.stringify(values.load)}`,
    );
  const reportFile = values.report === undefined ? undefined : str(values.report);
  if (reportFile === '') throw new UsageError('--report: needs a file name');
  if (positionals.length === 0)
    throw new UsageError('missing the command that starts your app, after --');
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const progress = (line: string) =>
    (values.json ? process.stderr : process.stdout).write(`${line}\n`);
  try {
    const report = await runDrill({
      command: positionals,
      freezeMs,
      noticeMs,
      ...(healthUrl ? { healthUrl } : {}),
      resourceName: str(values.resource),
      cloud,
      onProgress: progress,
      signal: controller.signal,
      ...(rps ? { load: { rps } } : {}),
    });
    if (reportFile) {
      writeFileSync(reportFile, renderDrillReport(report));
      progress(`report written to ${reportFile}`);
    }
    if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(`${formatDrillReport(report)}\n`);
    return report.passed ? 0 : 1;
  } catch (err) {
    if (controller.signal.aborted) {
      process.stderr.write('freezeguard drill: interrupted; the app was resumed and stopped\n');
      return 130;
    }
    process.stderr.write(`freezeguard drill: ${(err as Error).message}\n`);
    return 2;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const where =
    command !== undefined && (command in COMMANDS || command === 'fleet')
      ? `freezeguard ${command}`
      : 'freezeguard';
  try {
    switch (command) {
      case 'simulate':
        return await simulate(rest);
      case 'watch':
        return await watch(rest);
      case 'drill':
        return await drill(rest);
      case 'fleet':
        return await fleetCommand(rest, parseDuration);
      case '--version':
      case '-v':
        process.stdout.write(`${version()}\n`);
        return 0;
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        if (command === undefined) {
          process.stderr.write(`${USAGE}\n`);
          return 64;
        }
        process.stdout.write(`${USAGE}\n`);
        return 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof FleetUsageError) {
      const help = where === 'freezeguard' ? 'freezeguard --help' : `${where} --help`;
      process.stderr.write(`${where}: ${err.message}; see ${help}\n`);
      return 64;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`freezeguard: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
