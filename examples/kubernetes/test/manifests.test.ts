// The recipe's manifests checked three ways: against the Kubernetes schemas
// (kubernetes-models), against the timing the README derives, and against the app they run
// (examples/express-api started with the Deployment's environment, the IMDS emulator as IMDS).
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startSimulator } from '@freezeguard/simulator';
import { freePort, httpStatus, until, wait } from '@freezeguard/test-utils';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { IContainer, IEnvVar, IProbe } from 'kubernetes-models/v1';
import { Service } from 'kubernetes-models/v1';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const manifestsDir = here('../manifests/');
const serverJs = here('../../express-api/src/server.js');
const repo = here('../../../');

// The two figures of the termination budget that no manifest field states (README, "Timing").
/** After the SIGTERM drain: close the listener, stop the guard (source, fleet). */
const CLOSE_S = 5;
/** Between the process's own bound and the kubelet's SIGKILL: the exit itself. */
const EXIT_MARGIN_S = 5;
/** Time for the EndpointSlice change to reach every kube-proxy, on top of the detection. */
const PROPAGATION_S = 4;

type Manifest = { apiVersion?: string; kind?: string; [key: string]: unknown };

/** Every document of every file in manifests/, parsed by a YAML parser that reports errors. */
function loadManifests(): { file: string; doc: Manifest }[] {
  const out: { file: string; doc: Manifest }[] = [];
  for (const file of readdirSync(manifestsDir).filter((f) => /\.ya?ml$/.test(f))) {
    for (const parsed of parseAllDocuments(readFileSync(manifestsDir + file, 'utf8'))) {
      if ('errors' in parsed && parsed.errors.length > 0) {
        throw new Error(`${file}: ${parsed.errors.map((e) => e.message).join('; ')}`);
      }
      const doc = parsed.toJS() as Manifest | null;
      if (doc) out.push({ file, doc });
    }
  }
  return out;
}

const models: Record<string, (doc: Manifest) => { validate(): void }> = {
  'apps/v1 Deployment': (doc) => new Deployment(doc as never),
  'v1 Service': (doc) => new Service(doc as never),
  'policy/v1 PodDisruptionBudget': (doc) => new PodDisruptionBudget(doc as never),
};

const manifests = loadManifests();
const deployment = manifests.find((m) => m.doc.kind === 'Deployment')!.doc as unknown as Deployment;
const service = manifests.find((m) => m.doc.kind === 'Service')!.doc as unknown as Service;
const pod = deployment.spec!.template.spec!;
const container = pod.containers[0] as IContainer;

function env(name: string): IEnvVar | undefined {
  return container.env?.find((e) => e.name === name);
}

/** Kubernetes' defaults for a probe's timing fields. */
function timing(probe: IProbe) {
  return {
    periodSeconds: probe.periodSeconds ?? 10,
    failureThreshold: probe.failureThreshold ?? 3,
    timeoutSeconds: probe.timeoutSeconds ?? 1,
  };
}

/** A preStop hold, if any: the grace period counts from its start. */
function preStopSleepSeconds(): number {
  const hook = container.lifecycle?.preStop;
  if (!hook) return 0;
  const sleep = hook.sleep?.seconds;
  if (sleep !== undefined) return sleep;
  const command = hook.exec?.command ?? [];
  expect(command[0], 'preStop is `sleep <seconds>`').toBe('sleep');
  return Number(command[1]);
}

/** The bound guard.handleSignals() gives the SIGTERM drain, close and stop. */
function shutdownTimeoutSeconds(): number {
  return Number(env('FREEZEGUARD_SHUTDOWN_TIMEOUT_MS')?.value ?? 25_000) / 1000;
}

