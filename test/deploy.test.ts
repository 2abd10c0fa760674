/**
 * The container images (deploy/Dockerfile) and the compose file, without a
 * Docker engine: the policy of every stage, then the `build` and `runtime`
 * stages' steps replayed on a clean copy of the repository (a scratch folder
 * stands for each image's `/`), and the compose services' commands run
 * natively against nats-server and redis-server started from the compose
 * commands, as the image's user (uid 10001) where the tests run as root.
 * A file the Dockerfile forgets, a step that fails, or a service command
 * that does not parse fails here.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { kernelFromEnv } from '../dist/cli/env.js';
import { waitFor } from './helpers/cluster.js';
import { freePort } from './helpers/servers.js';
import {
  allInstructions,
  baseImage,
  copyArgs,
  DockerIgnore,
  effective,
  imageEnv,
  lineage,
  pairs,
  parseDockerfile,
  replayStage,
  splitAnd,
  stage,
  words,
  type Stage,
} from './helpers/dockerfile.js';
import { locateTool } from './setup/tools.js';

const ROOT = join(import.meta.dirname, '..');
const docker = parseDockerfile(readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8'));
const ignore = new DockerIgnore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  devDependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean }> };

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  command?: string[];
  volumes?: string[];
  healthcheck?: { test: string[]; interval?: string; timeout?: string; start_period?: string; retries?: number };
  deploy?: { replicas?: number };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
  profiles?: string[];
  stop_grace_period?: string;
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}
const compose = parseYaml(readFileSync(join(ROOT, 'deploy', 'docker-compose.yml'), 'utf8'), { merge: true }) as Compose;
const service = (name: string): ComposeService => {
  const s = compose.services[name];
  if (s === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};

const TARGETS = ['worker', 'coordinator', 'gpu-worker'] as const;
const WORKER_TARGETS = ['worker', 'gpu-worker'] as const;
const COMPILER = /^(gcc|g\+\+|cpp|clang|make|cmake|build-essential|python3?)(-[\d.]+)?$/;

/** RUN commands of a stage and the stages under it, split at top-level `&&`. */
function commands(s: Stage): string[] {
  return allInstructions(s)
    .filter((i) => i.keyword === 'RUN')
    .flatMap((i) => splitAnd(i.exec ? i.exec.join(' ') : i.text));
}

/** Packages a stage installs with apt-get or apk. */
function osPackages(s: Stage): string[] {
  return commands(s)
    .map((c) => /^(?:apt-get|apt)\s+install\s+(.*)$|^apk\s+add\s+(.*)$/.exec(c))
    .filter((m) => m !== null)
    .flatMap((m) => words(m[1] ?? m[2]!).filter((w) => !w.startsWith('-')));
}

/** The value after `flag` in an argument list. */
const flagValue = (args: readonly string[], flag: string): string | undefined => {
  const k = args.indexOf(flag);
  return k < 0 ? undefined : args[k + 1];
};

function execOf(s: Stage, keyword: 'CMD' | 'ENTRYPOINT' | 'HEALTHCHECK'): string[] {
  const i = effective(s, keyword);
  if (i?.exec == null) throw new Error(`stage ${s.name}: no ${keyword} in exec form`);
  return [...i.exec];
}

