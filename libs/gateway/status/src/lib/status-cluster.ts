import cluster from 'node:cluster';
import type { ProcessReading, StatusBoard } from './status-board';

const REQUEST = 'helix:status-request';
const REPLY = 'helix:status-reply';
/** A worker that has not answered by then is left out of that sample; the page never waits. */
const REPLY_TIMEOUT_MS = 800;

interface StatusRequest {
  readonly type: typeof REQUEST;
  readonly id: number;
}

interface StatusReply {
  readonly type: typeof REPLY;
  readonly id: number;
  readonly reading: ProcessReading;
}

function isMessage<T extends { type: string }>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as T).type === type;
}

/** A channel that closed under a send (a worker or the primary exiting) loses one sample only. */
function ignoreClosedChannel(): void {
  return;
}

/** In a worker: answers the primary's sampler with this process's reading. */
export function answerStatusRequests(board: StatusBoard): void {
  process.on('message', (message) => {
    if (!isMessage<StatusRequest>(message, REQUEST)) return;
    void board.read().then((reading) => {
      const reply: StatusReply = { type: REPLY, id: message.id, reading };
      // The primary may be gone already (shutdown): nothing to answer then.
      if (process.connected) process.send?.(reply, undefined, undefined, ignoreClosedChannel);
    });
  });
}

/**
 * In the primary: a reader for the StatusSampler that asks every worker for its reading over
 * the cluster's IPC channel, as prom-client's AggregatorRegistry does for `/metrics`.
 */
export function readWorkers(): () => Promise<ProcessReading[]> {
  let nextId = 0;
  const pending = new Map<number, (reply: StatusReply) => void>();
  cluster.on('message', (_worker, message) => {
    if (isMessage<StatusReply>(message, REPLY)) pending.get(message.id)?.(message);
  });
  return () =>
    new Promise((resolve) => {
      const id = ++nextId;
      const workers = Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected());
      const readings: ProcessReading[] = [];
      const done = () => {
        clearTimeout(timer);
        pending.delete(id);
        resolve(readings);
      };
      const timer = setTimeout(done, REPLY_TIMEOUT_MS);
      pending.set(id, (reply) => {
        readings.push(reply.reading);
        if (readings.length === workers.length) done();
      });
      if (workers.length === 0) return done();
      const request: StatusRequest = { type: REQUEST, id };
      // A worker exiting between the list and the send is left out, not an 'error' event.
      for (const worker of workers) worker?.send(request, undefined, ignoreClosedChannel);
    });
}
