// Builds better-sqlite3 (the zoo's results store) at install time, offline.
//
// Its own install script (`prebuild-install || node-gyp rebuild`) downloads
// a prebuilt binary or Node's headers, and both fail offline. npm runs every
// dependency's install script before the root's (even its preinstall), so
// nothing of ours can run first and point it at local headers; instead
// package.json `allowScripts` denies its script (npm >= 11.18 honours that),
// and this script, run from the root's `install`, builds it the way
// worker/native/build.mjs builds our addon: node-gyp against the headers of
// the Node that is running (its install prefix), never a download.
//
// A copy that loads in this Node is kept as it is (a rebuild would delete it
// under any process using it). A failed build leaves every command but the
// zoo usable and says so; NEUROCORR_REQUIRE_NATIVE=1 (CI) makes it fatal.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const nodedir = dirname(dirname(process.execPath));
const required = process.env.NEUROCORR_REQUIRE_NATIVE === '1';
const require = createRequire(import.meta.url);

function fail(message) {
  process.stderr.write(`neurocorr: better-sqlite3 not built: ${message}\n`);
  process.stderr.write(
    `neurocorr: \`neurocorr zoo\` (its results store) is unavailable; every other command works${required ? '' : ' (set NEUROCORR_REQUIRE_NATIVE=1 to make this fatal)'}\n`,
  );
  process.exit(required ? 1 : 0);
}

let dir;
try {
  dir = dirname(require.resolve('better-sqlite3/package.json'));
} catch {
  fail(
    'it is not in node_modules. npm older than 11.18 runs its own install script, which needs a network to fetch a binary or Node headers, and drops it when that fails; use npm 11.18 or later, or install with `npm_config_nodedir=<the prefix of your Node> npm ci`',
  );
}

const loads = () => spawnSync(process.execPath, ['-e', "new (require(process.argv[1]))(':memory:').close()", dir], { stdio: 'ignore' }).status === 0;

if (existsSync(join(dir, 'build', 'Release', 'better_sqlite3.node')) && loads()) {
  process.stdout.write(`neurocorr: better-sqlite3 up to date (${dir})\n`);
  process.exit(0);
}
if (!existsSync(join(nodedir, 'include', 'node', 'node.h'))) {
  fail(`no Node headers under ${nodedir}/include/node; install the Node development headers for ${process.version}`);
}
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
process.stdout.write(`neurocorr: building better-sqlite3 from source against ${nodedir}/include/node (about a minute)\n`);
const result = spawnSync(process.execPath, [gyp, 'rebuild', '--release', `--directory=${dir}`, `--nodedir=${nodedir}`, '--jobs=max'], { stdio: 'inherit' });
if (result.status !== 0) fail(`node-gyp exited with ${result.status ?? result.signal}; see the compiler output above`);
if (!loads()) fail(`the build in ${dir} does not load in ${process.version}`);
