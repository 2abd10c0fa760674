// Builds the native addon at install time, offline: node-gyp is pointed at
// the headers of the Node that is running (its install prefix), so it never
// downloads them. A failed build leaves the tfjs and reference kernels in
// place and says so; NEUROCORR_REQUIRE_NATIVE=1 (CI) makes it fatal.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nodedir = dirname(dirname(process.execPath));
const required = process.env.NEUROCORR_REQUIRE_NATIVE === '1';

function fail(message) {
  process.stderr.write(`neurocorr: native addon not built: ${message}\n`);
  process.stderr.write(`neurocorr: the tfjs and reference kernels remain available${required ? '' : ' (set NEUROCORR_REQUIRE_NATIVE=1 to make this fatal)'}\n`);
  process.exit(required ? 1 : 0);
}

if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  fail(`no Node headers under ${nodedir}/include/node; install the Node development headers for ${process.version}`);
}
const gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [gyp, 'rebuild', `--directory=${here}`, `--nodedir=${nodedir}`, '--jobs=max'], { stdio: 'inherit' });
if (result.status !== 0) fail(`node-gyp exited with ${result.status ?? result.signal}; see the compiler output above`);