describe('manifests against the Kubernetes schemas', () => {
  it('finds a Deployment, a Service and a PodDisruptionBudget', () => {
    const kinds = manifests.map((m) => `${m.doc.apiVersion} ${m.doc.kind}`).sort();
    expect(kinds).toEqual(['apps/v1 Deployment', 'policy/v1 PodDisruptionBudget', 'v1 Service']);
  });

  for (const { file, doc } of manifests) {
    it(`${file}: ${doc.kind} is valid`, () => {
      const model = models[`${doc.apiVersion} ${doc.kind}`];
      expect(model, `a schema for ${doc.apiVersion} ${doc.kind}`).toBeDefined();
      expect(() => model!(doc).validate()).not.toThrow();
    });
  }

  it('the Service and the PodDisruptionBudget select the Deployment’s pods', () => {
    const labels = deployment.spec!.template.metadata!.labels!;
    for (const [key, value] of Object.entries(service.spec!.selector!)) {
      expect(labels[key]).toBe(value);
    }
    const pdb = manifests.find((m) => m.doc.kind === 'PodDisruptionBudget')!
      .doc as unknown as PodDisruptionBudget;
    expect(pdb.spec!.selector!.matchLabels).toEqual(deployment.spec!.selector.matchLabels);
    const target = service.spec!.ports![0]!.targetPort;
    expect(container.ports!.some((p) => p.name === target || p.containerPort === target)).toBe(
      true,
    );
  });
});

