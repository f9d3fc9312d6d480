// Checks (default) or updates (`--local`) the API report of every entry point of every
// published package: packages/<pkg>/etc/<pkg>[-<entry>].api.md, written by
// @microsoft/api-extractor from the built declarations (run after `npm run build`).
// The check fails when a package's public API differs from its checked-in report, so an
// API change is always reviewed as a change of that file.
//
//   node scripts/api-report.mjs           # check, as `npm run lint` does
//   node scripts/api-report.mjs --local   # rewrite the reports (`npm run api`)
//
// One process for every entry point: api-extractor's start-up is most of its cost.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompilerState, Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const local = process.argv.includes('--local');

/** Every `exports` entry with types of every published package under packages/. */
function entryPoints() {
  const entries = [];
  for (const dir of readdirSync(join(ROOT, 'packages')).sort()) {
    const folder = join(ROOT, 'packages', dir);
    const manifest = join(folder, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
    if (pkg.private) continue;
    for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
      if (typeof target !== 'object' || !target.types) continue;
      const sub = subpath === '.' ? '' : `-${subpath.replace(/^\.\//, '').replaceAll('/', '-')}`;
      entries.push({
        name: `${pkg.name}${subpath === '.' ? '' : subpath.slice(1)}`,
        folder,
        manifest,
        types: join(folder, target.types),
        report: `${dir}${sub}.api.md`,
      });
    }
  }
  return entries;
}

function configFor(entry) {
  return ExtractorConfig.prepare({
    configObjectFullPath: join(entry.folder, 'api-extractor.json'), // virtual: no file is read
    packageJsonFullPath: entry.manifest,
    configObject: {
      projectFolder: entry.folder,
      mainEntryPointFilePath: entry.types,
      compiler: {
        // Only the built declarations are analysed; the options are those they were built with.
        overrideTsconfig: {
          compilerOptions: {
            target: 'ES2022',
            lib: ['ES2023'],
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            types: ['node'],
            strict: true,
            skipLibCheck: true,
          },
          files: [entry.types],
        },
      },
      apiReport: {
        enabled: true,
        reportFileName: entry.report,
        reportFolder: '<projectFolder>/etc/',
        reportTempFolder: join(ROOT, 'node_modules/.cache/api-extractor'),
      },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        compilerMessageReporting: { default: { logLevel: 'warning' } },
        extractorMessageReporting: {
          // Everything is public at 0.x: release tags would say nothing.
          'ae-missing-release-tag': { logLevel: 'none' },
          // Documentation is the house style's business, not this check's.
          'ae-undocumented': { logLevel: 'none' },
          'ae-unresolved-link': { logLevel: 'none' },
          // Reported here rather than in the file: see forgottenExport() below.
          'ae-forgotten-export': { logLevel: 'warning', addToApiReportFile: false },
          default: { logLevel: 'warning', addToApiReportFile: true },
        },
        // TSDoc style is not what this check is about (the house style has its own rules).
        tsdocMessageReporting: { default: { logLevel: 'none' } },
      },
    },
  });
}

// Said below in one line per entry point, or not worth saying.
const QUIET = new Set([
  'console-api-report-changed',
  'console-api-report-not-copied',
  'console-api-report-copied',
  'console-api-report-created',
  'console-compiler-version-notice',
  'console-preamble',
]);

const started = performance.now();
const entries = entryPoints();
const missing = entries.filter((e) => !existsSync(e.types));
if (missing.length > 0) {
  for (const e of missing) console.error(`api: ${e.types} is missing; run \`npm run build\` first`);
  process.exit(1);
}
const configs = entries.map(configFor);
// One TypeScript program for every entry point (each would otherwise load @types/node again).
const compilerState = CompilerState.create(configs[0], {
  additionalEntryPoints: entries.map((e) => e.types),
});

/** The names a package's main entry exports, by package folder. */
const mainExports = new Map();
const checker = compilerState.program.getTypeChecker();
for (const e of entries) {
  if (e.name.split('/').length > 2) continue; // a subpath entry
  const file = compilerState.program.getSourceFile(e.types);
  const symbol = file && checker.getSymbolAtLocation(file);
  mainExports.set(
    e.folder,
    new Set(symbol ? checker.getExportsOfModule(symbol).map((x) => x.name) : []),
  );
}

/**
 * A type a public signature uses must be exported by some entry of its package. A
 * subpath entry (`@freezeguard/core/testing`) may use the main entry's types without
 * exporting them again; anything else is a type users can meet but not name.
 */
function forgottenExport(entry, text) {
  const symbol = /The symbol "([^"]+)"/.exec(text)?.[1];
  return !(symbol && mainExports.get(entry.folder)?.has(symbol));
}

let failed = 0;
for (const [i, entry] of entries.entries()) {
  if (local) mkdirSync(join(entry.folder, 'etc'), { recursive: true });
  const problems = [];
  const result = Extractor.invoke(configs[i], {
    localBuild: local,
    compilerState,
    messageCallback: (message) => {
      if (QUIET.has(message.messageId)) message.handled = true;
      else if (message.messageId === 'ae-forgotten-export') {
        message.handled = true;
        if (forgottenExport(entry, message.text))
          problems.push(message.formatMessageWithLocation(ROOT));
      }
    },
  });
  const file = join('packages', entry.folder.split('/').pop(), 'etc', entry.report);
  for (const p of problems) console.error(`api: ${entry.name}: ${p}`);
  if (problems.length > 0) failed++;
  if (result.apiReportChanged) {
    if (local) console.log(`api: ${entry.name}: ${file} updated`);
    else {
      console.error(
        `api: ${entry.name}: the public API differs from ${file}; review the change and run \`npm run api\``,
      );
      const diff = spawnSync(
        'diff',
        ['-u', join(ROOT, file), join(ROOT, 'node_modules/.cache/api-extractor', entry.report)],
        { encoding: 'utf8' },
      );
      console.error(diff.stdout.split('\n').slice(2, 60).join('\n'));
      failed++;
    }
  }
  if (result.errorCount > 0) failed++;
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);
if (failed > 0) {
  console.error(`api: ${failed} entry point(s) failed (${seconds} s)`);
  process.exit(1);
}
console.log(`api: every report ${local ? 'written' : 'matches'} (${seconds} s)`);
