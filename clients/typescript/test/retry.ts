// The client's idempotency keys and retries, against a real creditd behind a
// small Node proxy that this script runs: the proxy forwards each request to
// creditd, or answers it itself (a 503 or 429 with or without Retry-After, a
// 500), or drops the connection before or after forwarding it, as each step
// scripts it, and records the Idempotency-Key of every request it sees.
//
//   API_BASE=http://127.0.0.1:8080/v1 API_KEY=qs_test_... node dist/test/retry.js
//
// go test ./cmd/creditd runs it against a fresh SQLite file and a fresh
// PostgreSQL database (TestTypeScriptClient).

import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";

import {
  type CreditdClient,
  type RetryInfo,
  type RetryPolicy,
  CreditdError,
  InsufficientCreditsError,
  backoffMs,
  createClient,
  parseRetryAfter,
} from "../src/index.js";
import { API_KEY, BASE_URL, RUN, creditd, credits, grantWallet, ledger, rejects, run, step } from "./harness.js";

// ---- The proxy ------------------------------------------------------------------

/** What the proxy does with one request. */
type Action =
  | { kind: "forward" }
  | { kind: "answer"; status: number; retryAfter?: string }
  | { kind: "drop-before" } // close the connection without forwarding: creditd never sees it
  | { kind: "drop-after" }; // forward, then close the connection instead of answering: creditd applied it

interface Seen {
  method: string;
  path: string;
  key: string | undefined;
  body: string;
  action: Action["kind"];
}

const seen: Seen[] = [];
let script: Action[] = [];

/** expect sets what the proxy does with the next requests (then it forwards) and forgets what it saw. */
function expect(...actions: Action[]): void {
  script = actions;
  seen.length = 0;
}

const problem = (status: number, code: string) =>
  JSON.stringify({ type: `/problems/${code}`, title: code, status, detail: `answered by the test proxy`, code });

const hopByHop = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"]);

async function forward(req: http.IncomingMessage, body: Buffer): Promise<Response> {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (k === "host" || hopByHop.has(k) || v === undefined) continue;
    headers.set(k, Array.isArray(v) ? v.join(", ") : v);
  }
  return fetch(BASE_URL + (req.url ?? "/"), {
    method: req.method,
    headers,
    body: body.length > 0 ? body : undefined,
  });
}

const proxy = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    void (async () => {
      const body = Buffer.concat(chunks);
      const action = script.shift() ?? { kind: "forward" };
      const key = req.headers["idempotency-key"];
      seen.push({ method: req.method ?? "", path: req.url ?? "", key: typeof key === "string" ? key : undefined, body: body.toString(), action: action.kind });
      try {
        switch (action.kind) {
          case "drop-before":
            req.socket.destroy();
            return;
          case "answer": {
            const headers: Record<string, string> = { "Content-Type": "application/problem+json" };
            if (action.retryAfter !== undefined) headers["Retry-After"] = action.retryAfter;
            const code = action.status === 429 ? "rate-limited" : action.status === 503 ? "service-unavailable" : "internal";
            res.writeHead(action.status, headers).end(problem(action.status, code));
            return;
          }
          case "drop-after": {
            const upstream = await forward(req, body);
            await upstream.arrayBuffer();
            req.socket.destroy();
            return;
          }
          case "forward": {
            const upstream = await forward(req, body);
            const out = Buffer.from(await upstream.arrayBuffer());
            const headers: Record<string, string> = {};
            upstream.headers.forEach((v, k) => {
              if (!hopByHop.has(k)) headers[k] = v;
            });
            res.writeHead(upstream.status, headers).end(out);
            return;
          }
        }
      } catch (err) {
        res.writeHead(599).end(String(err));
      }
    })();
  });
});
await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
const proxyURL = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

const retries: RetryInfo[] = [];

/** client returns a client of creditd through the proxy, recording its retries. */
function client(policy: RetryPolicy = {}): CreditdClient {
  return createClient({
    baseUrl: proxyURL,
    apiKey: API_KEY,
    retries: { baseDelayMs: 20, maxDelayMs: 200, ...policy, onRetry: (info) => retries.push(info) },
  });
}