describe('timing (README, "Timing")', () => {
  const readiness = timing(container.readinessProbe!);
  const detectionS =
    readiness.periodSeconds * readiness.failureThreshold + readiness.timeoutSeconds;
  const drainDelayS = Number(env('FREEZEGUARD_DRAIN_DELAY_MS')?.value) / 1000;

  it('the drain delay covers the readiness detection and its propagation', () => {
    expect(drainDelayS).toBeGreaterThanOrEqual(detectionS + PROPAGATION_S);
  });

  it('the guard is told how the kubelet probes readiness (FREEZEGUARD_LB)', () => {
    expect(env('FREEZEGUARD_LB')?.value).toBe(
      `${readiness.periodSeconds * 1000}x${readiness.failureThreshold}`,
    );
  });

  it('the app drains on SIGTERM itself (guard.handleSignals()), so no preStop hold doubles it', () => {
    expect(readFileSync(serverJs, 'utf8')).toMatch(/guard\.handleSignals\(/);
    expect(preStopSleepSeconds()).toBe(0);
  });

  it('the SIGTERM bound covers the drain, the close and the stop', () => {
    expect(shutdownTimeoutSeconds()).toBeGreaterThanOrEqual(drainDelayS + CLOSE_S);
  });

  it('terminationGracePeriodSeconds ≥ preStop + the SIGTERM bound + the exit margin', () => {
    const needed = preStopSleepSeconds() + shutdownTimeoutSeconds() + EXIT_MARGIN_S;
    console.log(
      `readiness detection ${readiness.periodSeconds} s × ${readiness.failureThreshold} + ${readiness.timeoutSeconds} s = ${detectionS} s; ` +
        `drain delay ${drainDelayS} s; preStop ${preStopSleepSeconds()} s + SIGTERM bound ${shutdownTimeoutSeconds()} s + ` +
        `exit ${EXIT_MARGIN_S} s = ${needed} s ≤ terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds}`,
    );
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(needed);
  });

  it('liveness is never on the readiness path and is no quicker to fail', () => {
    const live = container.livenessProbe!;
    expect(live.httpGet?.path).toBeDefined();
    expect(live.httpGet!.path).not.toBe(container.readinessProbe!.httpGet!.path);
    expect(live.httpGet!.path).not.toMatch(/ready/);
    const l = timing(live);
    expect(l.periodSeconds * l.failureThreshold).toBeGreaterThanOrEqual(
      readiness.periodSeconds * readiness.failureThreshold,
    );
  });

  it('the resource name is left to the guard (IMDS compute/name), never the node name', () => {
    expect(env('FREEZEGUARD_RESOURCE_NAME')).toBeUndefined();
    const fromNodeName = (container.env ?? []).filter(
      (e) => e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName',
    );
    expect(fromNodeName).toEqual([]);
  });

  it('every FREEZEGUARD_* variable is one the app or the packages read', () => {
    const sources = [
      readFileSync(serverJs, 'utf8'),
      ...readdirSync(`${repo}packages`).flatMap((pkg) => {
        const dir = `${repo}packages/${pkg}/src/`;
        try {
          return readdirSync(dir, { recursive: true, encoding: 'utf8' })
            .filter((f) => f.endsWith('.ts'))
            .map((f) => readFileSync(dir + f, 'utf8'));
        } catch {
          return [];
        }
      }),
    ].join('\n');
    const names = (container.env ?? [])
      .map((e) => e.name)
      .filter((n) => n.startsWith('FREEZEGUARD_'));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(sources, name).toContain(name);
  });
});

describe('the probes against the running app', () => {
  let app: ChildProcess | null = null;
  const output: string[] = [];
  afterAll(async () => {
    if (app && app.exitCode === null) {
      const gone = new Promise((r) => app!.once('exit', r));
      app.kill('SIGKILL');
      await gone;
    }
  });

  it('answers the probe paths, matches the VMSS instance name from IMDS, drains readiness only, ends within the grace period', async () => {
    // An AKS node: Scheduled Events list the VMSS instance name, the node is named differently.
    const sim = await startSimulator({ resourceName: 'aks-nodepool1-12345678-vmss_3' });
    try {
      const port = await freePort();
      const fromManifest = Object.fromEntries(
        (container.env ?? []).map((e) => {
          expect(e.valueFrom, `${e.name} is a literal value`).toBeUndefined();
          return [e.name, e.value ?? ''];
        }),
      );
      const { FREEZEGUARD_RESOURCE_NAME: _, ...inherited } = process.env;
      app = spawn(process.execPath, [serverJs], {
        env: {
          ...inherited,
          ...fromManifest,
          // Only what a test machine must change: loopback, a free port, the emulator, and
          // a drain of seconds (the figures themselves are checked above).
          HOST: '127.0.0.1',
          PORT: String(port),
          FREEZEGUARD_IMDS_ENDPOINT: sim.url,
          FREEZEGUARD_DRAIN_DELAY_MS: '3000',
          FREEZEGUARD_SHUTDOWN_TIMEOUT_MS: '15000',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      app.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
      app.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
      const url = (path: string | undefined) => `http://127.0.0.1:${port}${path}`;
      const ready = url(container.readinessProbe!.httpGet!.path);
      const live = url(container.livenessProbe!.httpGet!.path);

      await until(async () => (await httpStatus(ready)) === 200, 10_000, 'readiness 200');
      expect(await httpStatus(live)).toBe(200);
      expect(container.ports![0]!.containerPort).toBe(Number(fromManifest.PORT));

      await until(
        () => sim.requests.some((r) => r.path.includes('/metadata/instance/compute/name')),
        10_000,
        'the guard asking IMDS for compute/name',
      );
      // Inside the lead time: the guard starts draining as soon as it sees the event.
      sim.schedule({ type: 'Freeze', notBeforeInMs: 30_000 });
      await until(async () => (await httpStatus(ready)) === 503, 10_000, 'readiness 503');
      expect(await httpStatus(live)).toBe(200);

      // SIGTERM in the middle of that drain (what a node drain does): the request in flight
      // is answered, liveness stays 200, and the process exits 0: within its bound
      // (FREEZEGUARD_SHUTDOWN_TIMEOUT_MS; past it, it exits 1).
      const slow = httpStatus(url('/api/slow?ms=1000'), { timeoutMs: 5_000 });
      await wait(200);
      const exited = new Promise<number | null>((resolve) => {
        app!.once('exit', (code) => resolve(code));
      });
      app.kill('SIGTERM');
      expect(await httpStatus(live)).toBe(200);
      expect(await slow).toBe(200);
      expect(await exited).toBe(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}\napp output:\n${output.join('')}`);
    } finally {
      await sim.close();
    }
  });
});
