#!/usr/bin/env node
import { readFileSync, writeFileSync } from 'node:fs';
import {
  type BalancerProfile,
  balancerFromEnv,
  chooseCloud,
  type FreezeguardError,
  type MaintenanceDocument,
  type MaintenanceEvent,
  silentLogger,
  systemClock,
  systemTimers,
} from '@freezeguard/core';
import { toScheduledEventsDocument } from '@freezeguard/core/adapter';
import {
  COMMANDS,
  type CommandSpec,
  cloudOption,
  parseCommand,
  parseDuration,
  parseInteger,
  parseUrl,
  str,
  UsageError,
} from './cli-args.js';
import { cloudScenarios, simulateCloud, watchSourceFor } from './cloud-cli.js';
import { formatDrillReport, renderDrillReport } from './drill/render.js';
import { runDrill } from './drill/run.js';
import { FleetUsageError, fleetCommand } from './fleet-command.js';
import { SCENARIO_NAMES } from './scenarios.js';

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
  if (values.scenario !== undefined && !cloudScenarios(cloud).includes(scenario))
    throw new UsageError(
      `--scenario: unknown ${JSON.stringify(scenario)}${cloud === 'azure' ? '' : ` for ${cloud}`} (known: ${cloudScenarios(cloud).join(', ')})`,
    );
  const port = parseInteger(str(values.port), 'port', 0, 65_535);
  const resource = str(values.resource);
  // Azure's VM name is the emulator's own default; the others have theirs (an EC2 instance id).
  if (resource === '' && cloud === 'azure') throw new UsageError('--resource: must not be empty');
  return simulateCloud({
    cloud,
    port,
    host: str(values.host),
    ...(resource === 'vm-1' ? {} : { resource }),
    ...(scenario ? { scenario } : {}),
    timeScale,
  });
}

function describeEvent(ev: MaintenanceEvent): string {
  const when =
    ev.notBefore === null
      ? 'now'
      : `NotBefore ${new Date(ev.notBefore).toISOString()} (in ${Math.round((ev.notBefore - Date.now()) / 1000)} s)`;
  const duration = ev.durationSeconds === undefined ? '' : ` duration ${ev.durationSeconds} s`;
  return `${ev.kind} ${ev.id} ${ev.status} ${when}${duration} Resources [${ev.resources.join(', ')}]${ev.description ? ` — ${ev.description}` : ''}`;
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
  let previous = new Map<string, MaintenanceEvent>();
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
      onDocument(doc: MaintenanceDocument) {
        everOk = true;
        if (doc.incarnation !== incarnation) {
          incarnation = doc.incarnation;
          const at = new Date().toISOString();
          if (values.json) out(JSON.stringify({ at, document: toScheduledEventsDocument(doc) }));
          else {
            out(`${at}  incarnation ${doc.incarnation}, ${doc.events.length} event(s)`);
            const next = new Map(doc.events.map((e) => [e.id, e]));
            for (const ev of doc.events) {
              const old = previous.get(ev.id);
              if (!old) out(`    + ${describeEvent(ev)}`);
              else if (old.status !== ev.status) out(`    ~ ${ev.id} ${old.status} → ${ev.status}`);
            }
            for (const [id, old] of previous)
              if (!next.has(id))
                out(`    - ${id} ${old.kind} left the document (was ${old.status})`);
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
  let lb: BalancerProfile | undefined;
  try {
    lb = values.lb === undefined ? undefined : balancerFromEnv(str(values.lb));
  } catch (err) {
    throw new UsageError(`--lb: ${(err as Error).message.replace(/^FREEZEGUARD_LB: /, '')}`);
  }
  if (values.lb !== undefined && lb === undefined) throw new UsageError('--lb: needs a balancer');
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
      ...(lb ? { lb } : {}),
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