/** Files of a clean clone with the working tree's changes: tracked files as they are now, and untracked files git does not ignore. */
function cleanCheckoutFiles(): string[] {
  const r = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ls-files failed (the test needs a git checkout): ${r.stderr}`);
  return [...new Set(r.stdout.split('\0'))].filter((f) => f !== '' && existsSync(join(ROOT, f)));
}

describe('deploy/Dockerfile', () => {
  it('has the stages and targets, with the worker as the default (last) target', () => {
    expect(docker.stages.map((s) => s.name)).toEqual(['node-image', 'build', 'runtime', 'coordinator', 'gpu-build', 'gpu-worker', 'worker']);
    expect(baseImage(stage(docker, 'build'))).toMatch(/^node:20(\.[\d.]+)?-bookworm$/);
    expect(baseImage(stage(docker, 'runtime'))).toMatch(/^node:20(\.[\d.]+)?-bookworm-slim$/);
    expect(docker.args.get('NODE_VERSION')).toBe('20');
    for (const t of ['worker', 'coordinator']) expect(lineage(stage(docker, t)).map((s) => s.name)).toEqual(['runtime', t]);
    // The targets on the runtime stage differ in metadata only, so replaying `runtime` covers them.
    for (const t of ['worker', 'coordinator'])
      expect(
        stage(docker, t)
          .instructions.filter((i) => ['COPY', 'RUN', 'WORKDIR'].includes(i.keyword))
          .map((i) => `line ${i.line}`),
      ).toEqual([]);
  });

  it('build stage: python3, make and g++; npm ci; the root install script (addon and better-sqlite3, fatal on failure); tsc; then --omit=dev', () => {
    const build = stage(docker, 'build');
    expect(osPackages(build).sort()).toEqual(['g++', 'make', 'python3']);
    expect(imageEnv(build)['NEUROCORR_REQUIRE_NATIVE']).toBe('1');
    const steps = commands(build);
    const at = (re: RegExp) => {
      const k = steps.findIndex((c) => re.test(c));
      expect(k, `build stage runs ${re}`).toBeGreaterThanOrEqual(0);
      return k;
    };
    const order = [
      /^npm ci\b/,
      /^npm run install$/,
      /^npm run build$/,
      /^npm prune --omit=dev\b/,
      /^npm uninstall --no-save --omit=dev\b.* @tensorflow\/tfjs-node\b/,
    ].map(at);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // package.json's install script is what `npm run install` runs: the addon, then better-sqlite3.
    expect((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['install']).toBe(
      'node worker/native/build.mjs && node zoo/build-sqlite.mjs',
    );
  });

  it.each(TARGETS)('%s: non-root uid 10001, no compilers, pruned node_modules with the built addons, neurocorr as the ENTRYPOINT, /cache', (target) => {
    const s = stage(docker, target);
    const user = effective(s, 'USER')?.text;
    expect(user, `${target} sets USER`).toBe('10001:10001');
    const useradd = commands(s).find((c) => c.startsWith('useradd '));
    expect(useradd, `${target} creates the user it runs as`).toBeDefined();
    expect(flagValue(words(useradd!), '--uid')).toBe('10001');
    expect(flagValue(words(useradd!), '--gid')).toBe('10001');
    expect(baseImage(s)).not.toMatch(/devel/);
    expect(osPackages(s).filter((p) => COMPILER.test(p))).toEqual([]);
    // Nothing is installed or built at this stage: everything comes from a build stage.
    expect(commands(s).filter((c) => /\b(npm|npx|node-gyp|pip3?)\s+(ci|install|i|rebuild|add)\b/.test(c))).toEqual([]);

    const copies = allInstructions(s).filter((i) => i.keyword === 'COPY' && i.flags['from'] !== undefined && i.flags['from'] !== 'node-image');
    const from = new Set(copies.map((i) => i.flags['from']));
    expect(from.size, `${target} copies the app from one build stage`).toBe(1);
    const buildStage = stage(docker, [...from][0]!);
    const copied = copies.map((i) => copyArgs(i).sources).flat();
    expect(copied.sort()).toEqual(['/app/bin/', '/app/dist/', '/app/node_modules/', '/app/package.json', '/app/worker/native/build/Release/neurocorr.node']);
    // The node_modules it copies were pruned to production after the last install.
    const steps = commands(buildStage);
    const lastCi = steps.map((c) => /^npm ci\b/.test(c)).lastIndexOf(true);
    const prune = steps.findIndex((c) => /^npm prune --omit=dev\b/.test(c));
    expect(lastCi).toBeGreaterThanOrEqual(0);
    expect(prune, `${buildStage.name} runs npm prune --omit=dev after npm ci`).toBeGreaterThan(lastCi);

    expect(execOf(s, 'ENTRYPOINT')).toEqual(['neurocorr']);
    expect(pkg.bin['neurocorr']).toBe('bin/neurocorr.js');
    expect(commands(s)).toContain('ln -s /app/bin/neurocorr.js /usr/local/bin/neurocorr');
    expect(effective(s, 'WORKDIR')?.text).toBe('/app');

    expect(imageEnv(s)['XDG_CACHE_HOME']).toBe('/cache');
    expect(imageEnv(s)['NODE_ENV']).toBe('production');
    expect(effective(s, 'VOLUME')?.exec).toEqual(['/cache']);
    expect(commands(s)).toContain('chown 10001:10001 /cache /results');
  });

  it.each(WORKER_TARGETS)('%s: CMD runs a worker with metrics on 0.0.0.0:9464; the HEALTHCHECK asks that port for /healthz', (target) => {
    const s = stage(docker, target);
    const cmd = execOf(s, 'CMD');
    expect(cmd[0]).toBe('worker');
    expect(flagValue(cmd, '--nats')).toBe('nats://nats:4222');
    expect(flagValue(cmd, '--metrics-host')).toBe('0.0.0.0');
    const port = flagValue(cmd, '--metrics-port');
    expect(port).toBe('9464');
    expect(effective(s, 'EXPOSE')?.text).toBe(port);
    const health = effective(s, 'HEALTHCHECK')!;
    expect(health.flags).toMatchObject({ interval: expect.stringMatching(/^\d+s$/), timeout: expect.stringMatching(/^\d+s$/), retries: '3' });
    expect(health.exec?.slice(0, 2)).toEqual(['node', '-e']);
    expect(health.exec?.[2]).toContain(`fetch('http://127.0.0.1:${port}/healthz')`);
  });

  it('coordinator: CMD is the coordinator command (its usage); no HEALTHCHECK', () => {
    const s = stage(docker, 'coordinator');
    expect(execOf(s, 'CMD')).toEqual(['coordinator', '--help']);
    expect(effective(s, 'HEALTHCHECK')).toBeUndefined();
  });

  it('gpu-worker: CUDA 11.2 + cuDNN 8 runtime base, TF32 off, tfjs-node-gpu 4.22.0 from the lockfile, the tfjs kernel on the gpu backend', () => {
    const cuda = 'nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04';
    const gpu = stage(docker, 'gpu-worker');
    const gpuBuild = stage(docker, 'gpu-build');
    expect(baseImage(gpu)).toBe(cuda);
    // Built on the same Ubuntu as it runs on: better-sqlite3 built on bookworm needs GLIBC_2.33+, focal has 2.31.
    expect(baseImage(gpuBuild)).toBe(cuda);
    const env = imageEnv(gpu);
    expect(env['NVIDIA_TF32_OVERRIDE']).toBe('0');
    expect(env['NEUROCORR_TFJS_BACKEND']).toBe('gpu');
    // The value must be one the CLI takes (`tensorflow`, say, is a usage error at start).
    expect(kernelFromEnv('tfjs', env)).toEqual({ choice: 'tfjs', tfjsBackend: 'gpu' });
    expect(execOf(gpu, 'CMD').slice(0, 3)).toEqual(['worker', '--kernel', 'tfjs']);

    // tfjs-node-gpu comes from the lockfile (pinned, checked), with its own install script run; tfjs-node does not.
    expect(pkg.optionalDependencies['@tensorflow/tfjs-node-gpu']).toBe('4.22.0');
    expect(lock.packages['node_modules/@tensorflow/tfjs-node-gpu']?.version).toBe('4.22.0');
    const steps = commands(gpuBuild);
    expect(steps).toContain('npm rebuild @tensorflow/tfjs-node-gpu');
    const uninstall = steps.filter((c) => c.startsWith('npm uninstall'));
    expect(uninstall).toHaveLength(1);
    expect(words(uninstall[0]!).filter((w) => w.startsWith('@'))).toEqual(['@tensorflow/tfjs-node']);
    // The worker imports it by name from /app/dist/worker/kernels/, so it must be in /app/node_modules.
    expect(readFileSync(join(ROOT, 'dist', 'worker', 'kernels', 'tfjs.js'), 'utf8')).toContain("'@tensorflow/tfjs-node-gpu'");
    expect(effective(gpuBuild, 'WORKDIR')?.text).toBe('/app');

    // One Node: the binary that runs is the one whose headers the addons were built against.
    for (const s of [gpu, gpuBuild]) {
      const nodeCopies = s.instructions.filter((i) => i.keyword === 'COPY' && i.flags['from'] === 'node-image').map((i) => copyArgs(i).sources[0]);
      expect(nodeCopies).toContain('/usr/local/bin/node');
    }
    expect(stage(docker, 'build').parent?.name).toBe('node-image');
  });

  it("gpu-build runs the build stage's steps (the replay below covers both)", () => {
    const appSteps = (s: Stage) => {
      const start = s.instructions.findIndex((i) => i.keyword === 'WORKDIR');
      const end = s.instructions.findIndex((i) => i.keyword === 'RUN' && /npm prune --omit=dev/.test(i.text));
      expect(start, `${s.name}: WORKDIR`).toBeGreaterThanOrEqual(0);
      expect(end, `${s.name}: npm prune`).toBeGreaterThan(start);
      return s.instructions.slice(start, end + 1).map((i) => ({ keyword: i.keyword, flags: i.flags, text: i.text }));
    };
    expect(appSteps(stage(docker, 'gpu-build'))).toEqual(appSteps(stage(docker, 'build')));
    const packages = osPackages(stage(docker, 'gpu-build'));
    expect(packages).toEqual(expect.arrayContaining(['python3', 'make', 'g++-10']));
    expect(imageEnv(stage(docker, 'gpu-build'))).toMatchObject({ CC: 'gcc-10', CXX: 'g++-10' });
  });

  it('every COPY from the build context names files of a clean checkout that .dockerignore lets through', () => {
    const files = cleanCheckoutFiles();
    const problems: string[] = [];
    for (const s of docker.stages)
      for (const i of s.instructions.filter((x) => x.keyword === 'COPY' && x.flags['from'] === undefined)) {
        for (const source of copyArgs(i).sources) {
          const rel = posix.normalize(source).replace(/\/+$/, '');
          const inside = files.filter((f) => f === rel || f.startsWith(`${rel}/`));
          if (inside.length === 0) problems.push(`line ${i.line}: ${source} is not in a clean checkout`);
          else if (inside.every((f) => ignore.excludes(f))) problems.push(`line ${i.line}: ${source} is excluded by .dockerignore`);
        }
      }
    expect(problems).toEqual([]);
  });

  it('.dockerignore keeps host installs and builds out of the context, and nothing a stage needs', () => {
    for (const path of [
      'node_modules/vite/package.json',
      '.git/HEAD',
      'dist/index.js',
      'dist-dev/bench/bench.js',
      'worker/native/build/Release/neurocorr.node',
      'coverage/index.html',
    ])
      expect(ignore.excludes(path), path).toBe(true);
    for (const path of ['package.json', 'package-lock.json', 'worker/native/src/addon.cc', 'zoo/build-sqlite.mjs', 'bin/neurocorr.js', 'tsconfig.json'])
      expect(ignore.excludes(path), path).toBe(false);
    // The matcher itself, on Docker's rules: root-only unless **, folders exclude what is in them, ! re-includes.
    const m = new DockerIgnore('*.md\n!README.md\n**/tmp\na/b/\n');
    expect([m.excludes('x.md'), m.excludes('README.md'), m.excludes('sub/x.md'), m.excludes('q/tmp/z'), m.excludes('a/b/c'), m.excludes('a/bc')]).toEqual([
      true,
      false,
      false,
      true,
      true,
      false,
    ]);
  });

  it('the parser: continuations, comments inside them, exec form, flags, ARG in FROM; unknown instructions are errors', () => {
    const f = parseDockerfile(
      'ARG V=1\nFROM img:${V} AS a\n# note\nRUN --mount=type=cache,target=/x one \\\n# inside\n  && two\nCMD ["a", "b"]\nFROM a\nENV K="v w" L=2\n',
    );
    expect(f.stages.map((s) => [s.name, s.from, s.parent?.name ?? null])).toEqual([
      ['a', 'img:1', null],
      ['1', 'a', 'a'],
    ]);
    const run = f.stages[0]!.instructions[0]!;
    expect([run.line, run.flags, splitAnd(run.text)]).toEqual([4, { mount: 'type=cache,target=/x' }, ['one', 'two']]);
    expect(f.stages[0]!.instructions[1]!.exec).toEqual(['a', 'b']);
    expect(pairs(f.stages[1]!.instructions[0]!.text)).toEqual([
      ['K', 'v w'],
      ['L', '2'],
    ]);
    expect(() => parseDockerfile('FROM a\nADD x y\n')).toThrow(/ADD is not an instruction this parser knows/);
    expect(() => parseDockerfile('FROM a\nCMD ["x", 1]\n')).toThrow(/JSON array of strings/);
  });
});

// ---------------------------------------------------------------- docker-compose.yml

/** Parsed `source:target[:mode]`; a named volume's source has no slash. */
function mounts(s: ComposeService): { source: string; target: string; readOnly: boolean; named: boolean }[] {
  return (s.volumes ?? []).map((v) => {
    const [source, target, mode] = v.split(':');
    if (source === undefined || target === undefined) throw new Error(`volume ${v}: want source:target[:mode]`);
    return { source, target, readOnly: mode === 'ro', named: !source.includes('/') && !source.startsWith('.') };
  });
}

describe('deploy/docker-compose.yml', () => {
  it('nats: 2.10 with JetStream stored on a volume and monitoring on 8222; its healthcheck asks that port', () => {
    const nats = service('nats');
    expect(nats.image).toBe('nats:2.10-alpine');
    const cmd = nats.command!;
    expect(cmd).toContain('-js');
    expect(mounts(nats)).toEqual([{ source: 'nats-data', target: flagValue(cmd, '-sd'), readOnly: false, named: true }]);
    expect(flagValue(cmd, '-m')).toBe('8222');
    expect(nats.healthcheck?.test).toEqual(['CMD', 'wget', '-q', '--spider', 'http://127.0.0.1:8222/healthz?js-enabled-only=true']);
  });

  it('redis: 7 with the append-only file on a volume; redis-cli ping as its healthcheck', () => {
    const redis = service('redis');
    expect(redis.image).toBe('redis:7-alpine');
    expect(redis.command).toEqual(['redis-server', '--appendonly', 'yes']);
    // The redis image's working folder, where the append-only file goes.
    expect(mounts(redis)).toEqual([{ source: 'redis-data', target: '/data', readOnly: false, named: true }]);
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it("worker: two replicas of the worker target, examples read-only at /data (its --data-root), metrics on 9464, the image's healthcheck", () => {
    const worker = service('worker');
    expect(worker.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile', target: 'worker' });
    expect(worker.deploy?.replicas).toBe(2);
    expect(worker.command).toEqual(['worker', '--nats', 'nats://nats:4222', '--data-root', '/data', '--metrics-port', '9464', '--metrics-host', '0.0.0.0']);
    expect(mounts(worker)).toEqual([{ source: '../examples', target: '/data', readOnly: true, named: false }]);
    expect(worker.depends_on).toEqual({ nats: { condition: 'service_healthy' } });
    expect(worker.healthcheck?.test).toEqual(['CMD', ...execOf(stage(docker, 'worker'), 'HEALTHCHECK')]);
    expect(worker.stop_grace_period).toBeDefined();
  });

  it('coordinator and zoo: one-shot jobs on the coordinator target, inputs under /data, outputs in the results volume; zoo behind a profile', () => {
    const coordinator = service('coordinator');
    const zoo = service('zoo');
    for (const job of [coordinator, zoo]) {
      expect(job.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile', target: 'coordinator' });
      expect(job.restart).toBe('no');
      expect(mounts(job)).toEqual([
        { source: '../examples', target: '/data', readOnly: true, named: false },
        { source: 'results', target: '/results', readOnly: false, named: true },
      ]);
      expect(flagValue(job.command!, '--nats')).toBe('nats://nats:4222');
      expect(flagValue(job.command!, '--redis')).toBe('redis://redis:6379');
      expect(flagValue(job.command!, '--out')).toMatch(/^\/results\//);
      expect(job.depends_on).toMatchObject({ nats: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    }
    expect(coordinator.command!.slice(0, 3)).toEqual(['coordinator', '/data/mlp', '/data/cnn']);
    expect(coordinator.profiles).toBeUndefined();
    expect(zoo.command!.slice(0, 2)).toEqual(['zoo', '/data/zoo/zoo.json']);
    expect(zoo.profiles).toEqual(['zoo']);
  });

  it('every named volume is declared, every declared one used; bind mounts and the build context exist', () => {
    const used = new Set(
      Object.values(compose.services).flatMap((s) =>
        mounts(s)
          .filter((m) => m.named)
          .map((m) => m.source),
      ),
    );
    expect([...used].sort()).toEqual(Object.keys(compose.volumes ?? {}).sort());
    for (const s of Object.values(compose.services)) {
      for (const m of mounts(s).filter((x) => !x.named)) expect(existsSync(resolve(ROOT, 'deploy', m.source)), m.source).toBe(true);
      if (s.build) {
        expect(existsSync(join(resolve(ROOT, 'deploy', s.build.context), s.build.dockerfile))).toBe(true);
        expect(docker.stages.map((x) => x.name)).toContain(s.build.target);
      }
    }
  });
});

// ---------------------------------------------------------------- the steps, replayed

/** The environment of replayed build steps: the host's, less npm's own variables (a child npm would act on the checkout). */
function buildEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(npm_|INIT_CWD$|NODE_OPTIONS$|VITEST)/i.test(k)) env[k] = v;
  // `npm ci` may use the registry; the local cache first keeps it to about half a minute.
  return { ...env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' };
}

const isRoot = process.getuid?.() === 0;

/**
 * What the host does instead of a step that would change the host itself
 * (install packages, add users) or that needs root: the tools must already be
 * here, and the user is checked by the policy tests above.
 */
function hostStandIn(command: string): (() => void) | null {
  if (/^apt-get update$/.test(command) || /^rm -rf \/var\/lib\/apt\/lists\/\*$/.test(command)) return () => undefined;
  const install = /^apt-get install (.*)$/.exec(command);
  if (install) {
    return () => {
      for (const p of words(install[1]!).filter((w) => !w.startsWith('-'))) {
        const r = spawnSync('sh', ['-c', `command -v ${p}`]);
        expect(r.status, `the build needs ${p} (the image installs it with apt-get); install it here`).toBe(0);
      }
    };
  }
  if (/^(groupadd|useradd) /.test(command)) return () => undefined;
  if (/^chown /.test(command) && !isRoot) return () => undefined;
  return null;
}

/** Runs a shell command, resolving with its output; rejects with the output's tail when it fails. */
function sh(command: string, cwd: string, env: Record<string, string>, what: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolvePromise(out) : reject(new Error(`${what}: \`${command}\` exited with ${code ?? signal}:\n${out.slice(-6000)}`)),
    );
  });
}

