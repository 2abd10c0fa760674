/**
 * `npm run bench:resnet`: the design card's scale fed from real models.
 * torchvision ResNet-152 and ResNet-101 (random weights, seeds 0 and 1; Debian's
 * torch) exported to ONNX, extracted by `neurocorr extract` at their block
 * outputs on M seeded probes at 224 px, then scored:
 *  - `--conv channels` over every block output (pooled to the smallest maps);
 *  - `--conv units` over a subset that fits this machine (layer4's blocks),
 * each timed, and the full units job extrapolated from the measured rate to
 * N GPU workers. Writes the "ResNet-152 from a real model" section of
 * bench/RESULTS.md. `--quick`: ResNet-18 against ResNet-34 at 64 px on 8
 * probes, writes nothing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy } from '../shared/formats/index.js';
import { findTool, TOOLS } from '../test/setup/tools.js';
import { neurocorrTimed, runTimed } from './cli-proc.js';
import { replaceSection } from './results.js';

const ROOT = join(import.meta.dirname, '..', '..');
const quick = process.argv.includes('--quick');
const cacheArg = process.argv.indexOf('--cache');
const log = (line: string) => process.stderr.write(`bench:resnet: ${line}\n`);

const M = quick ? 8 : 64;
const SIDE = quick ? 64 : 224;
// Block outputs: the ReLU after each residual Add (bottleneck blocks call their ReLU three times, basic blocks twice).
const MODELS = quick
  ? [
      { arch: 'resnet34', seed: 0, blockRelu: 'relu_1' },
      { arch: 'resnet18', seed: 1, blockRelu: 'relu_1' },
    ]
  : [
      { arch: 'resnet152', seed: 0, blockRelu: 'relu_2' },
      { arch: 'resnet101', seed: 1, blockRelu: 'relu_2' },
    ];
const dir = cacheArg > 0 ? process.argv[cacheArg + 1]! : join(tmpdir(), 'neurocorr-bench', quick ? 'resnet-quick' : 'resnet');
mkdirSync(dir, { recursive: true });

const neurocorr = neurocorrTimed;

const python = findTool(TOOLS.find((t) => t.name === 'python3')!)?.path;
if (python === undefined)
  throw new Error('bench:resnet needs a python3 with torch and torchvision: sudo apt-get install -y python3-torch python3-torchvision python3-onnx');

/** Seeded standard-normal model inputs [M, 3, SIDE, SIDE]: already preprocessed, so no resizing filter enters. */
const probes = join(dir, 'probes.npy');
if (!existsSync(probes)) {
  let s = 12345;
  const uniform = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) + 1) / 4294967297;
  const data = new Float32Array(M * 3 * SIDE * SIDE);
  for (let i = 0; i < data.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    data[i] = r * Math.cos(t);
    data[i + 1] = r * Math.sin(t);
  }
  writeFileSync(probes, encodeNpy(data, [M, 3, SIDE, SIDE]));
}

const EXPORT = `
import sys, torch, torchvision
arch, seed, side, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.manual_seed(seed)
model = torchvision.models.get_model(arch, weights=None).eval()
torch.onnx.export(model, torch.zeros(1, 3, side, side), out, input_names=["input"], dynamic_axes={"input": {0: "N"}}, opset_version=13)
`;

interface Extracted {
  readonly arch: string;
  readonly dir: string;
  readonly exportSeconds: number | null;
  readonly extractSeconds: number;
  readonly layers: readonly { name: string; shape: readonly number[] }[];
}

const threads = cpus().length;
const blockLayers = (blockRelu: string) => `/\\/layer\\d+\\.\\d+\\/${blockRelu}\\/Relu_output_0$/`;
const extracted: Extracted[] = MODELS.map(({ arch, seed, blockRelu }) => {
  const onnx = join(dir, `${arch}.onnx`);
  let exportSeconds: number | null = null;
  if (!existsSync(onnx)) {
    exportSeconds = runTimed(python, ['-c', EXPORT, arch, String(seed), String(SIDE), onnx]).seconds;
    log(`${arch}: exported in ${exportSeconds.toFixed(1)} s`);
  }
  const out = join(dir, arch);
  const run = neurocorr(['extract', onnx, '--probes', probes, '--out', out, '--layers', blockLayers(blockRelu), '--force', '--no-progress']);
  log(`${arch}: extracted in ${run.seconds.toFixed(1)} s`);
  const layers = (JSON.parse(readFileSync(join(out, 'extract.json'), 'utf8')) as { layers: { name: string; shape: number[] }[] }).layers;
  return { arch, dir: out, exportSeconds, extractSeconds: run.seconds, layers };
});
const [f, g] = extracted as [Extracted, Extracted];
const neurons = (e: Extracted, keep: (name: string) => boolean = () => true) =>
  e.layers.filter((l) => keep(l.name)).reduce((sum, l) => sum + l.shape.reduce((a, b) => a * b, 1), 0);
const channels = (e: Extracted) => e.layers.reduce((sum, l) => sum + l.shape[0]!, 0);
const positions = Math.min(...extracted.flatMap((e) => e.layers.map((l) => l.shape[1]! * l.shape[2]!)));
const side = Math.sqrt(positions);

interface Scored {
  readonly seconds: number;
  readonly report: { scores: { paper: { symmetric: number } }; seconds: number; neurons: Record<string, number>; partial: boolean };
}
function score(name: string, args: readonly string[]): Scored {
  const out = join(dir, `${name}.json`);
  const run = neurocorr(['score', f.dir, g.dir, ...args, '--out', out, '--no-progress']);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Scored['report'];
  log(`${name}: ${run.seconds.toFixed(1)} s, paper symmetric ${report.scores.paper.symmetric.toFixed(4)}`);
  return { seconds: run.seconds, report };
}

