/**
 * The docs run as written (docs/DEVELOPMENT.md, "The docs' commands are
 * tests"): every shell command in README.md and docs/*.md that names
 * neurocorr is run here, in a scratch folder holding a copy of examples/, with
 * `neurocorr` resolved to this checkout, /tmp/ mapped into the scratch folder
 * and the docs' local NATS and Redis URLs mapped onto test servers. Commands
 * that need Docker, Kubernetes or PyTorch are listed below with the test that
 * checks them; a new one that is neither run nor listed fails. Every relative
 * link and anchor in the docs must resolve, and every doc must be reachable
 * from the README.
 */
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, startRedis, stopAllServers, type NatsServer, type RedisServer } from './helpers/servers.js';

const ROOT = join(import.meta.dirname, '..');
const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

/** The local servers the docs' cluster commands name; the test replaces them with its own. */
const DOC_NATS = 'nats://127.0.0.1:4222';
const DOC_REDIS = 'redis://127.0.0.1:6379';

/**
 * Commands that name neurocorr but cannot run here (no Docker engine, no
 * Kubernetes, no PyTorch), each with the test (its file, and the start of its
 * title) that checks what it relies on.
 */
const NOT_RUN: Record<string, readonly [file: string, title: string]> = {
  'docker build -f deploy/Dockerfile --target worker -t neurocorr/neurocorr .': ['test/deploy.test.ts', "describe('deploy/Dockerfile'"],
  'docker build -f deploy/Dockerfile --target coordinator -t neurocorr/neurocorr-coordinator .': ['test/deploy.test.ts', "describe('deploy/Dockerfile'"],
  'docker build -f deploy/Dockerfile --target gpu-worker -t neurocorr/neurocorr-worker-gpu .': ['test/deploy.test.ts', "describe('deploy/Dockerfile'"],
  'kubectl create namespace neurocorr': ['test/helm.test.ts', "describe('helm lint and the Kubernetes schemas'"],
  'helm install neurocorr ./helm/neurocorr -n neurocorr': ['test/helm.test.ts', "describe('helm lint and the Kubernetes schemas'"],
  'kubectl -n neurocorr create secret generic neurocorr-nats-worker --from-file=password=./worker.pass': [
    'test/helm.test.ts',
    "describe('credentials come only from Secrets, mounted as files'",
  ],
  'kubectl -n neurocorr create secret generic neurocorr-nats-coordinator --from-file=password=./coordinator.pass': [
    'test/helm.test.ts',
    "describe('credentials come only from Secrets, mounted as files'",
  ],
  'kubectl -n neurocorr create secret generic neurocorr-redis --from-file=redis-password=./redis.pass': [
    'test/helm.test.ts',
    "describe('credentials come only from Secrets, mounted as files'",
  ],
  'helm install neurocorr ./helm/neurocorr -n neurocorr -f helm/neurocorr/ci/external-values.yaml': [
    'test/helm.test.ts',
    "describe('credentials come only from Secrets, mounted as files'",
  ],
  'helm upgrade neurocorr ./helm/neurocorr -n neurocorr --reuse-values --set job.enabled=true,job.name=r18-vs-r34,job.f=/data/models/resnet18,job.g=/data/models/resnet34':
    ['test/helm.test.ts', "it('the coordinator Job completes its job on the workers and writes its report'"],
  'kubectl -n neurocorr logs -f job/neurocorr-job-r18-vs-r34': [
    'test/helm.test.ts',
    "it('NOTES.txt says how to follow the job, list jobs with neurocorr jobs in a coordinator pod, and run the zoo now'",
  ],
  'kubectl -n neurocorr exec job/neurocorr-job-r18-vs-r34 -- neurocorr jobs --redis redis://neurocorr-redis.neurocorr.svc.cluster.local:6379': [
    'test/helm.test.ts',
    "it('NOTES.txt says how to follow the job, list jobs with neurocorr jobs in a coordinator pod, and run the zoo now'",
  ],
  'kubectl -n neurocorr wait --for=condition=complete --timeout=24h job/neurocorr-job-r18-vs-r34': [
    'test/helm.test.ts',
    "it('NOTES.txt says how to follow the job, list jobs with neurocorr jobs in a coordinator pod, and run the zoo now'",
  ],
  'kubectl -n neurocorr scale deployment/neurocorr-worker --replicas=8': ['test/helm.test.ts', "it('CPU workers by default: the exact worker command"],
  'helm upgrade neurocorr ./helm/neurocorr -n neurocorr --reuse-values --set worker.replicas=8': [
    'test/helm.test.ts',
    "it('CPU workers by default: the exact worker command",
  ],
  'helm upgrade neurocorr ./helm/neurocorr -n neurocorr --reuse-values --set keda.enabled=true,keda.maxReplicaCount=20': [
    'test/helm.test.ts',
    "it('GPU workers scaled by KEDA",
  ],
  'helm upgrade neurocorr ./helm/neurocorr -n neurocorr --reuse-values --set gpu.enabled=true': ['test/helm.test.ts', "it('GPU workers scaled by KEDA"],
  "helm upgrade neurocorr ./helm/neurocorr -n neurocorr --reuse-values --set zoo.enabled=true,zoo.file=/data/zoo.json,zoo.timeZone=Europe/Berlin --set-string 'zoo.schedule=0 2 * * *'":
    ['test/helm.test.ts', "it('the nightly zoo: a CronJob with Forbid"],
  'kubectl -n neurocorr create job --from=cronjob/neurocorr-zoo neurocorr-zoo-now': [
    'test/helm.test.ts',
    "it('NOTES.txt says how to follow the job, list jobs with neurocorr jobs in a coordinator pod, and run the zoo now'",
  ],
  'kubectl -n neurocorr logs -f job/neurocorr-zoo-now': [
    'test/helm.test.ts',
    "it('NOTES.txt says how to follow the job, list jobs with neurocorr jobs in a coordinator pod, and run the zoo now'",
  ],
  'neurocorr score resnet18.safetensors resnet50.safetensors': [
    'test/pytorch.test.ts',
    "describe('PyTorch (Debian torch 1.13, torchvision 0.14) against neurocorr extract on the ONNX export'",
  ],
};