let scratch = '';
let context = '';
const roots = new Map<string, string>();

/** Copies the clean checkout's files to `dest` (modes and symlinks kept), as `git clone` plus the working tree's changes would. */
function copyCheckout(dest: string): void {
  for (const f of cleanCheckoutFiles()) {
    const to = join(dest, f);
    mkdirSync(dirname(to), { recursive: true });
    if (lstatSync(join(ROOT, f)).isSymbolicLink()) symlinkSync(readlinkSync(join(ROOT, f)), to);
    else copyFileSync(join(ROOT, f), to);
  }
}

async function replay(name: string): Promise<void> {
  const root = join(scratch, 'stages', name);
  mkdirSync(root, { recursive: true });
  await replayStage(stage(docker, name), {
    context,
    ignore,
    root,
    stageRoots: roots,
    run: async (command, cwd, vars, i) => {
      for (const part of splitAnd(command)) {
        const standIn = hostStandIn(part);
        if (standIn !== null) {
          standIn();
          continue;
        }
        // Absolute paths name the image's files, which are under the stage's root here.
        const mapped = part.replace(/(^|\s)(\/[^\s'"]*)/g, (_, before: string, path: string) => before + join(root, path));
        await sh(mapped, cwd, { ...buildEnv(), ...vars }, `stage ${name}, line ${i.line}`);
      }
    },
  });
  roots.set(name, root);
}

// ---------------------------------------------------------------- containers, natively

const runtimeUser = effective(stage(docker, 'runtime'), 'USER')!
  .text.split(':')
  .map((x) => Number(x));
const asAppUser: SpawnOptions = isRoot ? { uid: runtimeUser[0]!, gid: runtimeUser[1]! } : {};
const appHome = flagValue(words(commands(stage(docker, 'runtime')).find((c) => c.startsWith('useradd '))!), '--home-dir')!;

interface Container {
  readonly stage: Stage;
  /** The replayed image's `/`. */
  readonly root: string;
  /** Container path -> host folder, longest first. */
  readonly mounts: readonly (readonly [string, string])[];
}

let anonymous = 0;

/** A volume's folder. A new volume starts as a copy of the image's folder at its mount point: its owner and mode (the folders are empty). */
function volumeDir(name: string, imageDir: string | null): string {
  const dir = join(scratch, 'volumes', name);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    if (imageDir !== null && existsSync(imageDir)) {
      const st = statSync(imageDir);
      chmodSync(dir, st.mode & 0o7777);
      if (isRoot) chownSync(dir, st.uid, st.gid);
    }
  }
  return dir;
}

/** A container of `target` (every neurocorr target runs the replayed runtime tree) with a compose service's volumes, and anonymous ones for the image's VOLUMEs. */
function container(target: string, svc: ComposeService | null): Container {
  const s = stage(docker, target);
  const root = roots.get('runtime')!;
  const list: [string, string][] = [];
  for (const v of svc === null ? [] : mounts(svc))
    list.push([v.target, v.named ? volumeDir(v.source, join(root, v.target)) : resolve(context, 'deploy', v.source)]);
  for (const v of effective(s, 'VOLUME')?.exec ?? []) if (!list.some(([t]) => t === v)) list.push([v, volumeDir(`anonymous-${++anonymous}`, join(root, v))]);
  return { stage: s, root, mounts: list.sort((a, b) => b[0].length - a[0].length) };
}

function hostPath(c: Container, path: string): string {
  for (const [target, dir] of c.mounts) if (path === target || path.startsWith(`${target}/`)) return join(dir, path.slice(target.length));
  return join(c.root, path);
}

/** Host ports of the compose services' container ports (`nats:4222`). */
const ports = new Map<string, number>();

/** A service's arguments on this host: URLs naming a compose service go to its local port, absolute paths to their mounts or the image's root. */
function hostArgs(c: Container, args: readonly string[]): string[] {
  return args.map((a) => {
    const url = /^([a-z]+):\/\/([^:/@]+):(\d+)(.*)$/.exec(a);
    if (url !== null && url[2]! in compose.services) {
      const port = ports.get(`${url[2]}:${url[3]}`);
      if (port === undefined) throw new Error(`${a}: service ${url[2]} is not running here`);
      return `${url[1]}://127.0.0.1:${port}${url[4]}`;
    }
    return a.startsWith('/') ? hostPath(c, a) : a;
  });
}

const withFlag = (args: readonly string[], flag: string, value: string): string[] => {
  const k = args.indexOf(flag);
  if (k < 0) throw new Error(`${flag} is not in ${args.join(' ')}`);
  return [...args.slice(0, k + 1), value, ...args.slice(k + 2)];
};

/** How the container runs `args`: its ENTRYPOINT found on the image's PATH in its root, its ENV (paths mapped), its WORKDIR, its user. */
function containerCommand(c: Container, args: readonly string[]): { command: string; args: string[]; options: SpawnOptions } {
  const [entry, ...entryArgs] = execOf(c.stage, 'ENTRYPOINT');
  const command = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
    .map((d) => join(c.root, d, entry!))
    .find((p) => existsSync(p));
  if (command === undefined) throw new Error(`ENTRYPOINT ${entry} is not on the image's PATH`);
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: hostPath(c, appHome) };
  for (const [k, v] of Object.entries(imageEnv(c.stage))) env[k] = v.startsWith('/') ? hostPath(c, v) : v;
  return { command, args: [...entryArgs, ...args], options: { cwd: hostPath(c, effective(c.stage, 'WORKDIR')!.text), env, ...asAppUser } };
}

function runIn(c: Container, args: readonly string[]) {
  const { command, args: full, options } = containerCommand(c, args);
  return spawnSync(command, full, { ...options, encoding: 'utf8', timeout: 60_000 });
}

interface Proc {
  readonly name: string;
  output(): string;
  readonly exited: Promise<number | string>;
  running(): boolean;
  kill(signal?: NodeJS.Signals): void;
}
const procs: Proc[] = [];

function start(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Proc {
  const child: ChildProcess = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let done = false;
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolveExit) => {
    child.on('error', (err) => {
      out += `\n[${name}: ${err.message}]`;
      done = true;
      resolveExit('spawn error');
    });
    child.on('close', (code, signal) => {
      done = true;
      resolveExit(code ?? signal ?? 'unknown');
    });
  });
  const proc: Proc = { name, output: () => out, exited, running: () => !done, kill: (signal = 'SIGKILL') => void child.kill(signal) };
  procs.push(proc);
  return proc;
}

