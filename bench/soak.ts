/**
 * `npm run soak`: a shared cluster under load for a bounded time (10 minutes
 * by default, `--minutes N`; seeded, `--seed N`). Jobs of random kinds and
 * sizes (scores and zoos, .npy and shard sets, with and without the null)
 * start at random times, each from its own coordinator, on real nats-server
 * and redis-server, while workers are killed and started, drained and added,
 * and NATS and Redis are paused. At the end every job must be done and
 * bit-identical to its embedded run, the work queue empty (no tile lost), and
 * every worker's RSS within its --cache plus a stated overhead. Prints a
 * table and writes it to the "Soak" section of bench/RESULTS.md (`--quick`:
 * 90 seconds, writes nothing).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createRng } from '#dist/shared/core/index.js';
import { startNats, startRedis, stopAllServers } from '../test/helpers/servers.js';
import { provision } from '../test/setup/tools.js';
import { runCli, type Proc } from './cli-proc.js';
import { replaceSection } from './results.js';
import { writeModel } from './synthetic.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'neurocorr.js');
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const minutes = Number(flag('--minutes') ?? (quick ? 1.5 : 10));
const seed = Number(flag('--seed') ?? 1);
const log = (line: string): void => void process.stderr.write(`soak: ${line}\n`);

const ACK_WAIT = 2;
/** Every worker's --cache, and what a worker may hold beyond it: Node and V8, the pool's threads and kernel buffers, the null's gathered samples (64 MiB at most). */
const CACHE = 96 * 2 ** 20;
const OVERHEAD = 320 * 2 ** 20;
/** Each tile is held this long on a worker, so jobs last long enough to overlap and meet the faults. */
const SLOW_MS = 40;
const FAULTS = ['worker-kill', 'worker-add', 'worker-drain', 'nats-pause', 'redis-pause'] as const;
type Fault = (typeof FAULTS)[number];

