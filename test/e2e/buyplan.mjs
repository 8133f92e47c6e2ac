// End-to-end test of the seed "Plan Purchase as a Usage Event" against a
// running creditd. buyPlan below is the seed's "Full code example",
// translated from TypeScript to plain JavaScript and left as it is: the
// same PLANS, the same three calls, the same idempotency keys, expires_at,
// metadata and reasons. The scenario after it uses only the public API.
//
//   API_BASE=http://127.0.0.1:8080/v1 API_KEY=qs_test_... node test/e2e/buyplan.mjs
//
// go test ./cmd/creditd starts a server on a fresh SQLite file, then on a
// fresh PostgreSQL database, and runs it against each
// (TestE2EBuyPlan). It needs Node 18 or later (global fetch) and no npm
// packages. It exits non-zero when a step fails.

import assert from "node:assert/strict";

const API_BASE = (process.env.API_BASE ?? "").replace(/\/+$/, "");
const API_KEY = process.env.API_KEY ?? "";
if (!API_BASE || !API_KEY) {
  console.error("e2e: set API_BASE (e.g. http://127.0.0.1:8080/v1) and API_KEY (a qs_test_ or qs_live_ key)");
  process.exit(2);
}

// ---- The seed's code, unchanged but for its types --------------------------

/** @typedef {{debitUnits: number, grantCredits: number, durationMs: number, metricKey: string}} PlanConfig */

/** @type {Record<string, PlanConfig>} */
const PLANS = {
  "1hr": { debitUnits: 100000, grantCredits: 50000, durationMs: 3600000, metricKey: "plan_purchase_1hr" },
  "24hr": { debitUnits: 300000, grantCredits: 200000, durationMs: 86400000, metricKey: "plan_purchase_24hr" },
  "weekly": { debitUnits: 800000, grantCredits: 600000, durationMs: 604800000, metricKey: "plan_purchase_weekly" },
};

/**
 * @param {string} customerID
 * @param {string} planType
 * @param {string} orderId
 * @returns {Promise<{success: boolean, reason?: string}>}
 */
