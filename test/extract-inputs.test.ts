/**
 * `neurocorr extract` on inputs made to exhaust the machine (issue 23): a
 * Keras layer graph tfjs would loop on for ever, a .idx.gz that inflates far
 * past its header, a weight file listed thousands of times, absurd declared
 * shapes, and other image formats named .png. Each exits 2 at once, naming
 * the file (and the layer), without a stack, and writes nothing.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'neurocorr.js');
const MODEL = join(ROOT, 'examples', 'tfjs', 'a');
const PROBES = join(ROOT, 'examples', 'tfjs', 'probes');
const root = mkdtempSync(join(tmpdir(), 'nc-extract-inputs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Prints the child's peak resident memory (bytes) on stderr as it exits. */
const PEAK_RSS = `data:text/javascript,process.on('exit',()=>process.stderr.write('peak-rss '+process.resourceUsage().maxRSS*1024+'\\n'))`;

/** The CLI, killed after 30 s: a hang fails the test instead of stalling the run. */
function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', PEAK_RSS, BIN, ...args], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
  const peak = Number(/peak-rss (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.replace(/peak-rss \d+\n/, ''), peak };
}

let count = 0;
const fresh = (name: string): string => join(root, `${count++}-${name}`);

/** A refusal: exit 2 (not killed), one error line naming `file` and matching `why`, with a fix and no stack. */
function refused(r: ReturnType<typeof cli>, file: string, why: RegExp): void {
  expect(r.signal, `killed: the CLI hung (${r.stderr})`).toBeNull();
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toContain(`${file}: `);
  expect(r.stderr).toMatch(why);
  expect(r.stderr).toMatch(/Fix: /);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}

interface KerasLayer {
  name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[][][];
}
interface ModelJson {
  modelTopology: { config: { layers: KerasLayer[] } };
  weightsManifest: { paths: string[]; weights: { name: string }[] }[];
}

/** A copy of examples/tfjs/a with its model.json edited. */
function editedModel(edit: (json: ModelJson) => void): string {
  const dir = fresh('model');
  cpSync(MODEL, dir, { recursive: true });
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelJson;
  edit(json);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
  return dir;
}

const layer = (json: ModelJson, name: string): KerasLayer => json.modelTopology.config.layers.find((l) => l.name === name)!;

describe('Keras layer graphs tfjs could never build', () => {
  it.each([
    ['a cycle', (j: ModelJson) => (layer(j, 'conv1').inbound_nodes = [[['relu1', 0, 0, {}]]]), /its layers form a cycle: "conv1" -> "relu1" -> "conv1"/],
    ['a layer reading itself', (j: ModelJson) => (layer(j, 'relu1').inbound_nodes = [[['relu1', 0, 0, {}]]]), /cycle: "relu1" -> "relu1"/],
    [
      'a layer that is not there',
      (j: ModelJson) => (layer(j, 'conv2').inbound_nodes = [[['nope', 0, 0, {}]]]),
      /layer "conv2" reads layer "nope", which the model does not have/,
    ],
    [
      'a node never made',
      (j: ModelJson) => (layer(j, 'conv2').inbound_nodes = [[['relu1', 5, 0, {}]]]),
      /layer "conv2" reads node 5 of layer "relu1", which is called only 1 time/,
    ],
  ])('%s: --list-layers and extract exit 2 at once, naming the file and the layer', (_what, edit, why) => {
    const dir = editedModel(edit);
    refused(cli(['extract', dir, '--list-layers']), join(dir, 'model.json'), why);
    const out = fresh('out');
    refused(cli(['extract', dir, '--probes', PROBES, '--preprocess', 'tf', '--out', out]), join(dir, 'model.json'), why);
    expect(existsSync(out)).toBe(false);
  });
});

describe('weight manifests', () => {
  it('a weight file listed 10,000 times, or a weight named twice, is refused before any weight is read', () => {
    const many = editedModel((j) => (j.weightsManifest[0]!.paths = Array.from({ length: 10_000 }, () => 'weights.bin')));
    refused(cli(['extract', many, '--list-layers']), join(many, 'model.json'), /lists the weight file "weights\.bin" more than once/);
    const twice = editedModel((j) => j.weightsManifest[0]!.weights.push(j.weightsManifest[0]!.weights[0]!));
    refused(cli(['extract', twice, '--list-layers']), join(twice, 'model.json'), /lists the weight "conv1\/kernel" more than once/);
  });
});

describe('declared shapes', () => {
  it('an input of 100,000 x 100,000 pixels is refused (exit 2, naming the model and the input), listed or extracted', () => {
    const dir = editedModel((j) => (layer(j, 'pixels').config['batch_input_shape'] = [null, 100_000, 100_000, 3]));
    const why = /its input "pixels" has shape \[100000, 100000, 3\] per probe: 30000000000 values, over extract's limit/;
    refused(cli(['extract', dir, '--list-layers']), join(dir, 'model.json'), why);
    refused(cli(['extract', dir, '--probes', PROBES, '--preprocess', 'tf', '--out', fresh('out')]), join(dir, 'model.json'), why);
  });
});

describe('IDX probes', () => {
  /** A gzip of `members` members: the header, then 1 MiB of zeros per member (gunzip joins them). */
  function idxGz(dims: number[], mib: number): string {
    const header = Buffer.alloc(4 + 4 * dims.length);
    header.writeUInt8(0x08, 2);
    header.writeUInt8(dims.length, 3);
    dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    const zeros = gzipSync(Buffer.alloc(2 ** 20));
    const file = fresh('probes.idx.gz');
    writeFileSync(file, Buffer.concat([gzipSync(header), ...Array.from({ length: mib }, () => zeros)]));
    return file;
  }

  it('a 1 MB .idx.gz that inflates to 1 GiB past its header is refused early, without holding what it inflates', () => {
    const file = idxGz([1, 16, 16, 3], 1024);
    const r = cli(['extract', MODEL, '--probes', file, '--preprocess', 'tf', '--out', fresh('out')]);
    refused(r, file, /inflates to more than the 768 bytes of images its header \[1, 16, 16, 3\] declares/);
    expect(r.peak).toBeLessThan(600 * 2 ** 20);
  });

  it('a header that declares more than extract reads is refused before inflating', () => {
    const file = idxGz([2 ** 32 - 1, 256, 256], 1);
    refused(cli(['extract', MODEL, '--probes', file, '--preprocess', 'tf', '--out', fresh('out')]), file, /declares \d+ bytes of images, over the 4294967296/);
  });
});

describe('image probes', () => {
  it('GIF and SVG files named .png are refused, naming the file', async () => {
    const gif = fresh('gif');
    mkdirSync(gif);
    cpSync(join(PROBES, 'p00.png'), join(gif, 'p00.png'));
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#336699' } })
      .gif()
      .toFile(join(gif, 'p01.png'));
    refused(
      cli(['extract', MODEL, '--probes', gif, '--preprocess', 'tf', '--out', fresh('out')]),
      join(gif, 'p01.png'),
      /not a readable JPEG or PNG image \(it holds a GIF image\)/,
    );
    const svg = fresh('svg');
    mkdirSync(svg);
    writeFileSync(join(svg, 'p00.png'), '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16" fill="red"/></svg>');
    refused(cli(['extract', MODEL, '--probes', svg, '--preprocess', 'tf', '--out', fresh('out')]), join(svg, 'p00.png'), /it holds XML or SVG text/);
  });
});
