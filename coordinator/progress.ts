/**
 * Progress on stderr: a redrawn bar on a TTY, plain periodic lines otherwise
 * (every `intervalMs`, default 5000 ms), so logs stay readable.
 */
export interface Progress {
  update(done: number): void;
  finish(): void;
}

export interface ProgressOptions {
  readonly total: number;
  readonly pairsPerUnit: number;
  readonly label: string;
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean };
  readonly enabled?: boolean;
  /** Milliseconds between plain lines off a terminal (default 5000). */
  readonly intervalMs?: number;
  /** More to say on each line (a zoo's model pairs done). */
  readonly detail?: () => string;
  /** The rate as shown (default: pairs a second, `1.23e+6 pairs/s`). */
  readonly rate?: (perSecond: number) => string;
}

const NOOP: Progress = { update: () => undefined, finish: () => undefined };

const pairRate = (perSecond: number): string => `${perSecond.toExponential(2)} pairs/s`;

export function createProgress({
  total,
  pairsPerUnit,
  label,
  stream = process.stderr,
  enabled = true,
  intervalMs = 5000,
  detail,
  rate: showRate = pairRate,
}: ProgressOptions): Progress {
  if (!enabled || total === 0) return NOOP;
  const tty = stream.isTTY === true;
  const interval = tty ? 100 : intervalMs;
  const started = performance.now();
  let last = started;
  let current = 0;

  const line = (): string => {
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? (current * pairsPerUnit) / seconds : 0;
    const eta = current > 0 ? (seconds * (total - current)) / current : Number.NaN;
    const pct = Math.floor((100 * current) / total);
    const more = detail ? `${detail()}  ` : '';
    const stats = `${more}${current}/${total} ${label} ${pct}%  ${showRate(rate)}  ${Number.isFinite(eta) ? `ETA ${eta.toFixed(0)}s` : ''}`;
    if (!tty) return `progress: ${stats}\n`;
    const width = 30;
    const filled = Math.round((width * current) / total);
    return `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${stats}\x1b[K`;
  };

  return {
    update(done: number) {
      current = done;
      const now = performance.now();
      if (now - last >= interval) {
        last = now;
        stream.write(line());
      }
    },
    finish() {
      if (tty) stream.write(`${line()}\n`);
    },
  };
}
