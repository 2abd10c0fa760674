/**
 * `npm run bench:scale`: two synthetic ResNet-18-shaped models of about 1e6
 * neurons each at M = 32, prepared into shard sets and scored exactly with a
 * --memory budget at most a quarter of one model's size. Records peak RSS,
 * wall time, pairs/s and the I/O share, then extrapolates to ResNet-152.
 * Writes the "Scale" section of bench/RESULTS.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { architectureLayers, neuronCount } from '../shared/architectures.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist', 'coordinator', 'cli.js');
const quick = process.argv.includes('--quick');
const SCALE = quick ? 0.25 : 0.8;
const PROBES = 32;
const MEMORY = quick ? '16MiB' : '30MiB';
const WORK = join(tmpdir(), `neurocorr-scale-${SCALE}`);
const log = (line: string) => process.stderr.write(`${line}\n`);

const MEMORY_NOTE =
  "`--memory` bounds the cache of decoded shards (every cached buffer has the largest shard's capacity, so evicted ones are reused and worker threads never pin stale ones). The rest of `score`'s data memory is per-neuron reduction and report state, O(N_F + N_G) by design: about 60 bytes per neuron and direction, some 120 MB for these 2 x 1e6 neurons; plus each worker thread's tile working set. The I/O share is shard reads, sha256 (first load only) and Arrow decoding on the main thread, overlapped with the tiles already queued; each F block row re-reads G, as G streams past.";
  const start = text.indexOf('## Scale (out of core)');
  const end = start < 0 ? -1 : text.indexOf('\n## ', start + 5);
  const updated = start < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, start)}${section}${end < 0 ? '' : text.slice(end + 1)}`;
  writeFileSync(out, updated);
  log(`wrote the Scale section of ${out}`);
}

main();