const SHELL = new Set(['sh', 'bash', 'shell', 'console']);

interface Block {
  readonly doc: string;
  readonly lang: string;
  readonly body: string;
  /** The plain (output) block right after it, if any. */
  readonly output: string | null;
}

function blocks(doc: string): Block[] {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  const all = [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)];
  return all.map((m, i) => {
    const next = all[i + 1];
    const between = next ? text.slice(m.index + m[0].length, next.index) : 'x';
    return { doc, lang: m[1]!, body: m[2]!, output: next && next[1] === '' && between.trim() === '' ? next[2]! : null };
  });
}

/** A block's commands: continuations joined, `$ ` prompts and blank lines dropped. */
function commands(body: string): string[] {
  return body
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((line) => line.replace(/^\$ /, '').trim())
    .filter((line) => line !== '');
}

const NAMES_NEUROCORR = /\bneurocorr\b/;
const RUNNABLE = /^(?:npx neurocorr|node bin\/neurocorr\.js|neurocorr)(?=\s)/;
/** The servers a doc starts by hand: the test's own, on free ports, stand in for them. */
const SERVERS = /^(?:nats-server|redis-server)\s/;

/** A command as NOT_RUN lists it: no trailing comment, single spaces. */
const normal = (command: string): string => command.replace(/\s+#.*$/, '').replace(/\s+/g, ' ');
const runs = (command: string): boolean => RUNNABLE.test(command) && !(normal(command) in NOT_RUN);

const shellBlocks = DOCS.flatMap(blocks).filter((b) => SHELL.has(b.lang));
const toRun = shellBlocks.filter((b) => commands(b.body).some(runs));

interface Ran {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

interface Started {
  readonly done: Promise<Ran>;
  stop(): void;
}

function startShell(command: string, cwd: string, env: NodeJS.ProcessEnv): Started {
  const child = spawn('bash', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Ran>((res) => child.on('close', (code, signal) => res({ code: code ?? signal ?? 'unknown', stdout, stderr })));
  return { done, stop: () => void child.kill('SIGTERM') };
}

describe('every doc command that names neurocorr', () => {
  let scratch: string;
  let env: NodeJS.ProcessEnv;
  let nats: NatsServer;
  let redis: RedisServer;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'nc-doc-commands-'));
    cpSync(join(ROOT, 'examples'), join(scratch, 'examples'), { recursive: true });
    const bin = join(scratch, '.bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'neurocorr'), `#!/bin/sh\nexec '${process.execPath}' '${join(ROOT, 'bin', 'neurocorr.js')}' "$@"\n`);
    chmodSync(join(bin, 'neurocorr'), 0o755);
    env = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}`, XDG_CACHE_HOME: join(scratch, '.cache') };
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
  });
  afterAll(async () => {
    await stopAllServers();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('is run below or listed with the test that checks it; nothing listed is gone from the docs', () => {
    const named = shellBlocks.flatMap((b) => commands(b.body).map(normal));
    const unchecked = named.filter((c) => NAMES_NEUROCORR.test(c) && !runs(c) && !SERVERS.test(c) && !(c in NOT_RUN));
    expect(unchecked, 'run these in doc-commands.test.ts, or list them in NOT_RUN with the test that checks them').toEqual([]);
    expect(Object.keys(NOT_RUN).filter((c) => !named.includes(c))).toEqual([]);
    for (const [file, title] of Object.values(NOT_RUN)) expect(readFileSync(join(ROOT, file), 'utf8'), file).toContain(title);
    expect(toRun.length).toBeGreaterThan(8);
  });

  it.each(toRun.map((b, i) => [`${b.doc}: ${commands(b.body).find(runs)!}`, i] as const))('%s', async (_name, index) => {
    const block = toRun[index]!;
    const docTmp = join(scratch, 'tmp', block.doc.replace(/\W/g, '_'));
    mkdirSync(docTmp, { recursive: true });
    const background: { command: string; started: Started }[] = [];
    const stdouts: string[] = [];
    try {
      for (const line of commands(block.body)) {
        if (!runs(line)) continue;
        const expected = Number(/#\s*exit (\d+)/.exec(line)?.[1] ?? 0);
        const command = line.replace(RUNNABLE, 'neurocorr').replaceAll('/tmp/', `${docTmp}/`).replaceAll(DOC_NATS, nats.url).replaceAll(DOC_REDIS, redis.url);
        const daemon = /&\s*(?:#.*)?$/.exec(command);
        if (daemon) {
          background.push({ command: line, started: startShell(`exec ${command.slice(0, daemon.index)}`, scratch, env) });
          continue;
        }
        const r = await startShell(command, scratch, env).done;
        expect(r.code, `${line}\n${r.stderr}`).toBe(expected);
        if (expected !== 0) {
          expect(r.stderr, line).toMatch(/neurocorr: error: .*Fix:/);
          continue;
        }
        stdouts.push(r.stdout);
        // What it names under /tmp (its outputs, or the inputs an earlier command wrote) is there.
        for (const path of command.match(new RegExp(`${docTmp}/[^\\s'"]+`, 'g')) ?? []) expect(existsSync(path), `${line}: ${path}`).toBe(true);
      }
      for (const { command, started } of background) {
        started.stop();
        const r = await started.done;
        expect(r.code, `${command} (stopped with SIGTERM)\n${r.stderr}`).toBe(0);
      }
    } finally {
      for (const { started } of background) started.stop();
    }
    // An output block right after the commands is what they printed, but for the machine-dependent `kernel` line.
    const shown = (block.output ?? '').split('\n').filter((l) => l.trim() !== '' && !/^\s*kernel /.test(l));
    for (const line of shown) expect(stdouts.join(''), block.doc).toContain(line);
  });

  it.each(
    DOCS.flatMap(blocks)
      .filter((b) => b.lang === 'js' && b.body.includes("from 'neurocorr'"))
      .map((b) => [b.doc, b] as const),
  )('the library example in %s runs as written', async (doc, block) => {
    const docTmp = join(scratch, 'tmp', `${doc.replace(/\W/g, '_')}-js`);
    mkdirSync(docTmp, { recursive: true });
    // From the checkout: the package imports itself by name, and reads examples/ there.
    const child = spawn(process.execPath, ['--input-type=module', '-e', block.body.replaceAll("'/tmp/", `'${docTmp}/`)], { cwd: ROOT, stdio: 'pipe' });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((res) => child.on('close', res));
    expect(code, err).toBe(0);
    expect(out.trim().split('\n').length, out).toBeGreaterThanOrEqual(2);
    for (const n of out.trim().split(/\s+/)) expect(Number.isFinite(Number(n)), out).toBe(true);
  });
});

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2, ... */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const text = markdown.replace(/^```[\s\S]*?^```$/gm, '');
  for (const m of text.matchAll(/^#{1,6} (.+)$/gm)) {
    const base = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function links(doc: string): { target: string; anchor: string | null }[] {
  const text = readFileSync(join(ROOT, doc), 'utf8').replace(/^```[\s\S]*?^```$/gm, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((href) => !/^[a-z]+:/.test(href))
    .map((href) => {
      const [path, anchor] = href.split('#') as [string, string | undefined];
      return { target: path === '' ? doc : relative(ROOT, resolve(ROOT, dirname(doc), path)), anchor: anchor ?? null };
    });
}

describe('the docs link up', () => {
  it('every relative link names a file that exists, and every anchor a heading of it', () => {
    const broken: string[] = [];
    for (const doc of DOCS) {
      for (const { target, anchor } of links(doc)) {
        if (!existsSync(join(ROOT, target))) broken.push(`${doc}: ${target}`);
        else if (anchor !== null && target.endsWith('.md') && !anchors(readFileSync(join(ROOT, target), 'utf8')).has(anchor))
          broken.push(`${doc}: ${target}#${anchor}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('every doc in docs/ is reachable from README.md', () => {
    const reached = new Set(['README.md']);
    const queue = ['README.md'];
    while (queue.length > 0) {
      for (const { target } of links(queue.shift()!)) {
        if (target.endsWith('.md') && !reached.has(target) && existsSync(join(ROOT, target))) {
          reached.add(target);
          queue.push(target);
        }
      }
    }
    expect(DOCS.filter((d) => !reached.has(d))).toEqual([]);
  });

  it('README.md is an index: at most 200 lines, linking every doc', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(200);
    const linked = new Set(links('README.md').map((l) => l.target));
    expect(DOCS.filter((d) => d !== 'README.md' && !linked.has(d))).toEqual([]);
  });
});
