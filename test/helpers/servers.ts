/** Real nats-server / redis-server processes for integration tests: OS-picked ports, fresh temp dirs, cleanup on failure. */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { locateTool } from '../setup/tools.js';

export interface RestartOptions {
  /** SIGKILL instead of SIGTERM: no clean shutdown. */
  readonly kill?: boolean;
  /** nats-server: start again with an empty JetStream store (every stream, consumer and bucket lost). */
  readonly wipeStore?: boolean;
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  stop(): Promise<void>;
  /** Stops (SIGTERM, wait for exit) and starts again on the SAME port with the SAME JetStream store dir (unless wiped). */
  restart(options?: RestartOptions): Promise<void>;
  /** Sends a signal to the running server (SIGSTOP and SIGCONT pause and resume it). */
  signal(signal: NodeJS.Signals): void;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Stops and starts again on the same port (data is lost: no persistence). */
  restart(options?: RestartOptions): Promise<void>;
  signal(signal: NodeJS.Signals): void;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const KILL_GRACE_MS = 5_000;
const POLL_MS = 25;
const MAX_TRIES = 5;
const OUTPUT_TAIL = 4096;

/** A spawned server process with the tail of its stdout+stderr kept for error messages. */
class Child {
  readonly exited: Promise<void>;
  private tail = '';

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    const collect = (chunk: string) => {
      this.tail = (this.tail + chunk).slice(-OUTPUT_TAIL);
    };
    proc.stdout?.setEncoding('utf8').on('data', collect);
    proc.stderr?.setEncoding('utf8').on('data', collect);
    proc.on('error', (err) => collect(`\n[${name}: ${err.message}]\n`));
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
  }

  static async spawn(name: string, args: string[], env: Record<string, string> = {}): Promise<Child> {
    registerExitHandler();
    const proc = spawn(locateTool(name), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', resolve);
      proc.once('error', reject);
    });
    const child = new Child(name, proc);
    liveChildren.add(child);
    void child.exited.then(() => liveChildren.delete(child));
    return child;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  describe(): string {
    const status = this.running ? 'running' : `exited (code ${this.proc.exitCode}, signal ${this.proc.signalCode})`;
    return `${this.name} pid ${this.pid} ${status}; output:\n${this.tail || '(none)'}`;
  }

  /** SIGTERM (SIGCONT first, in case it is paused), then SIGKILL if still alive after KILL_GRACE_MS; `kill` sends SIGKILL at once. */
  async stop(kill = false): Promise<void> {
    if (!this.running) return;
    if (kill) {
      this.proc.kill('SIGKILL');
      await this.exited;
      return;
    }
    this.proc.kill('SIGCONT');
    this.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([this.exited.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, KILL_GRACE_MS, true)))]);
    clearTimeout(timer);
    if (timedOut) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

const liveChildren = new Set<Child>();
const liveServers = new Set<Lifecycle>();
const liveDirs = new Set<string>();
let exitHandlerRegistered = false;

function registerExitHandler(): void {
  if (exitHandlerRegistered) return;
  exitHandlerRegistered = true;
  process.on('exit', () => {
    for (const child of liveChildren) if (child.running) child.proc.kill('SIGKILL');
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
}

/** Stops every server this process started (also registered on process 'exit' with SIGKILL as a last resort). */
export async function stopAllServers(): Promise<void> {
  const results = await Promise.allSettled([...liveServers].map((s) => s.stop()));
  // Children of starts still in flight belong to no server yet.
  results.push(...(await Promise.allSettled([...liveChildren].map((c) => c.stop()))));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0)
    throw new AggregateError(
      failed.map((r) => r.reason as unknown),
      'stopAllServers: some servers failed to stop',
    );
}

class StartError extends Error {
  constructor(
    message: string,
    /** The child exited before becoming ready and its output says the port was taken. */
    readonly portBusy: boolean,
  ) {
    super(message);
  }
}

/** Polls `probe` until it yields a value; fails if the child exits, the deadline passes, or `signal` aborts. */
async function waitReady<T>(child: Child, signal: AbortSignal, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (signal.aborted) throw new Error(`${child.name} start aborted: server was stopped`);
    const value = await probe();
    if (value !== undefined) return value;
    if (!child.running) {
      const desc = child.describe();
      throw new StartError(`${child.name} exited before becoming ready: ${desc}`, /address already in use/i.test(desc));
    }
    if (Date.now() > deadline) throw new StartError(`${child.name} not ready within ${READY_TIMEOUT_MS / 1000} s: ${child.describe()}`, false);
    await sleep(POLL_MS);
  }
}

