/** The test set-up's provisioning (test/setup/tools.ts): found, too old, missing and not installable, and the whole run stopping with one message. */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareVersions, findTool, provision, ProvisionError, searchDirs, TOOLS } from './setup/tools.js';

const scratch = mkdtempSync(join(tmpdir(), 'provision-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A folder holding fake executables that print the given version lines. */
function fakeBin(name: string, tools: Record<string, string>): string {
  const dir = join(scratch, name);
  spawnSync('mkdir', ['-p', dir]);
  for (const [tool, output] of Object.entries(tools)) {
    const path = join(dir, tool);
    writeFileSync(path, `#!/bin/sh\necho '${output}'\n`);
    chmodSync(path, 0o755);
  }
  return dir;
}

describe('provisioning', () => {
  it('finds the real servers, new enough', () => {
    for (const tool of TOOLS) {
      const found = findTool(tool);
      expect(found, tool.name).toBeDefined();
      expect(compareVersions(found!.version!, tool.minVersion)).toBeGreaterThanOrEqual(0);
    }
  });

  it('searches the sbin folders after PATH, and NEUROCORR_TOOLS_PATH replaces the list', () => {
    expect(searchDirs({ PATH: '/a:/b' })).toEqual(['/a', '/b', '/usr/local/sbin', '/usr/sbin', '/sbin']);
    expect(searchDirs({ PATH: '/a', NEUROCORR_TOOLS_PATH: '/x:/y' })).toEqual(['/x', '/y']);
  });

  it('uses a copy found on the search path as it is', () => {
    const dir = fakeBin('new', {
      'nats-server': 'nats-server: v2.10.3',
      'redis-server': 'Redis server v=7.2.1 sha=0',
      chromium: 'Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)',
      python3: 'torch 1.13.0a0',
    });
    const paths = provision({ dirs: [dir], install: false });
    expect(paths.get('nats-server')).toBe(join(dir, 'nats-server'));
    expect(paths.get('redis-server')).toBe(join(dir, 'redis-server'));
    expect(paths.get('chromium')).toBe(join(dir, 'chromium'));
    expect(paths.get('python3')).toBe(join(dir, 'python3'));
  });

  it('passes over a python3 that cannot import PyTorch for one that can', () => {
    const bare = fakeBin('pyenv', { python3: 'Traceback (most recent call last): ModuleNotFoundError: No module named torch' });
    const debian = fakeBin('debian', { python3: 'torch 1.13.0a0' });
    const python = TOOLS.find((t) => t.name === 'python3')!;
    expect(findTool(python, { dirs: [bare, debian] })).toEqual({ path: join(debian, 'python3'), version: '1.13.0' });
    expect(findTool(python, { dirs: [bare] })).toBeUndefined();
  });

  it('stops with one message listing exactly what is missing, and how to install it, when installing is not allowed', () => {
    const dir = fakeBin('old', { 'nats-server': 'nats-server: v2.1.0', chromium: 'Chromium 90.0.4430.212' });
    let error: unknown;
    try {
      provision({ dirs: [dir], install: false });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProvisionError);
    const { message, tools } = error as ProvisionError;
    expect(tools).toEqual(['nats-server', 'redis-server', 'chromium', 'python3']);
    expect(message).toContain(`nats-server >= 2.9.0 (NATS with JetStream, for the cluster tests): ${join(dir, 'nats-server')} is 2.1.0`);
    expect(message).toContain('redis-server >= 6.0.0 (Redis, for the cluster job state): not found');
    expect(message).toContain(`chromium >= 120.0.0 (a headless browser, for the zoo report.html tests): ${join(dir, 'chromium')} is 90.0.4430`);
    expect(message).toContain('python3 >= 1.13.0 (PyTorch, torchvision, ONNX and Pillow, for the PyTorch tests (examples/pytorch)): not found');
    expect(message).toContain('apt-get install -y nats-server redis-server chromium python3-torch python3-torchvision python3-onnx python3-pil');
    expect(message).toContain('brew install nats-server redis chromium pytorch torchvision onnx pillow');
    expect(message).toContain('NEUROCORR_INSTALL=0');
  });

  it('lists only what is missing', () => {
    const dir = fakeBin('half', { 'redis-server': 'Redis server v=6.2.0' });
    expect(() => provision({ dirs: [dir], install: false })).toThrow(/^(?![\s\S]*redis-server >=)[\s\S]*nats-server >= 2\.9\.0/);
  });

  it('a whole test run stops before any test, with the one message, when the servers are hidden and installing is off', () => {
    const empty = fakeBin('empty', {});
    const run = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', 'test/reduce.test.ts'], {
      encoding: 'utf8',
      env: { ...process.env, NEUROCORR_TOOLS_PATH: empty, NEUROCORR_INSTALL: '0', NO_COLOR: '1', FORCE_COLOR: '0' },
      timeout: 60_000,
    });
    const output = `${run.stdout}${run.stderr}`;
    expect(run.status, output).toBe(1);
    expect(output.match(/the tests need programs that npm cannot install/g)).toHaveLength(1);
    expect(output).toContain('nats-server >= 2.9.0');
    expect(output).toContain('redis-server >= 6.0.0');
    expect(output).toContain('chromium >= 120.0.0');
    expect(output).toContain('python3 >= 1.13.0');
    expect(output).toContain('sudo apt-get update && sudo apt-get install -y nats-server redis-server chromium python3-torch');
    // No test ran: neither vitest's summary nor the project's closing line.
    expect(output).not.toMatch(/Tests: \d+ passed/);
    expect(output).not.toMatch(/Test Files/);
  });
});
