/**
 * `npm run bench:ab -- --base DIR`: this checkout against another built
 * checkout of neurocorr (a previous commit: `git worktree add DIR REV && cd
 * DIR && npm ci`), on the same data, in the same run. Runs alternate (base,
 * head, head, base, ...) so both see the same machine noise; it prints
 * medians and head/base ratios and writes the "A/B against a previous
 * commit" section of bench/RESULTS.md (`--quick`: small cases, writes nothing).
 *
 * Cases: end-to-end `score` (kernel-bound and load-bound sizes, and the
 * examples with the permutation null), and a cluster job (one worker with two
 * threads, real nats-server and redis-server).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNats, startRedis, stopAllServers } from '../test/helpers/servers.js';
import { provision } from '../test/setup/tools.js';
import { replaceSection } from './results.js';
import { writeModel } from './synthetic.js';

const ROOT = join(import.meta.dirname, '..', '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const baseAt = args.indexOf('--base');
const BASE = baseAt >= 0 ? resolve(args[baseAt + 1] ?? '') : '';
const ROUNDS = quick ? 2 : 7;
const log = (line: string) => process.stderr.write(`bench:ab: ${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Tree {
  readonly label: 'base' | 'head';
  readonly bin: string;
}

function run(tree: Tree, argv: string[]): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, [tree.bin, ...argv], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${tree.label}: neurocorr ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return (performance.now() - t) / 1000;
}

async function startWorker(tree: Tree, nats: string): Promise<ChildProcess> {
  // Since the trust boundary, workers read shared paths only under --data-root; older checkouts know no such flag.
  const roots =
    tree.label === 'head' || spawnSync(process.execPath, [tree.bin, 'worker', '--help'], { encoding: 'utf8' }).stdout.includes('--data-root')
      ? ['--data-root', tmpdir()]
      : [];
  const child = spawn(process.execPath, [tree.bin, 'worker', '--nats', nats, '--threads', '2', ...roots], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  while (!err.includes('"worker ready"')) {
    if (child.exitCode !== null) throw new Error(`${tree.label} worker exited: ${err}`);
    await sleep(50);
  }
  return child;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  await new Promise<void>((done) => {
    child.once('close', () => done());
    child.kill('SIGTERM');
  });
}

interface Row {
  readonly name: string;
  readonly base: number;
  readonly head: number;
}

/** Alternates base and head (ABBA order per pair of rounds) and keeps every time. */
async function ab(name: string, once: (tree: Tree) => Promise<number> | number, trees: readonly [Tree, Tree]): Promise<Row> {
  const times = { base: [] as number[], head: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? trees : ([trees[1], trees[0]] as const);
    for (const tree of order) times[tree.label].push(await once(tree));
  }
  const row = { name, base: median(times.base), head: median(times.head) };
  log(`${name}: base ${row.base.toFixed(3)} s, head ${row.head.toFixed(3)} s (head/base ${(row.head / row.base).toFixed(3)})`);
  return row;
}

async function main(): Promise<void> {
  if (BASE === '' || !existsSync(join(BASE, 'bin', 'neurocorr.js'))) {
    throw new Error('usage: npm run bench:ab -- --base DIR, where DIR is a built checkout (git worktree add DIR REV && cd DIR && npm ci)');
  }
  const trees = [
    { label: 'base', bin: join(BASE, 'bin', 'neurocorr.js') },
    { label: 'head', bin: join(ROOT, 'bin', 'neurocorr.js') },
  ] as const satisfies readonly [Tree, Tree];
  const data = join(tmpdir(), 'neurocorr-bench-ab');
  const sets = (n: number, m: number) => {
    const dir = join(data, `${n}x${m}`);
    writeModel(join(dir, 'F'), n, m, 21);
    writeModel(join(dir, 'G'), n, m, 22);
    return [join(dir, 'F'), join(dir, 'G')] as const;
  };
  const cases: [string, number, number][] = quick
    ? [['e2e 4000 x 4000, M = 64', 4000, 64]]
    : [
        ['e2e 40000 x 40000, M = 64 (load-bound)', 40000, 64],
        ['e2e 16000 x 16000, M = 1024 (kernel-bound)', 16000, 1024],
      ];
  const rows: Row[] = [];
  for (const [name, n, m] of cases) {
    const [f, g] = sets(n, m);
    rows.push(await ab(name, (t) => run(t, ['score', f, g, '--json', '--no-progress', '--null', '0']), trees));
  }
  const examples = [join(ROOT, 'examples', 'mlp'), join(ROOT, 'examples', 'cnn')];
  rows.push(await ab('examples with the permutation null (5 x 200+464)', (t) => run(t, ['score', ...examples, '--json', '--no-progress']), trees));

  provision();
  const [nats, redis] = await Promise.all([startNats(), startRedis()]);
  try {
    const [f, g] = sets(quick ? 4096 : 16384, 256);
    let job = 0;
    rows.push(
      await ab(
        `cluster ${quick ? 4096 : 16384} x ${quick ? 4096 : 16384}, M = 256, 1 worker x 2 threads`,
        async (t) => {
          const worker = await startWorker(t, nats.url);
          try {
            const id = `ab-${process.pid}-${++job}`;
            return run(t, ['score', f, g, '--nats', nats.url, '--redis', redis.url, '--prefix', id, '--job', id, '--json', '--no-progress', '--null', '0']);
          } finally {
            await stopWorker(worker);
          }
        },
        trees,
      ),
    );
  } finally {
    await stopAllServers();
  }

  const rev = (dir: string) => spawnSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const lines = [
    '## A/B against a previous commit',
    '',
    `Produced by \`npm run bench:ab -- --base DIR\` on ${new Date().toISOString().slice(0, 10)}: head ${rev(ROOT)} against base ${rev(BASE)}, on the same files in the same run, ${ROUNDS} alternating runs each (wall time of a fresh \`neurocorr\` process, medians). A ratio under 1 is faster.`,
    '',
    '| case | base (s) | head (s) | head / base |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.name} | ${r.base.toFixed(3)} | ${r.head.toFixed(3)} | ${(r.head / r.base).toFixed(3)} |`),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (!quick) replaceSection(join(ROOT, 'bench', 'RESULTS.md'), '## A/B against a previous commit', lines.join('\n'));
}

await main();
