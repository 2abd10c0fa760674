/**
 * A lane's watchdog. A lane extends its tile's lease (JetStream's
 * `working()`) only while it makes progress: each step (reading a model's
 * layer, computing the tile, publishing a result) may take up to 10x what it
 * is expected to at this worker's measured rate, and never less than a
 * floor. Past that, the lane lets the lease lapse, so JetStream hands the
 * tile to another worker, and counts as wedged until its step returns.
 */

/** A step may take this many times its expected time before the lane gives its tile up. */
export const SLACK = 10;

export class LaneWatch {
  private last = performance.now();
  private boundMs: number;

  constructor(private readonly floorMs: number) {
    this.boundMs = floorMs;
  }

  /** A step is done; the next one is expected to take `expectedMs` (0: unknown, the floor applies). */
  progress(expectedMs = 0): void {
    this.last = performance.now();
    this.boundMs = Math.max(this.floorMs, SLACK * expectedMs);
  }

  /** Whether the lane may still extend its tile's lease. */
  get alive(): boolean {
    return performance.now() - this.last <= this.boundMs;
  }

  /** Seconds since the last step, and the bound, for the log line that says why the lane gave up. */
  get state(): { readonly idleSeconds: number; readonly boundSeconds: number } {
    return { idleSeconds: (performance.now() - this.last) / 1000, boundSeconds: this.boundMs / 1000 };
  }
}

/**
 * Seconds a tile takes per pair-probe on this worker, from the tiles it
 * computed (a moving average), so a tile's expected time is its pairs x M
 * times this.
 */
export class TileRate {
  private secondsPerUnit: number | null = null;

  /** A tile of `units` pair-probes took `seconds`. */
  record(units: number, seconds: number): void {
    if (units <= 0 || !(seconds >= 0)) return;
    const sample = seconds / units;
    this.secondsPerUnit = this.secondsPerUnit === null ? sample : 0.8 * this.secondsPerUnit + 0.2 * sample;
  }

  /** Milliseconds expected for `units` pair-probes; 0 before any tile was measured. */
  expectedMs(units: number): number {
    return this.secondsPerUnit === null ? 0 : units * this.secondsPerUnit * 1000;
  }
}
