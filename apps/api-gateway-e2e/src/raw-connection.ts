import { connect, type Socket } from 'node:net';

/** A raw TCP client to drive what no HTTP library sends: dribbled headers, short bodies, idling. */
export interface RawConnection {
  readonly socket: Socket;
  readonly openedAt: number;
  /** Everything received so far, as latin1. */
  received(): string;
  /** Resolves with the time (Date.now()) at which the connection closed, whoever closed it. */
  readonly closed: Promise<number>;
  /** True once the server sent its FIN. */
  serverEnded(): boolean;
  /** Resolves once the received text satisfies `predicate`; rejects after `timeoutMs`. */
  waitForText(predicate: (text: string) => boolean, timeoutMs?: number): Promise<string>;
}

export async function openRawConnection(port: number): Promise<RawConnection> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const openedAt = Date.now();
  let text = '';
  let ended = false;
  const listeners = new Set<() => void>();
  // Write errors after the server closed are expected in these tests; 'close' follows.
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    for (const listener of listeners) listener();
  });
  socket.on('end', () => (ended = true));
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  return {
    socket,
    openedAt,
    received: () => text,
    closed,
    serverEnded: () => ended,
    waitForText(predicate, timeoutMs = 5000) {
      if (predicate(text)) return Promise.resolve(text);
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!predicate(text)) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(text);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no matching data within ${timeoutMs} ms; received:\n${text}`));
        }, timeoutMs);
        listeners.add(check);
      });
    },
  };
}

export interface RawResponse {
  statusLine: string;
  /** Header names lower-cased; a repeated name keeps its last value. */
  headers: Record<string, string>;
  body: string;
}

/** Splits one raw HTTP/1.1 response with a Content-Length body. */
export function parseRawResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) throw new Error(`not a complete response head:\n${text}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { statusLine, headers, body: text.slice(end + 4) };
}

/** True once `text` holds a whole response head and the Content-Length body it announces. */
export function hasWholeResponse(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end + 2));
  return length !== null && text.length - end - 4 >= Number(length[1]);
}
