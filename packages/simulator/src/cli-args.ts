import { parseArgs } from 'node:util';
import { parseCloud } from './cloud-cli.js';
import { SCENARIO_NAMES } from './scenarios.js';

// The `freezeguard` CLI's flag tables and argument parsing: every command's flags in
// one table each (`--help` is generated from it), usage errors as one line naming the
// flag. The commands themselves are in cli.ts.

/** One flag of a command: its parseArgs type, default, and the line `--help` shows. */
export interface Flag {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
  /** Placeholder of the value, e.g. `<port>`; booleans have none. */
  readonly value?: string;
  readonly help: string;
}

/** A command's usage: adding a flag is one line in its `flags`. */
export interface CommandSpec {
  readonly usage: string;
  readonly summary: string;
  readonly flags: Readonly<Record<string, Flag>>;
  readonly positionals?: boolean;
}

export const COMMANDS = {
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
      lb: {
        type: 'string',
        value: '<balancer>',
        help: 'probe like this balancer and fail if the app approved or froze before it let go: azure-lb, azure-app-gateway, kubernetes, aws-alb, aws-nlb, gcp-lb, or <intervalMs>x<failures> (the app gets FREEZEGUARD_LB)',
      },
    },
  },
} satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

export function commandHelp(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  const rows = Object.entries(spec.flags).map(([flag, f]) => {
    const left = `--${flag}${f.value ? ` ${f.value}` : ''}`;
    const def = f.default === undefined || f.default === false ? '' : ` (default ${f.default})`;
    return `  ${left.padEnd(26)} ${f.help}${def}`;
  });
  return `Usage: ${spec.usage}\n\n${spec.summary}\n\nOptions:\n${rows.join('\n')}\n  ${'--help, -h'.padEnd(26)} show this help`;
}

/** A mistake in the command line: exit 64 with one line naming the flag. */
export class UsageError extends Error {}

export function cloudOption(text: string): 'azure' | 'gcp' | 'aws' {
  const cloud = parseCloud(text);
  if (!cloud)
    throw new UsageError(`--cloud: must be azure, gcp or aws (got ${JSON.stringify(text)})`);
  return cloud;
}

/**
 * Parses a command's flags from its table; `--help` prints the command's help and returns
 * null. Unknown flags and missing values become a {@link UsageError} naming the flag.
 */
export function parseCommand(name: CommandName, argv: string[]) {
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

export const str = (v: string | boolean | undefined): string => (typeof v === 'string' ? v : '');

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

export function parseInteger(text: string, option: string, min: number, max: number): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max))
    throw new UsageError(
      `--${option}: must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`,
    );
  return n;
}

export function parseUrl(text: string, option: string): string {
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