const channelArgs = ['--conv', 'channels', '--spatial', 'min'];
const channelRun = score('channels', channelArgs);
// The units subset: the last stage's blocks (layer4), the largest that fits this machine in minutes.
const lastStage = (e: Extracted) => e.layers.map((l) => l.name).filter((n) => n.startsWith('/layer4/'));
const unitArgs = ['--conv', 'units', '--layers-f', lastStage(f).join(','), '--layers-g', lastStage(g).join(',')];
const unitRun = score('units-layer4', unitArgs);

const fUnits = neurons(f, (n) => n.startsWith('/layer4/'));
const gUnits = neurons(g, (n) => n.startsWith('/layer4/'));
const flops = (nf: number, ng: number, m: number) => 2 * m * nf * ng;
const rate = flops(fUnits, gUnits, M) / unitRun.seconds;
const fullF = neurons(f);
const fullG = neurons(g);
const GPU_FLOPS = 30e12;
const human = (s: number) =>
  s < 1 ? `${(s * 1000).toFixed(0)} ms` : s < 120 ? `${s.toFixed(0)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;

const lines = [
  '## ResNet-152 from a real model',
  '',
  `Produced by \`npm run bench:resnet\` on ${new Date().toISOString().slice(0, 10)}: ${threads} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Debian's torch for the export, \`neurocorr extract\` (ONNX Runtime) and \`neurocorr score\` (native kernel) for the rest; one run each, wall seconds of the whole process. Load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}.`,
  '',
  `torchvision ${f.arch} (F, seed 0) and ${g.arch} (G, seed 1), random weights, exported with \`torch.onnx.export\` (opset 13), extracted at every block output (the ReLU after each residual Add: ${f.layers.length} and ${g.layers.length} layers) on M = ${M} seeded standard-normal inputs at ${SIDE} px. Commands, with DIR the cache folder:`,
  '',
  '```sh',
  `neurocorr extract DIR/${f.arch}.onnx --probes DIR/probes.npy --out DIR/${f.arch} --layers '${blockLayers(MODELS[0]!.blockRelu)}'`,
  `neurocorr score DIR/${f.arch} DIR/${g.arch} ${channelArgs.join(' ')}`,
  `neurocorr score DIR/${f.arch} DIR/${g.arch} --conv units --layers-f <F's layer4 blocks> --layers-g <G's layer4 blocks>`,
  '```',
  '',
  '| step | F | G | seconds |',
  '| --- | --- | --- | --- |',
  ...extracted.filter((e) => e.exportSeconds !== null).map((e) => `| export to ONNX (PyTorch) | ${e.arch} | | ${e.exportSeconds!.toFixed(1)} |`),
  `| extract, ${M} probes | ${f.arch}: ${fullF.toLocaleString('en-US')} units | | ${f.extractSeconds.toFixed(1)} (${(M / f.extractSeconds).toFixed(1)} probes/s) |`,
  `| extract, ${M} probes | | ${g.arch}: ${fullG.toLocaleString('en-US')} units | ${g.extractSeconds.toFixed(1)} (${(M / g.extractSeconds).toFixed(1)} probes/s) |`,
  `| score, channels, every block output (${side} x ${side} maps, ${(M * positions).toLocaleString('en-US')} samples) | ${channels(f).toLocaleString('en-US')} channels | ${channels(g).toLocaleString('en-US')} channels | ${channelRun.seconds.toFixed(1)} |`,
  `| score, units, layer4's blocks (partial) | ${fUnits.toLocaleString('en-US')} units | ${gUnits.toLocaleString('en-US')} units | ${unitRun.seconds.toFixed(1)} |`,
  '',
  `Scores (paper mode, symmetric): channels ${channelRun.report.scores.paper.symmetric.toFixed(4)}, units over layer4 ${unitRun.report.scores.paper.symmetric.toFixed(4)} (random weights: a measure of the machinery, not of the models; layer4's blocks keep their positions in the whole models, ${f.layers.length - 3}–${f.layers.length - 1} against ${g.layers.length - 3}–${g.layers.length - 1}, so the paper's depth penalty divides their matches by the gap).`,
  '',
  `**Extrapolated: the full units job.** Every block output in units is ${fullF.toLocaleString('en-US')} x ${fullG.toLocaleString('en-US')} neurons: ${(fullF * fullG).toExponential(2)} pairs, 2·M·pairs = ${flops(fullF, fullG, M).toExponential(2)} flop at M = ${M}. The units run above sustained ${(rate / 1e9).toFixed(0)} GFLOP/s on this machine, whole process (reading and standardizing included). GPU workers at ${GPU_FLOPS / 1e12} TFLOP/s each on the fused tile, with 5% protocol cost (the "On paper" assumptions under Cluster):`,
  '',
  '| M | this machine | 1 GPU | 4 GPUs | 16 GPUs | 64 GPUs |',
  '| --- | --- | --- | --- | --- | --- |',
  ...[M, 1000].map((m) => {
    const work = flops(fullF, fullG, m);
    const gpus = [1, 4, 16, 64].map((n) => human((work / (n * GPU_FLOPS)) * 1.05));
    return `| ${m} | ${human(work / rate)} | ${gpus.join(' | ')} |`;
  }),
  '',
  `The activations the cluster reads are ${(((fullF + fullG) * M * 4) / 2 ** 30).toFixed(1)} GiB at M = ${M} (float32): the standardized shard sets (\`neurocorr prepare\`) go to every node once, and each worker holds only the shards of its tiles.`,
  '',
];
const text = lines.join('\n');
process.stdout.write(`${text}\n`);
if (!quick) replaceSection(join(ROOT, 'bench', 'RESULTS.md'), '## ResNet-152 from a real model', text);
