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
import { renderDrillReport } from './report.js';
import { FleetUsageError, fleetCommand } from './fleet-command.js';
import { runScenario, SCENARIO_NAMES, type ScenarioName, scenarioSummary } from './scenarios.js';
import { startSimulator } from './simulator.js';

const USAGE = `freezeguard — rehearse cloud VM maintenance without Azure

Usage:
  freezeguard simulate [--port 0] [--host 127.0.0.1] [--resource vm-1] [--scenario NAME] [--time-scale 1]
      Run the IMDS Scheduled Events emulator and print what it serves.
  freezeguard watch [--endpoint URL] [--json] [--once] [--interval 1s]
      Poll a real or emulated IMDS and print a live timeline of its events.
  freezeguard drill [--freeze 5s] [--notice 20s] [--health URL] [--resource drill-vm] [--json] -- <command…>
      Start the app with the emulator, schedule a Freeze, stop the app with SIGSTOP for the
      freeze, probe its health like a load balancer, print a timeline and a verdict.
      Exit code 0 only when the app drained before the freeze and was healthy within 5 s after.
  freezeguard fleet --redis URL --group NAME [--key-prefix freezeguard:] [--interval 1s] [--once] [--json]
      Live table of a @freezeguard/fleet group: members, states, drain slots, IMDS pollers.

Scenarios: ${SCENARIO_NAMES.join(', ')}
Clouds: every command takes --cloud azure|gcp|aws (watch: default FREEZEGUARD_CLOUD, else detected).
  gcp scenarios: ${cloudScenarios('gcp').join(', ')}
  aws scenarios: ${cloudScenarios('aws').join(', ')}
Durations: 500ms, 5s, 2m, or a plain number of seconds.`;

/** Parses `500ms`, `5s`, `2m` or a number of seconds into ms. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m)
    throw new UsageError(
      `--${option}: not a duration: ${JSON.stringify(text)} (try 5s, 500ms, 2m)`,
    );
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}

class UsageError extends Error {}

function cloudOption(text: string): 'azure' | 'gcp' | 'aws' {
  const cloud = parseCloud(text);
  if (!cloud)
    throw new UsageError(`--cloud: must be azure, gcp or aws (got ${JSON.stringify(text)})`);
  return cloud;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function simulate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      resource: { type: 'string', default: 'vm-1' },
      scenario: { type: 'string' },
      'time-scale': { type: 'string', default: '1' },
      cloud: { type: 'string', default: 'azure' },
    },
  });
  const timeScale = Number(values['time-scale']);
  if (!(timeScale > 0)) throw new UsageError('--time-scale must be a number > 0');
  const cloud = cloudOption(values.cloud);
  if (cloud !== 'azure') {
    if (values.scenario && !cloudScenarios(cloud).includes(values.scenario))
      throw new UsageError(
        `--scenario: unknown ${JSON.stringify(values.scenario)} for ${cloud}; known: ${cloudScenarios(cloud).join(', ')}`,
      );
    return simulateCloud({
      cloud,
      port: Number(values.port),
      host: values.host,
      ...(values.resource === 'vm-1' ? {} : { resource: values.resource }),
      ...(values.scenario ? { scenario: values.scenario } : {}),
      timeScale,
    });
  }
  if (values.scenario && !SCENARIO_NAMES.includes(values.scenario as ScenarioName)) {
    throw new UsageError(
      `--scenario: unknown ${JSON.stringify(values.scenario)}; known: ${SCENARIO_NAMES.join(', ')}`,
    );
  }
  const sim = await startSimulator({
    port: Number(values.port),
    host: values.host,
    resourceName: values.resource,
  });
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
  if (values.scenario) {
    const name = values.scenario as ScenarioName;
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

async function watch(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      endpoint: { type: 'string' },
      json: { type: 'boolean', default: false },
      once: { type: 'boolean', default: false },
      interval: { type: 'string', default: '1s' },
      'give-up-after': { type: 'string', default: '3' },
      cloud: { type: 'string' },
    },
  });
  const cloud = values.cloud === undefined ? chooseCloud() : cloudOption(values.cloud);
  const pollIntervalMs = parseDuration(values.interval, 'interval');
  const giveUpAfter = Number(values['give-up-after']);
  const source = watchSourceFor(cloud, {
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
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
    if (!values.json) out(`watching ${endpoint} (Ctrl-C to stop)`);
    source.start({
      logger: silentLogger,
      clock: systemClock,
      timers: systemTimers,
      onDocument(doc: ScheduledEventsDocument) {
        everOk = true;
        if (doc.DocumentIncarnation !== incarnation) {
          incarnation = doc.DocumentIncarnation;
          const at = new Date().toISOString();
          if (values.json) out(JSON.stringify({ at, document: doc }));
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
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      freeze: { type: 'string', default: '5s' },
      notice: { type: 'string', default: '20s' },
      health: { type: 'string' },
      resource: { type: 'string', default: 'drill-vm' },
      json: { type: 'boolean', default: false },
      cloud: { type: 'string', default: 'azure' },
      report: { type: 'string' }, // FILE: write the drill as a self-contained HTML page
      load: { type: 'string' }, // RPS: steady GETs at the app's / during the drill
    },
  });
  const cloud = cloudOption(values.cloud);
  if (values.load !== undefined && !(Number(values.load) > 0 && Number(values.load) <= 1000))
    throw new UsageError(
      `--load: requests per second in (0, 1000], got ${JSON.stringify(values.load)}`,
    );
  if (positionals.length === 0)
    throw new UsageError('drill: give the command that starts your app after --');
  const freezeMs = parseDuration(values.freeze, 'freeze');
  const noticeMs = parseDuration(values.notice, 'notice');
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
      ...(values.health ? { healthUrl: values.health } : {}),
      resourceName: values.resource,
      cloud,
      onProgress: progress,
      signal: controller.signal,
      ...(values.load ? { load: { rps: Number(values.load) } } : {}),
    });
    if (values.report) {
      writeFileSync(values.report, renderDrillReport(report));
      progress(`report written to ${values.report}`);
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
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 1 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (
      err instanceof UsageError ||
      err instanceof FleetUsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      process.stderr.write(`freezeguard: ${(err as Error).message}\n\n${USAGE}\n`);
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
