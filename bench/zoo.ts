/**
 * `npm run bench:zoo`: an 8-model zoo as one job (`neurocorr zoo`) against
 * the 64 separate `neurocorr score` runs it replaces, on the same data in the
 * same run; then the incremental 9th model (its row, column and diagonal:
 * 17 pairs) against a fresh 81-pair zoo. Models: `neurocorr synth` ResNet-18
 * block outputs at 1/16 of their spatial size, 64 probes, two families of
 * weights over overlapping latent features. Rounds interleave the two ways so
 * both meet the same machine noise; the table quotes medians. Writes the
 * "Zoo" section of bench/RESULTS.md (`--quick`: one round, 4 models, writes
 * nothing).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { neurocorrTimed } from './cli-proc.js';
import { replaceSection } from './results.js';

const ROOT = join(import.meta.dirname, '..', '..');
const quick = process.argv.includes('--quick');
const log = (line: string) => process.stderr.write(`bench:zoo: ${line}\n`);
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const neurocorr = neurocorrTimed;

const K = quick ? 4 : 8;
const rounds = quick ? 1 : 3;
const dir = join(tmpdir(), 'neurocorr-bench', 'zoo');
mkdirSync(dir, { recursive: true });
const arch = ['--arch', 'resnet18', '--scale', '0.0625', '--probes', '64', '--probe-seed', '3'];
const models = Array.from({ length: K + 1 }, (_, k) => {
  const name = `r18-${k}`;
  const path = join(dir, name);
  if (!existsSync(join(path, 'synth.json'))) {
    neurocorr(['synth', path, ...arch, '--seed', String(k + 1), '--features', k % 2 === 0 ? '0:10' : '6:16', '--force']);
  }
  return { name, path };
});
const zooFile = (count: number) => {
  const file = join(dir, `zoo-${count}.json`);
  writeFileSync(file, JSON.stringify({ models: models.slice(0, count).map(({ name, path }) => ({ name, path })) }));
  return file;
};
const neurons = Number(/neurons (\d+)/.exec(neurocorr(['score', models[0]!.path, models[1]!.path, '--no-progress', '--null', '0']).stdout)?.[1] ?? 0);

const oneJob: number[] = [];
const separate: number[] = [];
const incremental: number[] = [];
const fresh: number[] = [];
for (let round = 0; round < rounds; round++) {
  const out = join(dir, `out-${round}`);
  rmSync(out, { recursive: true, force: true });
  oneJob.push(neurocorr(['zoo', zooFile(K), '--out', out, '--no-progress']).seconds);
  log(`round ${round + 1}: ${K}-model zoo as one job: ${oneJob.at(-1)!.toFixed(1)} s`);
  let total = 0;
  for (const f of models.slice(0, K)) for (const g of models.slice(0, K)) total += neurocorr(['score', f.path, g.path, '--json', '--no-progress']).seconds;
  separate.push(total);
  log(`round ${round + 1}: ${K * K} separate score runs: ${total.toFixed(1)} s`);
  const added = neurocorr(['zoo', zooFile(K + 1), '--out', out, '--no-progress']);
  if (!added.stdout.includes(`computed ${2 * K + 1} pairs, reused ${K * K}`))
    throw new Error(`the incremental run did not compute exactly ${2 * K + 1} pairs:\n${added.stdout}`);
  incremental.push(added.seconds);
  const whole = join(dir, `whole-${round}`);
  rmSync(whole, { recursive: true, force: true });
  fresh.push(neurocorr(['zoo', zooFile(K + 1), '--out', whole, '--no-progress']).seconds);
  log(`round ${round + 1}: adding model ${K + 1}: ${incremental.at(-1)!.toFixed(1)} s incremental, ${fresh.at(-1)!.toFixed(1)} s from scratch`);
}

const f1 = (x: number) => x.toFixed(1);
const section = [
  '## Zoo',
  '',
  `Produced by \`npm run bench:zoo\` on ${new Date().toISOString().slice(0, 10)}, ${rounds} rounds, medians (every round in brackets). ${K} models from \`neurocorr synth\` (ResNet-18 block outputs at 1/16 of their spatial size, ${neurons.toLocaleString('en-US')} neurons each, 64 probes, two families over overlapping latent features), the default permutation null on. The zoo runs every ordered pair, diagonal included, as one job on one pool, each model read and standardized once; the peer is what a nightly script did before: one \`neurocorr score F G\` process per ordered pair, same data, same options, same machine, interleaved round by round.`,
  '',
  '| what | pairs | wall (s) | rounds (s) | ratio |',
  '| --- | ---: | ---: | --- | ---: |',
  `| ${K * K} separate \`score\` runs | ${K * K} | ${f1(median(separate))} | ${separate.map(f1).join(', ')} | 1.00 |`,
  `| \`neurocorr zoo\`, one job | ${K * K} | ${f1(median(oneJob))} | ${oneJob.map(f1).join(', ')} | ${(median(separate) / median(oneJob)).toFixed(2)}x faster |`,
  `| add a ${K + 1}th model: a fresh ${(K + 1) ** 2}-pair zoo | ${(K + 1) ** 2} | ${f1(median(fresh))} | ${fresh.map(f1).join(', ')} | 1.00 |`,
  `| add a ${K + 1}th model: incremental (its row, column and diagonal) | ${2 * K + 1} | ${f1(median(incremental))} | ${incremental.map(f1).join(', ')} | ${(median(fresh) / median(incremental)).toFixed(2)}x faster |`,
  '',
  `The one job saves each run's process start, pool start and model loading (K² of each become one), and keeps the threads busy across pairs. The incremental run reads the store, computes only the ${2 * K + 1} new pairs and redraws the outputs. On a cluster the same job goes to JetStream as one job, so N GPU workers share all K² pairs' tiles: a nightly 50-model zoo of ResNet-152 activations (2,500 pairs) is one plan whose tiles spread over every worker, and a night that adds one model computes 101 pairs.`,
  '',
].join('\n');
process.stdout.write(`${section}\n`);
if (quick) log('quick run: bench/RESULTS.md left as it is');
else replaceSection(join(ROOT, 'bench', 'RESULTS.md'), '## Zoo', section);
