/** vitest globalSetup: provisions the programs the tests need before any test runs (see tools.ts and helm.ts). */
import { HelmProvisionError, provisionHelm } from './helm.js';
import { provision, ProvisionError } from './tools.js';

export default function setup(): void {
  try {
    provision();
    provisionHelm();
  } catch (err) {
    if (!(err instanceof ProvisionError || err instanceof HelmProvisionError)) throw err;
    // One message and no stack: the run stops here, before any test.
    process.stderr.write(`\nneurocorr tests: ${err.message}\n${err.cause instanceof Error ? `${err.cause.message}\n` : ''}`);
    process.exit(1);
  }
}