function cli(argv: readonly string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`neurocorr ${argv.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** A kind of job: a score of two sets, or a zoo of several. */
interface Kind {
  readonly name: string;
  readonly args: readonly string[];
  readonly zoo: boolean;
}

interface Report {
  scores: unknown;
  layers: unknown;
  null: { scores: unknown } | null;
}

/** What must be equal bit for bit: a score's scores, layers and null; a zoo's matrix.csv. */
function outcome(kind: Kind, proc: Proc, out: string | null): string {
  if (!kind.zoo) {
    const r = JSON.parse(proc.out) as Report;
    return JSON.stringify({ scores: r.scores, layers: r.layers, null: r.null?.scores ?? null });
  }
  return readFileSync(join(out!, 'matrix.csv'), 'utf8');
}

function catalog(dir: string): Kind[] {
  const sizes = { a: 600, b: 1500, c: 3000, d: 5000 } as const;
  for (const [name, n] of Object.entries(sizes)) writeModel(join(dir, name), n, 32, n);
  if (!existsSync(join(dir, 'c.shards', 'manifest.json'))) cli(['prepare', join(dir, 'c'), join(dir, 'c.shards'), '--shard-neurons', '400']);
  const zooFile = join(dir, 'zoo.json');
  writeFileSync(zooFile, JSON.stringify({ models: ['a', 'b', 'c'].map((name) => ({ name, path: join(dir, name) })) }));
  const set = (name: string) => join(dir, name);
  // Span 1 (a super-tile of one block) unless asked: jobs of a few hundred to a few thousand tiles, seconds to tens of seconds each.
  const score = (name: string, f: string, g: string, tile: number, nulls: number, superTiles = false): Kind => ({
    name,
    args: [
      'score',
      set(f),
      set(g),
      '--tile',
      String(tile),
      ...(superTiles ? [] : ['--super-tile', String(tile)]),
      '--null',
      String(nulls),
      ...(nulls > 0 ? ['--null-sample', '200'] : []),
    ],
    zoo: false,
  });
  return [
    score('a x b', 'a', 'b', 64, 0),
    score('b x c, null', 'b', 'c', 64, 2),
    score('c x d', 'c', 'd', 64, 0),
    score('c x d, super-tiles', 'c', 'd', 64, 0, true),
    score('c.shards x b', 'c.shards', 'b', 128, 0),
    score('d x a, null', 'd', 'a', 128, 3),
    score('a x a, null', 'a', 'a', 64, 2),
    score('c.shards x d', 'c.shards', 'd', 128, 0),
    { name: 'zoo a, b, c', args: ['zoo', zooFile, '--tile', '128', '--super-tile', '128', '--null', '0'], zoo: true },
  ];
}

interface JobRun {
  readonly kind: Kind;
  readonly job: string;
  readonly startedAt: number;
  firstTileAt: number | null;
  endedAt: number | null;
  code: number | string | null;
  exact: boolean | null;
  /** Tiles in the job's plan, from the coordinator's "tiles published" line. */
  tiles: number;
  /** What the faults cost, from the coordinator's "job done" line. */
  cost: { redelivered: number; republished: number; duplicates: number } | null;
}

async function main(): Promise<void> {
  provision();
  const random = createRng(seed);
  const dir = join(tmpdir(), 'neurocorr-soak');
  mkdirSync(dir, { recursive: true });
  const kinds = catalog(dir);
  log(`embedded references of ${kinds.length} job kinds`);
  const outputs = mkdtempSync(join(tmpdir(), 'neurocorr-soak-out-'));
  const references = kinds.map((kind, k) => {
    if (!kind.zoo) {
      const stdout = cli([...kind.args, '--json', '--no-progress']);
      return outcome(kind, { out: stdout } as Proc, null);
    }
    const out = join(outputs, `embedded-${k}`);
    cli([...kind.args, '--out', out, '--store', `${out}.sqlite`, '--no-progress']);
    return outcome(kind, {} as Proc, out);
  });

  const [nats, redis] = await Promise.all([startNats(), startRedis()]);
  const workerArgs = [
    'worker',
    '--nats',
    nats.url,
    '--threads',
    '1',
    '--cache',
    String(CACHE),
    '--data-root',
    tmpdir(),
    '--cache-dir',
    join(tmpdir(), 'neurocorr-soak-cache'),
  ];
  const workers: Proc[] = [];
  const peakRss = new Map<number, number>();
  const startWorker = (): void => void workers.push(runCli(workerArgs, { NEUROCORR_WORKER_FAULT: `slow:${SLOW_MS}` }));
  const live = (): Proc[] => workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
  for (let i = 0; i < 3; i++) startWorker();
  const sampler = setInterval(() => {
    for (const w of live()) {
      try {
        const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${w.child.pid}/status`, 'utf8'))?.[1] ?? 0);
        peakRss.set(w.child.pid!, Math.max(peakRss.get(w.child.pid!) ?? 0, kb * 1024));
      } catch {
        // The worker just exited.
      }
    }
  }, 500);

  let serial = 0;
  const runJob = (kind: Kind, faults: boolean): { run: JobRun; done: Promise<void> } => {
    const job = `soak-${seed}-${process.pid}-${++serial}`;
    const out = kind.zoo ? join(outputs, job) : null;
    const flags = [
      '--nats',
      nats.url,
      '--redis',
      redis.url,
      '--job',
      job,
      '--ack-wait',
      String(ACK_WAIT),
      '--stall-timeout',
      '180',
      '--checkpoint-seconds',
      '1',
    ];
    const proc = runCli([...kind.args, ...flags, ...(out === null ? ['--json'] : ['--out', out, '--store', `${out}.sqlite`])], {
      NEUROCORR_PROGRESS_MS: '200',
    });
    const record: JobRun = { kind, job, startedAt: performance.now(), firstTileAt: null, endedAt: null, code: null, exact: null, tiles: 0, cost: null };
    proc.child.stderr!.on('data', () => {
      if (record.firstTileAt === null && /progress: (?:model pairs \d+\/\d+\s+)?[1-9]\d*\//.test(proc.err)) record.firstTileAt = performance.now();
    });
    const done = proc.exited.then((code) => {
      record.endedAt = performance.now();
      record.code = code;
      // Each coordinator's log is kept beside the outputs: a soak that fails is read from them.
      writeFileSync(join(outputs, `${job}.log`), proc.err);
      if (code !== 0) {
        log(`job ${job} (${kind.name}) ended with ${code}${faults ? '' : ' running alone'}:\n${proc.err.slice(-3000)}`);
        return;
      }
      record.exact = outcome(kind, proc, out) === references[kinds.indexOf(kind)];
      const line = (msg: string) => proc.err.split('\n').find((l) => l.includes(`"msg":"${msg}"`));
      record.tiles = (JSON.parse(line('tiles published') ?? '{"tiles":0}') as { tiles: number }).tiles;
      const done = line('job done');
      record.cost = done === undefined ? null : (JSON.parse(done) as JobRun['cost']);
    });
    return { run: record, done };
  };

  try {
    await Promise.all(
      workers.map(async (w) => {
        while (!w.err.includes('"worker ready"')) await sleep(50);
      }),
    );
    // Each kind alone on the same workers, no faults: the baseline of its slowdown.
    const alone = new Map<Kind, number>();
    for (const kind of kinds) {
      const { run: r, done } = runJob(kind, false);
      await done;
      if (r.code !== 0 || r.exact !== true) throw new Error(`${kind.name} alone: ${r.code}, exact ${r.exact}`);
      alone.set(kind, (r.endedAt! - r.startedAt) / 1000);
      log(`${kind.name} alone: ${alone.get(kind)!.toFixed(1)} s`);
    }

    log(`seed ${seed}: ${minutes} minutes of jobs and faults`);
    const started = performance.now();
    const until = started + minutes * 60_000;
    const jobs: { run: JobRun; done: Promise<void> }[] = [];
    const faults = Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<Fault, number>;
    const arrivals = (async () => {
      while (performance.now() < until) {
        jobs.push(runJob(kinds[Math.floor(random() * kinds.length)]!, true));
        await sleep(2000 + random() * (quick ? 6000 : 16_000));
      }
    })();
    const schedule = (async () => {
      while (performance.now() < until) {
        await sleep(5000 + random() * 10_000);
        if (performance.now() >= until) break;
        const fault = FAULTS[Math.floor(random() * FAULTS.length)]!;
        const victims = live();
        const victim = victims[Math.floor(random() * victims.length)];
        log(`${((performance.now() - started) / 1000).toFixed(0)} s: ${fault}`);
        faults[fault]++;
        switch (fault) {
          case 'worker-kill':
            victim?.child.kill('SIGKILL');
            await sleep(1000);
            startWorker();
            break;
          case 'worker-add':
            if (victims.length < 5) startWorker();
            break;
          case 'worker-drain':
            if (victims.length > 2) victim?.child.kill('SIGTERM');
            break;
          case 'nats-pause':
            nats.signal('SIGSTOP');
            await sleep(ACK_WAIT * 2000);
            nats.signal('SIGCONT');
            break;
          case 'redis-pause':
            redis.signal('SIGSTOP');
            await sleep(3000);
            redis.signal('SIGCONT');
            break;
        }
      }
    })();
    await Promise.all([arrivals, schedule]);
    log(`${jobs.length} jobs started; waiting for the last of them`);
    await Promise.all(jobs.map((j) => j.done));
    const wall = (performance.now() - started) / 1000;

    // No tile lost: the work queue holds nothing, and no job's consumer is left. nats-server 2.9's purge may miss a
    // message of an ended job's subject (its count and then the message linger); the next job's start sweeps such
    // leftovers, so one more job runs first and both counts are reported.
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    const counted = async (): Promise<Record<string, number>> => (await jsm.streams.info('NEUROCORR_TILES', { subjects_filter: '>' })).state.subjects ?? {};
    const lingering = Object.values(await counted()).reduce((a, b) => a + b, 0);
    if (lingering > 0) log(`after the last job the tile stream counts ${JSON.stringify(await counted())} (coordinators' logs in ${outputs})`);
    const { run: sweeper, done: swept } = runJob(kinds[0]!, false);
    await swept;
    if (sweeper.code !== 0 || sweeper.exact !== true) throw new Error(`the job after the soak: ${sweeper.code}, exact ${sweeper.exact}`);
    const left = await counted();
    const queued = Object.values(left).reduce((a, b) => a + b, 0);
    if (queued > 0) log(`after one more job's start the tile stream still counts ${JSON.stringify(left)}`);
    const consumers: string[] = [];
    for await (const c of jsm.consumers.list('NEUROCORR_TILES')) consumers.push(c.name);
    await nc.close();

    const runs = jobs.map((j) => j.run);
    const tiles = runs.reduce((n, r) => n + r.tiles, 0);
    const sum = (key: 'redelivered' | 'republished' | 'duplicates') => runs.reduce((n, r) => n + (r.cost?.[key] ?? 0), 0);
    const firstWaits = runs.map((r) => ((r.firstTileAt ?? r.endedAt!) - r.startedAt) / 1000);
    const slowdowns = runs.map((r) => (r.endedAt! - r.startedAt) / 1000 / alone.get(r.kind)!);
    const sorted = [...slowdowns].sort((a, b) => a - b);
    const peak = Math.max(...peakRss.values());
    const allExact = runs.every((r) => r.code === 0 && r.exact === true);
    const ok = allExact && queued === 0 && consumers.length === 0 && peak <= CACHE + OVERHEAD;
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    const byKind = kinds.map((kind) => {
      const mine = runs.map((r, i) => ({ r, s: slowdowns[i]! })).filter(({ r }) => r.kind === kind);
      const s = mine.map((x) => x.s).sort((a, b) => a - b);
      return `| ${kind.name} | ${mine.length} | ${alone.get(kind)!.toFixed(1)} | ${s.length === 0 ? '-' : s[Math.floor(s.length / 2)]!.toFixed(1)} | ${s.length === 0 ? '-' : s.at(-1)!.toFixed(1)} |`;
    });
    const lines = [
      '## Soak',
      '',
      `Produced by \`npm run soak${quick ? ' -- --quick' : minutes === 10 ? '' : ` -- --minutes ${minutes}`}\` (seed ${seed}) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores, real nats-server and redis-server on loopback, every process on the same cores. For ${minutes} minutes a job of a random kind (below) starts every 2-${quick ? 8 : 18} s, each from its own coordinator (ack wait ${ACK_WAIT} s, --stall-timeout 180), on workers with --threads 1 --cache ${mib(CACHE)} holding each tile ${SLOW_MS} ms (so jobs overlap), while a seeded schedule every 5-15 s kills a worker (SIGKILL, a new one starts), adds one (up to 5), drains one (SIGTERM, down to 2), pauses nats-server for ${2 * ACK_WAIT} s or redis-server for 3 s (SIGSTOP). Slowdown: a job's wall time in the soak over its kind's wall time alone on the same three workers before the soak.`,
      '',
      '| jobs | tiles | redelivered | republished | duplicates | faults (kill / add / drain / NATS pause / Redis pause) | longest wait for a first tile | slowdown median / max | worker peak RSS (limit: --cache + overhead) | queue left | every job exact |',
      '| ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- | --- | --- |',
      `| ${runs.length} | ${tiles} | ${sum('redelivered')} | ${sum('republished')} | ${sum('duplicates')} | ${FAULTS.map((f) => faults[f]).join(' / ')} | ${Math.max(...firstWaits).toFixed(1)} s | ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)}x / ${sorted.at(-1)!.toFixed(1)}x | ${mib(peak)} (${mib(CACHE)} + ${mib(OVERHEAD)}) | ${queued} tiles (${lingering} before the next job's start), ${consumers.length} consumers | ${allExact ? 'yes' : '**no**'} |`,
      '',
      `The jobs ran ${wall.toFixed(0)} s in all (the last ones finish after the ${minutes} minutes of arrivals). Tiles: every job's planned tiles (main and null) and redelivered, republished, duplicates: what the faults cost, as each coordinator logged them. Per kind:`,
      '',
      '| kind | jobs | alone (s) | slowdown, median | slowdown, max |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...byKind,
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (!quick) replaceSection(join(ROOT, 'bench', 'RESULTS.md'), '## Soak', lines.join('\n'));
    if (!ok) {
      process.exitCode = 1;
      log(`FAILED: exact ${allExact}, queue ${queued}, consumers ${consumers.join(',')}, peak RSS ${mib(peak)}`);
    }
  } finally {
    clearInterval(sampler);
    for (const w of workers) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await stopAllServers();
  }
}

await main();
