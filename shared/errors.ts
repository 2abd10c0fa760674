/**
 * Typed errors. Every error neurocorr raises on purpose carries a stable
 * `code`, an optional `cause`, and the exit code the CLI maps it to:
 *
 * | exit | category                                                    | classes                              |
 * | ---- | ----------------------------------------------------------- | ------------------------------------ |
 * | 1    | internal failure (a bug, or the machine)                    | InternalError, anything untyped      |
 * | 2    | bad input or usage: the message names the file or option    | UsageError, InputError, KernelUnavailableError |
 * | 3    | a service is unreachable or failing (NATS, Redis, objects)  | ServiceError                         |
 * | 4    | a cluster job failed: a tile failed on every delivery, or   | JobFailedError                       |
 * |      | another coordinator took the job's lease                    |                                      |
 * | 5    | a cluster job stalled: no tile finished for the stall       | JobStalledError                      |
 * |      | timeout (its state is kept; a rerun resumes it)             |                                      |
 * | 6    | the job is leased: another coordinator is running it        | JobLeasedError                       |
 * | 7    | a job's stored state in Redis cannot be used (corrupt, or   | CorruptStateError                    |
 * |      | written by another version): the message names the key     |                                      |
 *
 * Messages name library options as they are spelled in the options objects
 * (`probes`, `null.sample`); the CLI re-renders them with its flag names
 * (`--probes`, `--null-sample`) through `describe`.
 *
 * An options object the library cannot use is refused in piscina's manner, with
 * a TypeError (wrong type) or RangeError (out of range): OptionTypeError and
 * OptionRangeError, which also carry the option's path, so the CLI maps them
 * onto exit 2 naming the flag.
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
  | 'E_INPUT_LAYOUT'
  | 'E_LAYER_MAP'
  | 'E_KERNEL_UNAVAILABLE'
  | 'E_SERVICE'
  | 'E_TILE_FAILED'
  | 'E_LEASE_LOST'
  | 'E_STALLED'
  | 'E_JOB_LEASED'
  | 'E_STATE_CORRUPT'
  | 'E_INTERNAL';

export type ExitCode = 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** How an option is called where the message is shown: `probes` in the library, `--probes` in the CLI. */
export type OptionNamer = (option: string) => string;

/** A message that names options, rendered for the library or for the CLI. */
export type Message = string | ((name: OptionNamer) => string);

const asIs: OptionNamer = (option) => option;

export class NeurocorrError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  private readonly template: Message;

  constructor(code: ErrorCode, message: Message, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(typeof message === 'string' ? message : message(asIs), options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.template = message;
  }

  /** The message with every option named by `name`. */
  describe(name: OptionNamer): string {
    return typeof this.template === 'string' ? this.template : this.template(name);
  }
}

/** Bad usage or option values. Exit 2. */
export class UsageError extends NeurocorrError {
  constructor(message: Message, options?: { cause?: unknown }) {
    super('E_USAGE', message, 2, options);
  }
}

/** A problem with an input file the user can fix. Exit 2. */
export class InputError extends NeurocorrError {
  readonly file: string;

  constructor(code: ErrorCode, file: string, problem: string, fix: Message, options?: { cause?: unknown }) {
    super(code, (name) => `${file}: ${problem}. Fix: ${typeof fix === 'string' ? fix : fix(name)}`, 2, options);
    this.file = file;
  }
}

/** A requested kernel could not be loaded. Exit 2: the user asked for it. */
export class KernelUnavailableError extends NeurocorrError {
  constructor(message: Message, options?: { cause?: unknown }) {
    super('E_KERNEL_UNAVAILABLE', message, 2, options);
  }
}

/** A service (NATS, Redis, the object store) is unreachable, or kept failing past its retries. Exit 3. */
export class ServiceError extends NeurocorrError {
  constructor(
    readonly service: 'NATS' | 'Redis' | 'object store',
    message: Message,
    options?: { cause?: unknown },
  ) {
    super('E_SERVICE', message, 3, options);
  }
}

/** A cluster job failed: a tile failed on every delivery (E_TILE_FAILED), or the job's lease was lost (E_LEASE_LOST). Exit 4. */
export class JobFailedError extends NeurocorrError {
  constructor(code: 'E_TILE_FAILED' | 'E_LEASE_LOST', message: Message, options?: { cause?: unknown }) {
    super(code, message, 4, options);
  }
}

/** A cluster job made no progress for its stall timeout. Exit 5: a batch system may retry it later, and the rerun resumes. */
export class JobStalledError extends NeurocorrError {
  constructor(message: Message, options?: { cause?: unknown }) {
    super('E_STALLED', message, 5, options);
  }
}

/** Another coordinator holds the job's lease: it is running the job now. Exit 6: wait for it, or use another job name. */
export class JobLeasedError extends NeurocorrError {
  constructor(
    readonly job: string,
    message: Message,
    options?: { cause?: unknown },
  ) {
    super('E_JOB_LEASED', message, 6, options);
  }
}

/** A job's stored state (a Redis key) cannot be used: not what this version wrote there. Exit 7: clear the job, or use another name. */
export class CorruptStateError extends NeurocorrError {
  constructor(
    readonly job: string,
    readonly key: string,
    message: Message,
    options?: { cause?: unknown },
  ) {
    super('E_STATE_CORRUPT', message, 7, options);
  }
}

/** A bug or environment failure. Exit 1. */
export class InternalError extends NeurocorrError {
  constructor(message: Message, options?: { cause?: unknown }) {
    super('E_INTERNAL', message, 1, options);
  }
}

/** How option errors are told apart from other TypeErrors and RangeErrors (a bug in the library). */
export type OptionErrorCode = 'E_OPTION_TYPE' | 'E_OPTION_RANGE';

/** `options.<option> <problem>` in the library; with the CLI's namer, the flag's name. */
const optionText = (option: string, problem: string, name: OptionNamer = (o) => `options.${o}`): string =>
  `${option === '' ? 'options' : name(option)} ${problem}`;

/** An option of the wrong type: `options.<option> <problem>` in the library, the flag's name in the CLI. */
export class OptionTypeError extends TypeError {
  readonly code: OptionErrorCode = 'E_OPTION_TYPE';

  constructor(
    readonly option: string,
    readonly problem: string,
  ) {
    super(optionText(option, problem));
  }

  describe(name: OptionNamer): string {
    return optionText(this.option, this.problem, name);
  }
}

/** An option out of its range (or not one of its choices). */
export class OptionRangeError extends RangeError {
  readonly code: OptionErrorCode = 'E_OPTION_RANGE';

  constructor(
    readonly option: string,
    readonly problem: string,
  ) {
    super(optionText(option, problem));
  }

  describe(name: OptionNamer): string {
    return optionText(this.option, this.problem, name);
  }
}

export const isOptionError = (err: unknown): err is OptionTypeError | OptionRangeError => err instanceof OptionTypeError || err instanceof OptionRangeError;
