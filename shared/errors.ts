/**
 * Typed errors. Every error the CLI can surface carries a stable `code`, an
 * optional `cause`, and the exit code the CLI maps it to: 2 for anything the
 * user can fix (bad input, bad usage), 1 for internal failures.
 */

export type ErrorCode =
  | 'E_USAGE'
  | 'E_INPUT_MISSING'
  | 'E_INPUT_FORMAT'
  | 'E_INPUT_DTYPE'
  | 'E_INPUT_TRUNCATED'
  | 'E_INPUT_VALUES'
  | 'E_INPUT_SHAPE'
  | 'E_INPUT_MISMATCH'
  | 'E_LAYER_MAP'
  | 'E_KERNEL_UNAVAILABLE'
  | 'E_TILE_FAILED'
  | 'E_INTERNAL';

export class NeurocorrError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: 1 | 2;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = code === 'E_INTERNAL' ? 1 : 2;
  }
}

/** Bad command-line usage or option values. Exit 2. */
export class UsageError extends NeurocorrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_USAGE', message, options);
  }
}

/** A problem with an input file the user can fix. Exit 2. */
export class InputError extends NeurocorrError {
  readonly file: string;

  constructor(code: ErrorCode, file: string, problem: string, fix: string, options?: { cause?: unknown }) {
    super(code, `${file}: ${problem}. Fix: ${fix}`, options);
    this.file = file;
  }
}

/** A requested kernel could not be loaded. Exit 2: the user asked for it. */
export class KernelUnavailableError extends NeurocorrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_KERNEL_UNAVAILABLE', message, options);
  }
}

/** A bug or environment failure. Exit 1. */
export class InternalError extends NeurocorrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_INTERNAL', message, options);
  }
}