/** Waits for a neurocorr worker's "worker ready" log line and returns it. */
async function readyLine(p: Proc): Promise<{ kernel: string; dataRoots: string[]; cacheDir: string }> {
  const READY = /^.*"worker ready".*$/m;
  // The whole line: it ends with a newline.
  await waitFor(`${p.name} ready`, () => /"worker ready".*\n/.test(p.output()) || !p.running(), 30_000);
  const line = READY.exec(p.output())?.[0];
  if (line === undefined) throw new Error(`${p.name} exited before it was ready:\n${p.output()}`);
  return JSON.parse(line) as { kernel: string; dataRoots: string[]; cacheDir: string };
}

function startWorkerContainer(
  name: string,
  target: string,
  svc: ComposeService | null,
  args: readonly string[],
  metricsPort: number,
): { proc: Proc; c: Container } {
  const c = container(target, svc);
  const { command, args: full, options } = containerCommand(c, withFlag(hostArgs(c, args), '--metrics-port', String(metricsPort)));
  return { proc: start(name, command, full, options), c };
}

/** The worker image's HEALTHCHECK, run here against `port` instead of the metrics port: its exit status. */
async function healthcheck(port: number): Promise<number | string> {
  const [program, ...args] = execOf(stage(docker, 'worker'), 'HEALTHCHECK');
  const imagePort = flagValue(execOf(stage(docker, 'worker'), 'CMD'), '--metrics-port')!;
  expect(program).toBe('node');
  const p = start(
    'healthcheck',
    process.execPath,
    args.map((a) => a.replace(`:${imagePort}/`, `:${port}/`)),
  );
  const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
  const status = await p.exited;
  clearTimeout(timer);
  return status;
}