/** Spawns via `launch`, retrying (after a short pause) only when the port was busy. */
async function withRetries<T>(launch: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch();
    } catch (err) {
      if (!(err instanceof StartError && err.portBusy) || attempt >= MAX_TRIES) throw err;
      await sleep(100 * attempt);
    }
  }
}

/** Resolves with `answer(data)` once the first data arrives (or `true` on connect when no request), `false` on any error. */
function tcpProbe(port: number, request?: string, answer?: (data: string) => boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port });
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => (request === undefined ? done(true) : socket.write(request)));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      data += chunk;
      if (data.includes('\r\n')) done(answer?.(data) ?? true);
    });
  });
}

/** A loopback port free at the moment of asking (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not read the port of a probe socket');
  return address.port;
}

type Launch = (dir: string, port: number | undefined, signal: AbortSignal) => Promise<{ child: Child; port: number }>;

interface Lifecycle {
  stop(): Promise<void>;
  restart(options?: RestartOptions & { readonly between?: () => Promise<void> }): Promise<void>;
  signal(signal: NodeJS.Signals): void;
}

/** Launches a server in a fresh temp dir (port undefined = pick one) and builds stop/restart around it; restart reuses the port. */
async function manage(prefix: string, launch: Launch): Promise<{ port: number; lifecycle: Lifecycle }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  liveDirs.add(dir);
  const removeDir = async () => {
    liveDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
  const ac = new AbortController();
  let started: { child: Child; port: number };
  try {
    started = await withRetries(() => launch(dir, undefined, ac.signal));
  } catch (err) {
    await removeDir();
    throw err;
  }
  let { child } = started;
  const { port } = started;
  let pending: Promise<void> = Promise.resolve();
  let stopping: Promise<void> | undefined;
  const lifecycle: Lifecycle = {
    signal: () => undefined,
    stop() {
      stopping ??= (async () => {
        liveServers.delete(lifecycle);
        ac.abort();
        await pending.catch(() => undefined);
        await child.stop();
        await removeDir();
      })();
      return stopping;
    },
    restart(options = {}) {
      if (stopping !== undefined) return Promise.reject(new Error(`${child.name}: restart() after stop()`));
      pending = pending
        .catch(() => undefined)
        .then(async () => {
          await child.stop(options.kill === true);
          await options.between?.();
          ({ child } = await withRetries(() => launch(dir, port, ac.signal)));
        });
      return pending;
    },
  };
  lifecycle.signal = (signal) => void (child.running && child.proc.kill(signal));
  liveServers.add(lifecycle);
  return { port, lifecycle };
}

// ---------------------------------------------------------------- nats

interface NatsPortsFile {
  nats?: string[];
}

async function readNatsPort(dir: string, pid: number): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, `nats-server_${pid}.ports`), 'utf8');
  } catch {
    return undefined;
  }
  // The file may be seen half-written; retry on the next poll.
  let parsed: NatsPortsFile;
  try {
    parsed = JSON.parse(text) as NatsPortsFile;
  } catch {
    return undefined;
  }
  const url = parsed.nats?.[0];
  return url === undefined ? undefined : Number(new URL(url).port);
}