function keysSeen(): (string | undefined)[] {
  return seen.map((s) => s.key);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const CUSTOMER = `retry:${RUN}`;
const METRIC = `retry_metric.${RUN}`;

// ---- The steps ---------------------------------------------------------------------

step("setup: a metric at 1 mc a unit and a wallet of 100,000 mc", async () => {
  await creditd.createBillableMetric({ key: METRIC, name: "retry metric" }, { idempotencyKey: `retry-metric:${RUN}` });
  await creditd.createMeteringRule({ billable_metric_key: METRIC, cost_type: "per_unit", unit_cost: 1 }, { idempotencyKey: `retry-rule:${RUN}` });
  await grantWallet(CUSTOMER, 100000, `retry-wallet:${RUN}`);
});

step("503 once with Retry-After: 0: retried at once with the same generated Idempotency-Key, applied once", async () => {
  expect({ kind: "answer", status: 503, retryAfter: "0" });
  retries.length = 0;
  const before = (await credits(CUSTOMER)).balance;
  const r = await client().recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 7 });
  assert.deepEqual(
    seen.map((s) => [s.method, s.action]),
    [
      ["POST", "answer"],
      ["POST", "forward"],
    ],
  );
  const [k1, k2] = keysSeen();
  assert.match(k1 ?? "", UUID, "the client generates a UUID key when the caller gives none");
  assert.equal(k2, k1, "the retry was sent with another Idempotency-Key");
  assert.equal(seen[0]?.body, seen[1]?.body, "the retry was sent with another body");
  assert.equal(r.idempotency_key, k1);
  assert.equal(r.duplicate, false);
  assert.equal(retries.length, 1);
  assert.deepEqual([retries[0]?.status, retries[0]?.delayMs, retries[0]?.attempt, retries[0]?.idempotencyKey], [503, 0, 2, k1]);
  assert.equal((await credits(CUSTOMER)).balance, before - 7);
  assert.equal((await ledger({ externalId: CUSTOMER })).filter((e) => e.idempotency_key === k1).length, 1);
});

step("the next call gets a new key; the caller's key is sent as given on every attempt", async () => {
  expect({ kind: "answer", status: 503, retryAfter: "0" });
  const c = client();
  await c.recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 1 });
  const first = keysSeen()[0];
  expect();
  await c.recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 1 });
  assert.notEqual(keysSeen()[0], first, "two calls shared a generated key");

  const key = `retry-own-key:${RUN}`;
  expect({ kind: "answer", status: 429, retryAfter: "0" }, { kind: "answer", status: 503 });
  const r = await c.recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 1 }, { idempotencyKey: key });
  assert.deepEqual(keysSeen(), [key, key, key]);
  assert.equal(r.idempotency_key, key);
});

step("429 with Retry-After: 1 is honoured: the retry waits a second", async () => {
  expect({ kind: "answer", status: 429, retryAfter: "1" });
  const t0 = Date.now();
  await client().recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 1 });
  const waited = Date.now() - t0;
  assert.ok(waited >= 990, `retried after ${waited} ms, want ≥ 1 s`);
  assert.equal(seen.length, 2);
  assert.equal(keysSeen()[1], keysSeen()[0]);
});

