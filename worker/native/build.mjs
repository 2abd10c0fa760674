// Builds the native addon at install time, offline: node-gyp is pointed at
// the headers of the Node that is running (its install prefix), so it never
// downloads them. A failed build leaves the tfjs and reference kernels in
// place and says so; NEUROCORR_REQUIRE_NATIVE=1 (CI) makes it fatal.
//
// An addon already built from the same sources for the same Node is kept as
// it is: `npx neurocorr` links the project into the npx cache and reruns this
// script, and a rebuild would delete the addon under any process using it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
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

const require = createRequire(import.meta.url);
const addon = join(here, 'build', 'Release', 'neurocorr.node');
const stampFile = join(here, 'build', 'neurocorr.stamp');
const inputs = [
  'binding.gyp',
  'build.mjs',
  ...readdirSync(join(here, 'src'))
    .sort()
    .map((f) => join('src', f)),
];
const hash = createHash('sha256');
for (const f of inputs) hash.update(`${f}\0`).update(readFileSync(join(here, f)));
hash.update(`${process.version} ${process.arch} ${nodedir} ${require('node-gyp/package.json').version}`);
const stamp = hash.digest('hex');

if (existsSync(addon) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
  process.stdout.write(`neurocorr: native addon up to date (${addon})\n`);
  process.exit(0);
}
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [gyp, 'rebuild', `--directory=${here}`, `--nodedir=${nodedir}`, '--jobs=max'], { stdio: 'inherit' });
if (result.status !== 0) fail(`node-gyp exited with ${result.status ?? result.signal}; see the compiler output above`);
writeFileSync(`${stampFile}.tmp`, stamp);
renameSync(`${stampFile}.tmp`, stampFile);
