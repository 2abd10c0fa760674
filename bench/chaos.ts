/**
 * `npm run chaos -- --seed N`: one cluster job of a few minutes on real
 * servers (nats-server, redis-server) with three workers, while a seeded
 * schedule injects faults: workers and the coordinator SIGKILLed (then
 * started again), nats-server SIGKILLed with and without its store,
 * redis-server restarted without persistence, nats-server and a worker
 * paused (SIGSTOP) for longer than the ack wait. The score must equal the
 * embedded run's, bit for bit, whatever happened. Prints a table and writes
 * it to the "Chaos" section of bench/RESULTS.md (`--quick`: a short run that
 * writes nothing; `--seeds 1,2,3` runs several).
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRng } from '#dist/shared/core/index.js';
import { startNats, startRedis, stopAllServers, type NatsServer, type RedisServer } from '../test/helpers/servers.js';
import { provision } from '../test/setup/tools.js';
import { runCli, type Proc } from './cli-proc.js';
import { replaceSection } from './results.js';
import { writeModel } from './synthetic.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'neurocorr.js');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const seeds = (flag('--seeds') ?? flag('--seed') ?? '1')
  .split(',')
  .map(Number)
  .filter((s) => Number.isInteger(s));
const log = (line: string) => process.stderr.write(`chaos: ${line}\n`);

const ACK_WAIT = 2;
const KINDS = ['worker-kill', 'coordinator-kill', 'nats-kill', 'nats-wipe', 'redis-restart', 'nats-pause', 'worker-pause'] as const;
type Kind = (typeof KINDS)[number];

interface Row {
  readonly seed: number;
  readonly faults: Record<Kind, number>;
  readonly redelivered: number;
  readonly republished: number;
  readonly duplicates: number;
  readonly seconds: number;
  readonly exact: boolean;
}

interface Report {
  scores: unknown;
  null: { scores: unknown } | null;
  cluster: { redelivered: number; republished: number; duplicates: number };
}

async function chaos(seed: number, data: readonly [string, string], reference: Report): Promise<Row> {
  // A seeded schedule: the same for the same seed.
  const random = createRng(seed);
  const [nats, redis]: [NatsServer, RedisServer] = await Promise.all([startNats(), startRedis()]);
  const job = `chaos-${seed}-${process.pid}`;
  const workerArgs = ['worker', '--nats', nats.url, '--threads', '1', '--data-root', tmpdir(), '--cache-dir', join(tmpdir(), 'neurocorr-chaos-cache')];
  // Each tile is held a little, so the job lasts minutes on a small machine and faults land mid-tile.
  const slow = { NEUROCORR_WORKER_FAULT: `slow:${quick ? 100 : 250}` };
  const workers: Proc[] = [];
  const startWorker = () => workers.push(runCli(workerArgs, slow));
  for (let i = 0; i < 3; i++) startWorker();
  const coordinatorArgs = [
    'score',
    ...data,
    '--nats',
    nats.url,
    '--redis',
    redis.url,
    '--job',
    job,
    '--tile',
    '128',
    '--json',
    '--no-progress',
    '--ack-wait',
    String(ACK_WAIT),
    '--lease',
    '3',
    '--checkpoint-seconds',
    '0.5',
  ];
  let coordinator = runCli(coordinatorArgs);
  const faults = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
  const started = performance.now();
  let finished = false;
  const schedule = (async () => {
    while (!finished) {
      await sleep((quick ? 2 : 5) * 1000 + random() * (quick ? 2 : 8) * 1000);
      if (finished) return;
      const kind = KINDS[Math.floor(random() * KINDS.length)]!;
      faults[kind]++;
      log(`seed ${seed}, ${((performance.now() - started) / 1000).toFixed(0)} s: ${kind}`);
      const victim = workers.filter((w) => w.child.exitCode === null)[Math.floor(random() * 3)] ?? workers[0]!;
      switch (kind) {
        case 'worker-kill':
          victim.child.kill('SIGKILL');
          await sleep(1000);
          startWorker();
          break;
        case 'coordinator-kill':
          coordinator.child.kill('SIGKILL');
          await coordinator.exited;
          await sleep(500 + random() * 1500);
          if (!finished) coordinator = runCli(coordinatorArgs);
          break;
        case 'nats-kill':
          await nats.restart({ kill: true });
          break;
        case 'nats-wipe':
          await nats.restart({ kill: true, wipeStore: true });
          break;
        case 'redis-restart':
          await redis.restart({ kill: true });
          break;
        case 'nats-pause':
          nats.signal('SIGSTOP');
          await sleep(ACK_WAIT * 2000);
          nats.signal('SIGCONT');
          break;
        case 'worker-pause':
          victim.child.kill('SIGSTOP');
          await sleep(ACK_WAIT * 2000);
          victim.child.kill('SIGCONT');
          break;
      }
    }
  })();
  // The coordinator that finishes prints the report; one killed by the schedule is replaced by it.
  let report: Report | null = null;
  for (;;) {
    const current = coordinator;
    const code = await current.exited;
    if (code === 0) {
      report = JSON.parse(current.out) as Report;
      break;
    }
    if (current === coordinator && code !== 'SIGKILL') throw new Error(`seed ${seed}: the coordinator failed (${code}):\n${current.err.slice(-4000)}`);
    while (coordinator === current) await sleep(100);
  }
  finished = true;
  await schedule;
  for (const w of workers) {
    w.child.kill('SIGCONT');
    w.child.kill('SIGKILL');
  }
  await Promise.all(workers.map((w) => w.exited));
  await Promise.all([nats.stop(), redis.stop()]);
  const exact =
    JSON.stringify(report.scores) === JSON.stringify(reference.scores) && JSON.stringify(report.null?.scores) === JSON.stringify(reference.null?.scores);
  return { seed, faults, ...report.cluster, seconds: (performance.now() - started) / 1000, exact };
}

async function main(): Promise<void> {
  provision();
  const n = quick ? 1500 : 5000;
  const m = 32;
  const dir = join(tmpdir(), 'neurocorr-chaos', `${n}x${m}`);
  writeModel(join(dir, 'F'), n, m, 31);
  writeModel(join(dir, 'G'), n, m, 32);
  const data = [join(dir, 'F'), join(dir, 'G')] as const;
  const r = spawnSync(process.execPath, [BIN, 'score', ...data, '--json', '--no-progress'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`the embedded run failed: ${r.stderr}`);
  const reference = JSON.parse(r.stdout) as Report;
  const rows: Row[] = [];
  try {
    for (const seed of seeds) {
      rows.push(await chaos(seed, data, reference));
      log(`seed ${seed}: ${rows.at(-1)!.exact ? 'exact' : 'NOT EXACT'} in ${rows.at(-1)!.seconds.toFixed(0)} s`);
    }
  } finally {
    await stopAllServers();
  }
  const lines = [
    '## Chaos',
    '',
    `Produced by \`npm run chaos -- --seeds ${seeds.join(',')}\` on ${new Date().toISOString().slice(0, 10)}: one cluster job (${n} x ${n} neurons, M = ${m}, tiles of 128, the permutation null on) with 3 workers (each holding a tile ${quick ? 100 : 250} ms, so the job lasts minutes) on real nats-server and redis-server, ack wait ${ACK_WAIT} s, while a seeded schedule injects a fault every ${quick ? '2-4' : '5-13'} s. Exact: the score and its null equal the embedded run's, bit for bit.`,
    '',
    `| seed | ${KINDS.join(' | ')} | redelivered | republished | duplicates | wall (s) | exact |`,
    `| ---: | ${KINDS.map(() => '---:').join(' | ')} | ---: | ---: | ---: | ---: | --- |`,
    ...rows.map(
      (row) =>
        `| ${row.seed} | ${KINDS.map((k) => row.faults[k]).join(' | ')} | ${row.redelivered} | ${row.republished} | ${row.duplicates} | ${row.seconds.toFixed(0)} | ${row.exact ? 'yes' : '**no**'} |`,
    ),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (!quick) replaceSection(join(ROOT, 'bench', 'RESULTS.md'), '## Chaos', lines.join('\n'));
  if (rows.some((row) => !row.exact)) process.exitCode = 1;
}

await main();
