// Idempotency keys and retries, as a fetch wrapper: the client's every
// request goes through it once per logical call.
//
// creditd stores the 2xx answer of every POST and PATCH under its
// Idempotency-Key for 24 hours and replays it to a retry with the same key,
// so a request is safe to send again only under the key of its first
// attempt. The wrapper therefore fixes the key before the first attempt
// (the caller's, else a fresh UUID) and sends every attempt with it. It
// retries 429 and 503 (after Retry-After when the answer has one, else after
// an exponential backoff with jitter) and network errors (the request may
// have been applied: the retry then gets the stored answer), a bounded
// number of times. Any other answer, 2xx or not, is returned as it is.

import { parseRetryAfter } from "./errors.js";

/** How the client retries. Every member is optional. */
export interface RetryPolicy {
  /** Retries after the first attempt (default 3; 0 never retries). */
  maxRetries?: number;
  /** The first backoff, before jitter, in milliseconds (default 200). */
  baseDelayMs?: number;
  /** The longest backoff, in milliseconds (default 5000). */
  maxDelayMs?: number;
  /**
   * The longest Retry-After the client waits, in milliseconds (default
   * 60000): an answer asking for longer is returned, not retried.
   */
  maxRetryAfterMs?: number;
  /** Called before each retry: for logs and metrics. */
  onRetry?: (info: RetryInfo) => void;
}

/** What onRetry is told about a retry. */
export interface RetryInfo {
  /** The attempt about to be made: 2 for the first retry. */
  attempt: number;
  /** How long the client waits before it, in milliseconds. */
  delayMs: number;
  method: string;
  url: string;
  /** The Idempotency-Key every attempt of the call is sent with, if the method takes one. */
  idempotencyKey: string | undefined;
  /** The answer retried (429 or 503), or undefined after a network error. */
  status: number | undefined;
  /** The network error retried. */
  error: unknown;
}

/** A fetch taking a Request, as the client calls it. globalThis.fetch is one. */
export type FetchLike = (input: Request) => Promise<Response>;

/** The methods that change something: they carry an Idempotency-Key. */
const keyedMethods: ReadonlySet<string> = new Set(["POST", "PATCH", "PUT", "DELETE"]);

/** Statuses worth retrying: creditd is rate limiting or (briefly) unavailable. */
const retryStatuses: ReadonlySet<number> = new Set([429, 503]);

export const defaultRetryPolicy: Readonly<Required<Omit<RetryPolicy, "onRetry">>> = {
  maxRetries: 3,
  baseDelayMs: 200,
  maxDelayMs: 5000,
  maxRetryAfterMs: 60000,
};

/** newIdempotencyKey returns a fresh key: a random UUID. */
export async function newIdempotencyKey(): Promise<string> {
  const c: { randomUUID?: () => string } | undefined = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  // Node 18 has no global crypto without a flag.
  const nodeCrypto = await import("node:crypto");
  return nodeCrypto.randomUUID();
}

/**
 * backoffMs is the wait before retry number retry (1 for the first): an
 * exponential backoff, capped, with "equal jitter" (half of it random) so
 * that clients refused together do not come back together.
 */
export function backoffMs(retry: number, policy: Pick<Required<RetryPolicy>, "baseDelayMs" | "maxDelayMs">, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

function sleep(ms: number, signal: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** discard reads and drops a body that will not be returned, so the connection is reused. */
async function discard(res: Response): Promise<void> {
  try {
    await res.arrayBuffer();
  } catch {
    // the body is of no use either way
  }
}

/**
 * withIdempotencyAndRetries wraps fetch: every POST, PATCH, PUT and DELETE
 * gets an Idempotency-Key (the request's own when it has one, else a
 * fresh UUID, fixed once per call), and 429, 503 and network errors are
 * retried with that same key, at most policy.maxRetries times.
 */
export function withIdempotencyAndRetries(fetch: FetchLike, policy: RetryPolicy = {}): FetchLike {
  const p = { ...defaultRetryPolicy, ...dropUndefined(policy) };
  if (!Number.isInteger(p.maxRetries) || p.maxRetries < 0) {
    throw new RangeError(`retries: maxRetries must be a whole number ≥ 0, got ${p.maxRetries}`);
  }
  return async (input: Request): Promise<Response> => {
    let request = input;
    let key: string | undefined;
    if (keyedMethods.has(request.method)) {
      key = request.headers.get("Idempotency-Key") ?? undefined;
      if (key === undefined || key === "") {
        key = await newIdempotencyKey();
        // A Request's headers may be immutable: set the key on a copy.
        const headers = new Headers(request.headers);
        headers.set("Idempotency-Key", key);
        request = new Request(request, { headers });
      }
    }
    for (let attempt = 1; ; attempt++) {
      const last = attempt > p.maxRetries;
      // A Request's body can be read once: every attempt but the last sends a copy.
      const sent = last ? request : request.clone();
      let res: Response;
      try {
        res = await fetch(sent);
      } catch (error) {
        if (last || request.signal.aborted) throw error;
        const delayMs = backoffMs(attempt, p);
        p.onRetry?.({ attempt: attempt + 1, delayMs, method: request.method, url: request.url, idempotencyKey: key, status: undefined, error });
        await sleep(delayMs, request.signal);
        continue;
      }
      if (last || !retryStatuses.has(res.status)) return res;
      const after = parseRetryAfter(res.headers.get("Retry-After"));
      if (after !== undefined && after > p.maxRetryAfterMs) return res;
      const delayMs = after ?? backoffMs(attempt, p);
      await discard(res);
      p.onRetry?.({ attempt: attempt + 1, delayMs, method: request.method, url: request.url, idempotencyKey: key, status: res.status, error: undefined });
      await sleep(delayMs, request.signal);
    }
  };
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o) as [keyof T, T[keyof T]][]) {
    if (v !== undefined) out[k] = v;
  }
  return out;
}