step("503 without Retry-After: exponential backoff with jitter, bounded attempts", async () => {
  expect({ kind: "answer", status: 503 }, { kind: "answer", status: 503 }, { kind: "answer", status: 503 });
  retries.length = 0;
  await client({ baseDelayMs: 40, maxDelayMs: 1000 }).recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 1 });
  assert.equal(seen.length, 4);
  assert.equal(new Set(keysSeen()).size, 1);
  const delays = retries.map((r) => r.delayMs);
  assert.equal(delays.length, 3);
  // Equal jitter: retry n waits between half and all of 40·2^(n-1) ms.
  delays.forEach((d, i) => assert.ok(d >= 20 * 2 ** i && d <= 40 * 2 ** i, `retry ${i + 1} waited ${d} ms`));

  // Always 503: maxRetries + 1 attempts, then the problem is thrown.
  expect(...Array.from({ length: 10 }, (): Action => ({ kind: "answer", status: 503, retryAfter: "0" })));
  const err = await rejects(
    () => client({ maxRetries: 2 }).recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 1 }),
    "always 503",
  );
  assert.ok(err instanceof CreditdError, String(err));
  assert.equal(err.status, 503);
  assert.equal(err.code, "service-unavailable");
  assert.equal(err.retryAfterSeconds, 0);
  assert.equal(seen.length, 3, "want 3 attempts with maxRetries 2");
  assert.equal(new Set(keysSeen()).size, 1);

  // retries: 0 never retries.
  expect({ kind: "answer", status: 503, retryAfter: "0" });
  const once = await rejects(
    () => createClient({ baseUrl: proxyURL, apiKey: API_KEY, retries: 0 }).getBalance({ externalId: CUSTOMER }),
    "retries: 0",
  );
  assert.ok(once instanceof CreditdError && once.status === 503);
  assert.equal(seen.length, 1);
});

step("a Retry-After longer than maxRetryAfterMs is not waited for: the 429 is thrown", async () => {
  expect({ kind: "answer", status: 429, retryAfter: "3600" });
  const t0 = Date.now();
  const err = await rejects(() => client().recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 1 }), "429 for an hour");
  assert.ok(Date.now() - t0 < 1000);
  assert.ok(err instanceof CreditdError, String(err));
  assert.equal(err.status, 429);
  assert.equal(err.code, "rate-limited");
  assert.equal(err.retryAfterSeconds, 3600);
  assert.equal(seen.length, 1);
});

step("no retry on other answers: 402, 409, 400, 500 are thrown after one attempt", async () => {
  const c = client();
  expect();
  const poor = await rejects(() => c.recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 10_000_000 }), "402");
  assert.ok(poor instanceof InsufficientCreditsError, String(poor));
  assert.equal(poor.required, 10_000_000);
  assert.equal(poor.available, (await credits(CUSTOMER)).effective_balance);
  assert.equal(seen.length, 1);

  expect();
  await c.createBillableMetric({ key: METRIC, name: "again" }).then(
    () => assert.fail("a metric key taken twice"),
    (err: unknown) => assert.ok(err instanceof CreditdError && err.status === 409 && err.code === "metric-exists", String(err)),
  );
  assert.equal(seen.length, 1);

  expect();
  const bad = await rejects(() => c.recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 0 }), "units 0");
  assert.ok(bad instanceof CreditdError && bad.status === 400 && bad.code === "invalid-request", String(bad));
  assert.ok((bad.errors ?? []).some((e) => e.field === "units"), `want a field error for units: ${JSON.stringify(bad.errors)}`);
  assert.equal(seen.length, 1);

  expect({ kind: "answer", status: 500 });
  const internal = await rejects(() => c.recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 1 }), "500");
  assert.ok(internal instanceof CreditdError && internal.status === 500, String(internal));
  assert.equal(seen.length, 1);
});

step("network error after creditd applied the request: the retry, same key, gets the stored answer; bought once", async () => {
  const planKey = `retry-plan.${RUN}`;
  await creditd.createPlan({ key: planKey, name: "retry plan", price: 1000, credits: 500, duration_seconds: 3600 }, { idempotencyKey: `retry-plan:${RUN}` });
  const before = (await credits(CUSTOMER)).balance;
  expect({ kind: "drop-after" });
  retries.length = 0;
  const p = await client().purchasePlan({ externalId: CUSTOMER }, { plan_key: planKey, order_id: `order:${RUN}` });
  assert.deepEqual(
    seen.map((s) => s.action),
    ["drop-after", "forward"],
  );
  assert.equal(keysSeen()[1], keysSeen()[0]);
  assert.equal(retries[0]?.status, undefined, "retried for a network error");
  assert.ok(retries[0]?.error instanceof Error);
  assert.equal(p.duplicate, true, "the retry's answer is the replay of the first attempt's");
  assert.equal((await credits(CUSTOMER)).balance, before - 1000 + 500, "bought twice or not at all");
  const list = await creditd.listPlanPurchases({ externalId: CUSTOMER });
  assert.equal(list.data.filter((x) => x.order_id === `order:${RUN}`).length, 1);
});