async function buyPlan(customerID, planType, orderId) {
  const plan = PLANS[planType];
  if (!plan) {
    return { success: false, reason: "unknown_plan" };
  }

  // Step 1: Check wallet balance
  const balanceRes = await fetch(
    `${API_BASE}/customers/${customerID}/credits?include_blocks=true`,
    { headers: { "X-API-Key": API_KEY } }
  );
  const balance = await balanceRes.json();
  if (balance.effective_balance < plan.debitUnits) {
    return { success: false, reason: "insufficient_wallet" };
  }

  // Step 2: Debit plan cost from wallet
  const debitRes = await fetch(`${API_BASE}/usage`, {
    method: "POST",
    headers: {
      "X-API-Key": API_KEY,
      "Idempotency-Key": `plan-debit:${planType}:${orderId}`,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({
      external_customer_id: customerID,
      billable_metric_key: plan.metricKey,
      units: plan.debitUnits,
      metadata: { plan_type: planType, order_id: orderId },
    }),
  });

  if (debitRes.status === 402) {
    return { success: false, reason: "insufficient_wallet" };
  }
  if (!debitRes.ok) {
    throw new Error(`Debit failed: ${debitRes.status}`);
  }

  // Step 3: Grant plan credits (retry-safe via idempotency key)
  const expiresAt = new Date(Date.now() + plan.durationMs).toISOString();
  const grantRes = await fetch(`${API_BASE}/topup/grant`, {
    method: "POST",
    headers: {
      "X-API-Key": API_KEY,
      "Idempotency-Key": `plan-grant:${planType}:${orderId}`,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({
      external_customer_id: customerID,
      credits: plan.grantCredits,
      price_paid: 0,
      currency: "mc",
      expires_at: expiresAt,
      priority: 10,
      metadata: { source: "plan_grant", plan_type: planType, order_id: orderId },
    }),
  });

  if (!grantRes.ok) {
    // Critical: debit succeeded but grant failed. Retry this step.
    throw new Error(`Grant failed: ${grantRes.status} — retry with same orderId`);
  }

  return { success: true };
}

// ---- Helpers ---------------------------------------------------------------

// A run-unique suffix keeps the setup keys of two runs against one server
// apart; the customers are fixed, so run this against a fresh database.
const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** api sends one request and returns {status, headers, body} (body parsed when JSON). */
async function api(method, path, { body, key } = {}) {
  const headers = { "X-API-Key": API_KEY };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key !== undefined) headers["Idempotency-Key"] = key;
  const res = await fetch(`${API_BASE}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** must asserts the status of a response and returns its body. */
function must(res, status, what) {
  assert.equal(res.status, status, `${what}: want HTTP ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

const enc = encodeURIComponent;

async function credits(ext) {
  return must(await api("GET", `/customer-by-external-id/${enc(ext)}/credits?include_blocks=true`), 200, `balance of ${ext}`);
}

const customerIDs = new Map();

/** ledger returns every ledger entry of the customer, newest first. */
async function ledger(ext) {
  if (!customerIDs.has(ext)) customerIDs.set(ext, (await credits(ext)).customer_id);
  const id = customerIDs.get(ext);
  const all = [];
  let cursor = "";
  for (;;) {
    const q = `?limit=500${cursor ? `&cursor=${enc(cursor)}` : ""}`;
    const page = must(await api("GET", `/customers/${id}/ledger${q}`), 200, `ledger of ${ext}`);
    all.push(...page.data);
    if (!page.pagination?.has_more) return all;
    cursor = page.pagination.next_cursor;
  }
}

/** snapshot is what must not change when nothing happens: balances and the ledger. */
async function snapshot(ext) {
  const c = await credits(ext);
  const entries = await ledger(ext);
  return {
    balance: c.balance,
    effective_balance: c.effective_balance,
    blocks: (c.blocks ?? []).map((b) => `${b.id}:${b.remaining_amount}`).sort(),
    ledger: entries.map((e) => e.id),
  };
}

/** operation sums the ledger entries written under one idempotency key. */
function operation(entries, key) {
  const mine = entries.filter((e) => e.idempotency_key === key);
  return {
    entries: mine,
    total: mine.reduce((s, e) => s + e.delta, 0),
    references: new Set(mine.map((e) => `${e.reference_type}:${e.reference_id}`)),
    types: new Set(mine.map((e) => e.type)),
  };
}

/** assertPurchased checks that order bought plan exactly once: one debit, one grant. */
function assertPurchased(entries, planType, orderId) {
  const plan = PLANS[planType];
  const debit = operation(entries, `plan-debit:${planType}:${orderId}`);
  assert.ok(debit.entries.length >= 1, `no ledger entry for the debit of ${orderId}`);
  assert.deepEqual([...debit.types], ["usage"], `debit entries of ${orderId} are not all usage entries`);
  assert.equal(debit.references.size, 1, `debit of ${orderId} was recorded as ${debit.references.size} usage events: ${[...debit.references]}`);
  assert.equal(debit.total, -plan.debitUnits, `debit of ${orderId} took ${-debit.total} mc, want ${plan.debitUnits}`);
  const grant = operation(entries, `plan-grant:${planType}:${orderId}`);
  assert.equal(grant.entries.length, 1, `grant of ${orderId} has ${grant.entries.length} ledger entries, want 1`);
  assert.equal(grant.entries[0].type, "grant");
  assert.equal(grant.total, plan.grantCredits, `grant of ${orderId} gave ${grant.total} mc, want ${plan.grantCredits}`);
}

function planBlock(c, orderId) {
  return (c.blocks ?? []).find((b) => b.metadata?.order_id === orderId);
}

function walletBlock(c) {
  const ws = (c.blocks ?? []).filter((b) => b.metadata?.source === "wallet_recharge");
  assert.equal(ws.length, 1, `want one wallet block, got ${ws.length}: ${JSON.stringify(c.blocks)}`);
  return ws[0];
}

async function grantWallet(ext, amount, key) {
  const b = must(
    await api("POST", "/topup/grant", {
      key,
      body: { external_customer_id: ext, credits: amount, priority: 0, metadata: { source: "wallet_recharge" } },
    }),
    201,
    `wallet grant to ${ext}`
  );
  assert.equal(b.priority, 0);
  assert.equal(b.expires_at, null, "a wallet block does not expire");
  return b;
}

async function createMetric(key, rule) {
  must(await api("POST", "/billable-metrics", { key: `e2e-metric:${key}:${RUN}`, body: { key, name: key } }), 201, `create metric ${key}`);
  const r = must(
    await api("POST", "/metering-rules", { key: `e2e-rule:${key}:${RUN}`, body: { billable_metric_key: key, ...rule } }),
    201,
    `create metering rule for ${key}`
  );
  assert.equal(r.cost_type, rule.cost_type);
}

// ---- The scenario ----------------------------------------------------------

const CUSTOMER = "user42:companion7";
const WALLET = 500000;
const steps = [];
const step = (name, fn) => steps.push({ name, fn });

step("setup: plan metrics, chat metric and a 500,000 mc wallet", async () => {
  for (const plan of Object.values(PLANS)) {
    await createMetric(plan.metricKey, { cost_type: "per_unit", unit_cost: 1 });
  }
  await createMetric("chat_message", { cost_type: "per_unit", unit_cost: 1000 });
  await grantWallet(CUSTOMER, WALLET, `e2e-wallet:${CUSTOMER}:${RUN}`);
  const c = await credits(CUSTOMER);
  assert.equal(c.external_customer_id, CUSTOMER);
  assert.equal(c.balance, WALLET);
  assert.equal(c.effective_balance, WALLET);
  assert.equal(walletBlock(c).remaining_amount, WALLET);
});

step("buy 1hr: wallet debited 100,000 and a priority-10 block of 50,000 granted", async () => {
  const before = Date.now();
  assert.deepEqual(await buyPlan(CUSTOMER, "1hr", "order_1"), { success: true });
  const c = await credits(CUSTOMER);
  assert.equal(c.balance, WALLET - 100000 + 50000);
  assert.equal(walletBlock(c).remaining_amount, WALLET - 100000, "the wallet pays the price");
  const b = planBlock(c, "order_1");
  assert.ok(b, `no plan block for order_1 in ${JSON.stringify(c.blocks)}`);
  assert.equal(b.priority, 10);
  assert.equal(b.original_amount, 50000);
  assert.equal(b.remaining_amount, 50000);
  assert.equal(b.price_paid, 0);
  assert.equal(b.currency, "mc");
  assert.deepEqual(b.metadata, { source: "plan_grant", plan_type: "1hr", order_id: "order_1" });
  const exp = Date.parse(b.expires_at);
  assert.ok(exp >= before + 3600000 - 1000 && exp <= Date.now() + 3600000 + 1000, `plan block expires at ${b.expires_at}, want about an hour from now`);
  assert.equal(c.blocks[0].id, b.id, "the plan block comes first in burn order");
  assertPurchased(await ledger(CUSTOMER), "1hr", "order_1");
});

step("retry of order_1: success, no second debit or grant", async () => {
  const before = await snapshot(CUSTOMER);
  // A later retry recomputes expires_at: the grant's body differs, and is replayed.
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(await buyPlan(CUSTOMER, "1hr", "order_1"), { success: true });
  assert.deepEqual(await snapshot(CUSTOMER), before, "a retry changed the balance or the ledger");
  const replay = await api("POST", "/usage", {
    key: "plan-debit:1hr:order_1",
    body: { external_customer_id: CUSTOMER, billable_metric_key: "plan_purchase_1hr", units: 100000, metadata: { plan_type: "1hr", order_id: "order_1" } },
  });
  const u = must(replay, 200, "replayed debit");
  assert.equal(u.duplicate, true);
  assert.equal(replay.headers.get("x-idempotent-replayed"), "true");
  assertPurchased(await ledger(CUSTOMER), "1hr", "order_1");
});

step("20 concurrent buyPlan calls with one new orderId: all succeed, one debit, one grant", async () => {
  const before = await credits(CUSTOMER);
  const entriesBefore = (await ledger(CUSTOMER)).length;
  const results = await Promise.all(Array.from({ length: 20 }, () => buyPlan(CUSTOMER, "1hr", "order_race")));
  assert.deepEqual(results, Array(20).fill({ success: true }));
  const c = await credits(CUSTOMER);
  assert.equal(c.balance, before.balance - 100000 + 50000, "balance after one 1hr purchase");
  const entries = await ledger(CUSTOMER);
  assertPurchased(entries, "1hr", "order_race");
  const debitEntries = operation(entries, "plan-debit:1hr:order_race").entries.length;
  assert.equal(entries.length, entriesBefore + debitEntries + 1, "the race wrote more than one debit and one grant");
  const blocks = (c.blocks ?? []).filter((b) => b.metadata?.order_id === "order_race");
  assert.equal(blocks.length, 1, `want one plan block for order_race, got ${blocks.length}`);
});

// With the wallet only just above the price, a racer whose balance check
// falls between another racer's debit and grant sees too little and answers
// insufficient_wallet (the seed's step 1 is a plain check, not a lock) even
// though the order is bought. That is a false "no", never a second charge.
step("20 racing buyPlan calls on a tight wallet: at least one success, still one debit, one grant", async () => {
  const before = await credits(CUSTOMER);
  assert.ok(before.effective_balance >= 300000 && before.effective_balance - 300000 < 300000, `setup: balance ${before.effective_balance}`);
  const results = await Promise.all(Array.from({ length: 20 }, () => buyPlan(CUSTOMER, "24hr", "order_tight")));
  for (const r of results) {
    assert.ok(r.success || r.reason === "insufficient_wallet", `unexpected result ${JSON.stringify(r)}`);
  }
  assert.ok(results.some((r) => r.success), "no racer bought the plan");
  const refused = results.filter((r) => !r.success).length;
  console.log(`     (${20 - refused} racers succeeded, ${refused} saw the balance between debit and grant)`);
  const c = await credits(CUSTOMER);
  assert.equal(c.balance, before.balance - 300000 + 200000, "balance after one 24hr purchase");
  assertPurchased(await ledger(CUSTOMER), "24hr", "order_tight");
  // A retry after the race settles succeeds.
  assert.deepEqual(await buyPlan(CUSTOMER, "24hr", "order_tight"), { success: true });
  assert.equal((await credits(CUSTOMER)).balance, c.balance);
});

step("weekly plan larger than the wallet: insufficient_wallet, nothing changes", async () => {
  const before = await snapshot(CUSTOMER);
  assert.ok(before.effective_balance < PLANS.weekly.debitUnits, "the setup should leave less than a weekly plan");
  assert.deepEqual(await buyPlan(CUSTOMER, "weekly", "order_weekly"), { success: false, reason: "insufficient_wallet" });
  assert.deepEqual(await buyPlan(CUSTOMER, "monthly", "order_weekly"), { success: false, reason: "unknown_plan" });
  assert.deepEqual(await snapshot(CUSTOMER), before);
});

step("a direct debit of the weekly price gets 402 insufficient-credits, nothing debited", async () => {
  const before = await snapshot(CUSTOMER);
  const body = {
    external_customer_id: CUSTOMER,
    billable_metric_key: "plan_purchase_weekly",
    units: PLANS.weekly.debitUnits,
    metadata: { plan_type: "weekly", order_id: "order_weekly" },
  };
  for (let i = 0; i < 2; i++) {
    const res = await api("POST", "/usage", { key: "plan-debit:weekly:order_weekly", body });
    const p = must(res, 402, `direct weekly debit (attempt ${i + 1})`);
    assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
    assert.equal(p.code, "insufficient-credits");
    assert.equal(p.status, 402);
    assert.equal(p.required, PLANS.weekly.debitUnits);
    assert.equal(p.available, before.effective_balance);
    assert.equal(res.headers.get("x-idempotent-replayed"), null, "a 402 must not be replayed");
  }
  assert.deepEqual(await snapshot(CUSTOMER), before, "a refused debit changed something");
});

step("plan credits (priority 10) burn before wallet credits", async () => {
  const before = await credits(CUSTOMER);
  const wallet = walletBlock(before).remaining_amount;
  const plans = (before.blocks ?? []).filter((b) => b.priority === 10 && b.remaining_amount > 0);
  assert.ok(plans.length > 0, "no plan credits left to burn");
  const used = must(
    await api("POST", "/usage", { key: `e2e-chat:${RUN}:1`, body: { external_customer_id: CUSTOMER, billable_metric_key: "chat_message", units: 3 } }),
    200,
    "chat usage"
  );
  assert.equal(used.estimated_cost, 3000);
  const after = await credits(CUSTOMER);
  assert.equal(after.balance, before.balance - 3000);
  assert.equal(walletBlock(after).remaining_amount, wallet, "the wallet paid for chat while plan credits were left");
  const first = plans[0]; // burn order: the live plan block that expires first
  const firstAfter = after.blocks.find((b) => b.id === first.id);
  assert.equal(firstAfter?.remaining_amount, first.remaining_amount - 3000, `want the chat paid from plan block ${first.id}`);
  assert.ok(after.blocks.findIndex((b) => b.id === first.id) < after.blocks.findIndex((b) => b.priority === 0), "blocks are not listed in burn order");
  const e = operation(await ledger(CUSTOMER), `e2e-chat:${RUN}:1`).entries;
  assert.deepEqual(e.map((x) => [x.block_id, x.delta]), [[first.id, -3000]]);
});

step("paywall: a short wallet is refused, recharged, and the same orderId then buys the plan", async () => {
  const ext = "user99:companion3";
  await grantWallet(ext, 150000, `e2e-wallet:${ext}:${RUN}:1`);

  // Between the balance check and the debit another request drains the
  // wallet (the seed's "the check is not a lock"): the debit's 402 is the
  // authoritative answer.
  const realFetch = globalThis.fetch;
  let drained = false;
  globalThis.fetch = async (url, init) => {
    const res = await realFetch(url, init);
    if (!drained && String(url).endsWith("/credits?include_blocks=true")) {
      drained = true;
      must(
        await api("POST", "/usage", { key: `e2e-drain:${RUN}`, body: { external_customer_id: ext, billable_metric_key: "chat_message", units: 100 } }),
        200,
        "drain usage"
      );
    }
    return res;
  };
  let first;
  try {
    first = await buyPlan(ext, "1hr", "order_paywall");
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.ok(drained, "the drain did not run");
  assert.deepEqual(first, { success: false, reason: "insufficient_wallet" });
  let c = await credits(ext);
  assert.equal(c.balance, 50000, "the refused debit took credits");
  assert.equal(operation(await ledger(ext), "plan-debit:1hr:order_paywall").entries.length, 0, "a refused debit is in the ledger");

  // Still short: refused by the balance check.
  assert.deepEqual(await buyPlan(ext, "1hr", "order_paywall"), { success: false, reason: "insufficient_wallet" });

  // Recharge and retry the same order: the earlier 402 was not stored.
  await grantWallet(ext, 100000, `e2e-wallet:${ext}:${RUN}:2`);
  assert.deepEqual(await buyPlan(ext, "1hr", "order_paywall"), { success: true });
  c = await credits(ext);
  assert.equal(c.balance, 150000 - 100000 + 50000);
  assert.equal(planBlock(c, "order_paywall")?.remaining_amount, 50000);
  assertPurchased(await ledger(ext), "1hr", "order_paywall");
  // And once more: a replay, nothing new.
  const before = await snapshot(ext);
  assert.deepEqual(await buyPlan(ext, "1hr", "order_paywall"), { success: true });
  assert.deepEqual(await snapshot(ext), before);
});

step("the ledger adds up: Σ delta = balance for both customers", async () => {
  for (const ext of [CUSTOMER, "user99:companion3"]) {
    const c = await credits(ext);
    const sum = (await ledger(ext)).reduce((s, e) => s + e.delta, 0);
    assert.equal(sum, c.balance, `ledger of ${ext} sums to ${sum}, balance is ${c.balance}`);
  }
});

// ---- Runner ----------------------------------------------------------------

let passed = 0;
let failed = 0;
for (const [i, s] of steps.entries()) {
  try {
    await s.fn();
    passed++;
    console.log(`ok   ${i + 1} ${s.name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${i + 1} ${s.name}`);
    console.log(String(err?.stack ?? err).replace(/^/gm, "     "));
    if (err?.cause) console.log(`     cause: ${err.cause?.message ?? err.cause}`);
    break; // later steps build on this one's state
  }
}
const skipped = steps.length - passed - failed;
console.log(`e2e: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} not run` : ""}`);
process.exit(failed ? 1 : 0);