/** Writes the config (port -1 = OS-picked) and starts nats-server; resolves once it accepts TCP connections. */
export interface NatsOptions {
  /** Keep JetStream's store here (restarts reuse it). */
  readonly storeDir?: string;
  /** More config lines (e.g. an authorization block or an include, resolved relative to the config's folder). */
  readonly config?: readonly string[];
  /** Files copied next to the config (name -> path), for includes. */
  readonly files?: Readonly<Record<string, string>>;
  /** Environment of the server process (config variables such as passwords). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Writes the config (port -1 = OS-picked) and starts nats-server; resolves once it accepts TCP connections. */
async function launchNats(dir: string, storeDir: string, port: number, signal: AbortSignal, options: NatsOptions): Promise<{ child: Child; port: number }> {
  const conf = join(dir, 'nats.conf');
  const config = [
    `listen: ${HOST}:${port}`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
    `ports_file_dir: ${JSON.stringify(dir)}`,
    ...(options.config ?? []),
    '',
  ];
  for (const [name, from] of Object.entries(options.files ?? {})) await copyFile(from, join(dir, name));
  await writeFile(conf, config.join('\n'));
  const child = await Child.spawn('nats-server', ['-c', conf], { ...options.env });
  try {
    const actual = await waitReady(child, signal, () => readNatsPort(dir, child.pid));
    await waitReady(child, signal, async () => ((await tcpProbe(actual)) ? true : undefined));
    return { child, port: actual };
  } catch (err) {
    await child.stop();
    throw err;
  }
}

export async function startNats(options: NatsOptions = {}): Promise<NatsServer> {
  let storeDir = options.storeDir;
  const managed = await manage('test-nats-', (dir, port, signal) => {
    storeDir ??= join(dir, 'js');
    return launchNats(dir, storeDir, port ?? -1, signal, options);
  });
  const { port, lifecycle } = managed;
  return {
    url: `nats://${HOST}:${port}`,
    port,
    storeDir: storeDir!,
    stop: lifecycle.stop,
    restart: (o = {}) => lifecycle.restart({ ...o, ...(o.wipeStore ? { between: () => rm(storeDir!, { recursive: true, force: true }) } : {}) }),
    signal: (sig) => lifecycle.signal(sig),
  };
}

// ---------------------------------------------------------------- redis

async function launchRedis(dir: string, port: number, signal: AbortSignal, password?: string): Promise<Child> {
  const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, ...(password ? ['--requirepass', password] : [])];
  const child = await Child.spawn('redis-server', args);
  try {
    await waitReady(child, signal, async () =>
      (await tcpProbe(port, 'PING\r\n', (d) => d.startsWith('+PONG') || d.startsWith('-NOAUTH'))) ? true : undefined,
    );
    return child;
  } catch (err) {
    await child.stop();
    throw err;
  }
}

export async function startRedis(options: { readonly password?: string } = {}): Promise<RedisServer> {
  const managed = await manage('test-redis-', async (dir, port, signal) => {
    // A port from freePort() may be taken before redis binds it; withRetries then picks another.
    const actual = port ?? (await freePort());
    return { child: await launchRedis(dir, actual, signal, options.password), port: actual };
  });
  const { port, lifecycle } = managed;
  return { url: `redis://${HOST}:${port}`, port, stop: lifecycle.stop, restart: (o) => lifecycle.restart(o), signal: (sig) => lifecycle.signal(sig) };
}

// ---------------------------------------------------------------- fake servers

/** A loopback TCP server that speaks no real protocol: it accepts, then stays silent or answers with garbage. */
export interface FakeServer {
  readonly port: number;
  /** Connections it accepted so far. */
  readonly accepted: number;
  stop(): Promise<void>;
}

async function fakeServer(onConnection: (socket: Socket) => void): Promise<FakeServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined).on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('could not read the port of a fake server');
  return {
    port: address.port,
    get accepted() {
      return accepted;
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Accepts TCP connections and never says a word: a wedged NATS or Redis (nats-server waits with its INFO, Redis with its replies). */
export function startSilentServer(): Promise<FakeServer> {
  return fakeServer(() => undefined);
}

/** The end of the first RESP command (an array of bulk strings, as clients send them) in `data` from `at`, or -1 when it is incomplete. */
function commandEnd(data: Buffer, at: number): number {
  const line = (from: number): { value: number; next: number } | null => {
    const end = data.indexOf('\r\n', from);
    return end < 0 ? null : { value: Number(data.toString('latin1', from + 1, end)), next: end + 2 };
  };
  const head = line(at);
  if (head === null) return -1;
  let next = head.next;
  for (let k = 0; k < head.value; k++) {
    const bulk = line(next);
    if (bulk === null || bulk.next + bulk.value + 2 > data.length) return -1;
    next = bulk.next + bulk.value + 2;
  }
  return next;
}

/** Answers every Redis command it is sent with `reply`, verbatim (malformed RESP, say). */
export function startFakeRedis(reply: string): Promise<FakeServer> {
  return fakeServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (let end = commandEnd(pending, 0); end > 0; end = commandEnd(pending, 0)) {
        pending = pending.subarray(end);
        socket.write(reply);
      }
    });
  });
}