step("network error before creditd saw it, on a GET and a POST: retried; out of retries the error is thrown", async () => {
  expect({ kind: "drop-before" });
  const b = await client().getBalance({ externalId: CUSTOMER });
  assert.equal(b.external_customer_id, CUSTOMER);
  assert.deepEqual(keysSeen(), [undefined, undefined], "a GET carries no Idempotency-Key");

  expect({ kind: "drop-before" }, { kind: "drop-before" });
  const r = await client().topupGrant({ external_customer_id: CUSTOMER, credits: 1, metadata: { source: "retry" } });
  assert.equal(seen.length, 3);
  assert.equal(new Set(keysSeen()).size, 1);
  assert.equal(r.original_amount, 1);

  expect({ kind: "drop-before" }, { kind: "drop-before" }, { kind: "drop-before" });
  const err = await rejects(() => client({ maxRetries: 2 }).getBalance({ externalId: CUSTOMER }), "three dropped connections");
  assert.ok(err instanceof TypeError, `want fetch's TypeError, got ${String(err)}`);
  assert.equal(seen.length, 3);
});

step("PATCH carries a key too, kept across retries; the raw client takes the caller's", async () => {
  const me = await creditd.raw.GET("/v1/tenants/me");
  assert.ok(me.data, JSON.stringify(me.error));
  const tenant = me.data.id;
  expect({ kind: "answer", status: 503, retryAfter: "0" });
  const res = await client().raw.PATCH("/v1/tenants/{id}/config", { params: { path: { id: tenant } }, body: { low_balance_threshold: 1234 } });
  assert.equal(res.response.status, 200, JSON.stringify(res.error));
  assert.equal(res.data?.low_balance_threshold, 1234);
  assert.equal(seen.length, 2);
  assert.match(keysSeen()[0] ?? "", UUID);
  assert.equal(keysSeen()[1], keysSeen()[0]);

  const key = `retry-raw:${RUN}`;
  expect({ kind: "answer", status: 503, retryAfter: "0" });
  const raw = await client().raw.PATCH("/v1/tenants/{id}/config", {
    params: { path: { id: tenant }, header: { "Idempotency-Key": key } },
    body: { low_balance_threshold: null },
  });
  assert.equal(raw.response.status, 200, JSON.stringify(raw.error));
  assert.deepEqual(keysSeen(), [key, key]);
});

step("an abort during the wait for a retry ends the call", async () => {
  expect({ kind: "answer", status: 503, retryAfter: "30" });
  const t0 = Date.now();
  const err = await rejects(
    () => client().recordUsage({ external_customer_id: CUSTOMER, billable_metric_key: METRIC, units: 1 }, { signal: AbortSignal.timeout(100) }),
    "aborted",
  );
  assert.ok(Date.now() - t0 < 5000, "the abort did not end the wait");
  assert.ok(err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError"), String(err));
  assert.equal(seen.length, 1);
});

step("backoffMs and parseRetryAfter", async () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffMs(n, policy, () => 0)),
    [50, 100, 200, 400, 500],
  );
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffMs(n, policy, () => 0.999999)),
    [100, 200, 400, 800, 1000],
  );
  assert.equal(parseRetryAfter("0"), 0);
  assert.equal(parseRetryAfter(" 3 "), 3000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
  assert.equal(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now), 0);
  assert.throws(() => createClient({ baseUrl: proxyURL, apiKey: API_KEY, retries: -1 }), RangeError);
});

step("close the proxy", async () => {
  await new Promise<void>((resolve, reject) => proxy.close((err) => (err ? reject(err) : resolve())));
});

await run();