interface Report {
  scores: unknown;
  constant: unknown;
  neurons: unknown;
  kernel: string;
  null: { scores: unknown } | null;
  cluster: { workers: string[] } | null;
}
const sameScore = (r: Report) => ({ scores: r.scores, constant: r.constant, neurons: r.neurons, null: r.null?.scores });

/** The checkout's own embedded run of the README's example. */
let checkoutReport: Report | undefined;
function checkoutScore(): Report {
  if (checkoutReport === undefined) {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), 'score', 'examples/mlp', 'examples/cnn', '--json', '--no-progress'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    checkoutReport = JSON.parse(r.stdout) as Report;
  }
  return checkoutReport;
}

afterAll(async () => {
  for (const p of procs) if (p.running()) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
});

describe('the build and runtime stages, replayed on a clean checkout', () => {
  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'nc-deploy-'));
    // The image's user must reach the replayed tree and the mounted examples, as in an image.
    chmodSync(scratch, 0o755);
    context = join(scratch, 'context');
    copyCheckout(context);
    await replay('build');
    await replay('runtime');
    if (isRoot) await sh(`chmod -R a+rX ${JSON.stringify(join(scratch, 'stages'))} ${JSON.stringify(context)}`, scratch, buildEnv(), 'chmod');
  }, 10 * 60_000);

  it('the runtime tree is package.json, bin, dist, production node_modules and the built addons; no dev packages, no tfjs-node', () => {
    const root = roots.get('runtime')!;
    const app = join(root, 'app');
    expect(readdirSync(app).sort()).toEqual(['bin', 'dist', 'node_modules', 'package.json', 'worker']);
    expect(readdirSync(join(app, 'worker'), { recursive: true }).map(String).sort()).toEqual([
      'native',
      join('native', 'build'),
      join('native', 'build', 'Release'),
      join('native', 'build', 'Release', 'neurocorr.node'),
    ]);
    expect(existsSync(join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))).toBe(true);
    const devPresent = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.dev === true && existsSync(join(app, path)))
      .map(([path]) => path);
    expect(devPresent, 'devDependencies (and packages only they need) in the runtime tree').toEqual([]);
    // A devDependency that a production package also needs (protobufjs needs @types/node) stays, as the lock file says.
    const devOnly = Object.keys(pkg.devDependencies).filter((name) => lock.packages[`node_modules/${name}`]?.dev === true);
    expect(devOnly).toEqual(expect.arrayContaining(['typescript', 'vitest', 'eslint']));
    for (const name of devOnly) expect(existsSync(join(app, 'node_modules', name)), name).toBe(false);
    for (const name of ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu']) expect(existsSync(join(app, 'node_modules', name)), name).toBe(false);
    const deps = Object.keys((JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
    expect(deps.filter((d) => !existsSync(join(app, 'node_modules', d)))).toEqual([]);
    expect(readlinkSync(join(root, 'usr', 'local', 'bin', 'neurocorr'))).toBe(join(root, 'app', 'bin', 'neurocorr.js'));
    if (isRoot) for (const dir of ['cache', 'results']) expect(statSync(join(root, dir)).uid, `/${dir} belongs to the app user`).toBe(runtimeUser[0]);
  });

  it(`runs as the image's user${isRoot ? ' (uid 10001)' : ''}: --version, and the coordinator target's default command`, () => {
    const version = runIn(container('worker', null), ['--version']);
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
    const c = container('coordinator', null);
    const help = runIn(c, execOf(c.stage, 'CMD'));
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/Usage: neurocorr coordinator/);
  });

  it("scores the README's example pair embedded, on the native addon, bit for bit as the checkout does", () => {
    const c = container('coordinator', service('coordinator'));
    const r = runIn(c, hostArgs(c, ['score', '/data/mlp', '/data/cnn', '--json', '--no-progress']));
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.kernel).toMatch(/^native-/);
    expect(sameScore(report)).toEqual(sameScore(checkoutScore()));
  });

  describe('the compose services, run natively against servers started from their commands', () => {
    const workers: { proc: Proc; c: Container; metricsPort: number }[] = [];

    beforeAll(async () => {
      const nats = service('nats');
      const natsCmd = nats.command!;
      const [client, monitor] = [await freePort(), await freePort()];
      const store = volumeDir(mounts(nats).find((m) => m.target === flagValue(natsCmd, '-sd'))!.source, null);
      const natsArgs = natsCmd.map((a, k) => (natsCmd[k - 1] === '-sd' ? store : natsCmd[k - 1] === '-m' ? String(monitor) : a));
      start('nats-server', locateTool('nats-server'), [...natsArgs, '-a', '127.0.0.1', '-p', String(client)]);
      ports.set('nats:4222', client);
      ports.set(`nats:${flagValue(natsCmd, '-m')}`, monitor);

      const redis = service('redis');
      const [program, ...redisArgs] = redis.command!;
      expect(program).toBe('redis-server');
      const redisPort = await freePort();
      start('redis-server', locateTool('redis-server'), [
        ...redisArgs,
        '--port',
        String(redisPort),
        '--bind',
        '127.0.0.1',
        '--dir',
        volumeDir('redis-data', null),
      ]);
      ports.set('redis:6379', redisPort);

      await waitFor('nats-server healthy', async () => (await natsHealth()) === 200, 20_000);
      await waitFor('redis-server answering', async () => (await redisPing()) === 'PONG', 20_000);

      const svc = service('worker');
      for (let r = 1; r <= svc.deploy!.replicas!; r++) {
        const metricsPort = await freePort();
        workers.push({ ...startWorkerContainer(`worker-${r}`, 'worker', svc, svc.command!, metricsPort), metricsPort });
      }
      await Promise.all(workers.map((w) => readyLine(w.proc)));
    }, 90_000);

    /** The nats healthcheck's URL (wget --spider in the image), its port mapped. */
    async function natsHealth(): Promise<number | null> {
      const m = flagValue(service('nats').command!, '-m')!;
      const url = service('nats')
        .healthcheck!.test.at(-1)!
        .replace(`:${m}/`, `:${ports.get(`nats:${m}`)}/`);
      return (await fetch(url).catch(() => null))?.status ?? null;
    }

    /** What the redis healthcheck (redis-cli ping) asks; also returns whether the append-only file is on. */
    async function redisPing(query: 'ping' | 'appendonly' = 'ping'): Promise<string | null> {
      const client = new Redis(`redis://127.0.0.1:${ports.get('redis:6379')}`, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return query === 'ping' ? await client.ping() : ((await client.config('GET', 'appendonly')) as string[])[1]!;
      } catch {
        return null;
      } finally {
        client.disconnect();
      }
    }

    it('nats and redis come up from the compose commands: JetStream on (healthcheck 200), the store in its volume, the append-only file on', async () => {
      expect(await natsHealth()).toBe(200);
      expect(readdirSync(volumeDir('nats-data', null))).toContain('jetstream');
      expect(await redisPing('appendonly')).toBe('yes');
      expect(readdirSync(volumeDir('redis-data', null)).some((f) => f.startsWith('appendonly'))).toBe(true);
    });

    it('two workers from the compose command: the native kernel, /data as their data root, a private cache in /cache, metrics on the given port', async () => {
      expect(workers).toHaveLength(2);
      for (const w of workers) {
        const ready = await readyLine(w.proc);
        expect(ready.kernel).toMatch(/^native-/);
        expect(ready.dataRoots).toEqual([hostPath(w.c, '/data')]);
        expect(ready.cacheDir).toBe(hostPath(w.c, '/cache/neurocorr'));
        if (isRoot) expect(statSync(ready.cacheDir).uid).toBe(runtimeUser[0]);
        const metrics = await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`);
        expect(metrics.status).toBe(200);
        expect(await metrics.text()).toContain('neurocorr_worker_tiles_done_total');
      }
    });

    it('the coordinator service scores the example pair on the workers into the results volume, bit for bit the embedded score', async () => {
      const svc = service('coordinator');
      const c = container(svc.build!.target!, svc);
      const { command, args, options } = containerCommand(c, hostArgs(c, svc.command!));
      const p = start('coordinator', command, args, options);
      expect(await p.exited, p.output()).toBe(0);
      const report = JSON.parse(readFileSync(hostPath(c, flagValue(svc.command!, '--out')!), 'utf8')) as Report;
      expect(sameScore(report)).toEqual(sameScore(checkoutScore()));
      expect(report.cluster?.workers.length).toBeGreaterThan(0);
      expect(p.output()).toMatch(/score \(paper, symmetric\): 0\.3945/);
    });

    it('the zoo service runs examples/zoo on the workers: its outputs in the results volume, the matrices of the embedded zoo', async () => {
      const svc = service('zoo');
      const c = container(svc.build!.target!, svc);
      const { command, args, options } = containerCommand(c, hostArgs(c, svc.command!));
      const p = start('zoo', command, args, options);
      expect(await p.exited, p.output()).toBe(0);
      const out = hostPath(c, flagValue(svc.command!, '--out')!);
      expect(readdirSync(out)).toEqual(expect.arrayContaining(['report.html', 'heatmap.png', 'matrix.json', 'zoo.sqlite']));
      const embeddedOut = join(scratch, 'zoo-embedded');
      const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), 'zoo', 'examples/zoo/zoo.json', '--out', embeddedOut, '--no-progress'], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const matrices = (dir: string) => {
        const m = JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')) as { order: unknown; matrices: unknown };
        return { order: m.order, matrices: m.matrices };
      };
      expect(matrices(out)).toEqual(matrices(embeddedOut));
    });

    it("the worker target's default command starts (no data root: object-store jobs only, the native kernel) and drains on SIGTERM", async () => {
      const { proc } = startWorkerContainer('worker-default', 'worker', null, execOf(stage(docker, 'worker'), 'CMD'), await freePort());
      const ready = await readyLine(proc);
      expect(ready.dataRoots).toEqual([]);
      expect(ready.kernel).toMatch(/^native-/);
      proc.kill('SIGTERM');
      expect(await proc.exited, proc.output()).toBe(0);
    });

    it("the gpu-worker's command and environment load @tensorflow/tfjs-node-gpu from /app/node_modules (a stand-in package here)", async () => {
      // The real package needs libtensorflow, which its install script downloads when the GPU image is built.
      // This stand-in has its name and the tfjs API on the cpu backend: it shows that the image's command and
      // environment make the worker import that package from where gpu-build installs it.
      const stub = join(roots.get('runtime')!, 'app', 'node_modules', '@tensorflow', 'tfjs-node-gpu');
      mkdirSync(stub, { recursive: true });
      writeFileSync(
        join(stub, 'package.json'),
        JSON.stringify({ name: '@tensorflow/tfjs-node-gpu', version: '4.22.0', type: 'module', exports: './index.js' }),
      );
      writeFileSync(join(stub, 'index.js'), "import '@tensorflow/tfjs-backend-cpu';\nexport * from '@tensorflow/tfjs-core';\n");
      try {
        const { proc } = startWorkerContainer('gpu-worker', 'gpu-worker', null, execOf(stage(docker, 'gpu-worker'), 'CMD'), await freePort());
        const ready = await readyLine(proc);
        expect(ready.kernel).toBe('tfjs-node-gpu');
        proc.kill('SIGTERM');
        expect(await proc.exited, proc.output()).toBe(0);
      } finally {
        rmSync(stub, { recursive: true, force: true });
      }
    });

    it('the worker HEALTHCHECK command fails on a closed port, on 404 and 500, and passes on 200 at /healthz', async () => {
      let status = 200;
      const server = createHttpServer((req, res) => res.writeHead(req.url === '/healthz' ? status : 404).end());
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      const port = (server.address() as { port: number }).port;
      try {
        expect(await healthcheck(port)).toBe(0);
        status = 500;
        expect(await healthcheck(port)).toBe(1);
        status = 404;
        expect(await healthcheck(port)).toBe(1);
      } finally {
        await new Promise<void>((ok) => server.close(() => ok()));
      }
      expect(await healthcheck(port)).toBe(1);
    });

    it('the worker HEALTHCHECK passes against the running workers', async () => {
      for (const w of workers) expect(await healthcheck(w.metricsPort), w.proc.name).toBe(0);
    });

    it('the workers drain on SIGTERM (what compose stop sends) and exit 0', async () => {
      for (const w of workers) w.proc.kill('SIGTERM');
      for (const w of workers) expect(await w.proc.exited, w.proc.output()).toBe(0);
    });
  });
});
