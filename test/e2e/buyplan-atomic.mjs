// End-to-end test of creditd's one-call plan purchase: the seed "Plan
// Purchase as a Usage Event" (see buyplan.mjs, its three calls as the seed
// wrote them) rewritten to POST /v1/plans once per plan, then one
// POST …/plan-purchases per order. The order id is the purchase's identity,
// so a retry under any Idempotency-Key answers the purchase made before
// (duplicate: true) instead of a second charge; the debit takes only wallet
// credits (the plan's pay_from_max_priority, 0 by default), so plan credits
// never pay for the next plan; and a refusal is one authoritative 402 whose
// available counts only those payable credits.
//
//   API_BASE=http://127.0.0.1:8080/v1 API_KEY=qs_test_... node test/e2e/buyplan-atomic.mjs
//
// go test ./cmd/creditd runs it like buyplan.mjs, against a fresh SQLite
// file and a fresh PostgreSQL database (TestE2EBuyPlan). Node 18 or later,
// no npm packages. Customers and plan keys carry a run-unique suffix, so it
// also runs against a server that has data. It exits non-zero when a step
// fails.

import assert from "node:assert/strict";

const API_BASE = (process.env.API_BASE ?? "").replace(/\/+$/, "");
const API_KEY = process.env.API_KEY ?? "";
if (!API_BASE || !API_KEY) {
  console.error("e2e: set API_BASE (e.g. http://127.0.0.1:8080/v1) and API_KEY (a qs_test_ or qs_live_ key)");
  process.exit(2);
}

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

// ---- The seed's buyPlan, as one call ------------------------------------------

// The seed's PLANS, as a catalog on the server: the price is debited, the
// credits granted at priority 10, expiring durationSeconds after the purchase.
const PLANS = {
  "1hr": { price: 100000, credits: 50000, durationSeconds: 3600 },
  "24hr": { price: 300000, credits: 200000, durationSeconds: 86400 },
  "weekly": { price: 800000, credits: 600000, durationSeconds: 604800 },
};

/** planKey is the plan's key on the server (run-unique: plans are immutable). */
const planKey = (planType) => `${planType}.${RUN}`;

/**
 * buyPlan buys planType for the customer in one atomic call: the wallet is
 * debited and the plan block granted together, or nothing happens. Retry it
 * with the same orderId until it answers: a retry never buys twice.
 *
 * @param {string} customerID the customer's external id
 * @param {string} planType
 * @param {string} orderId generated client-side before the first attempt
 * @param {string} [idempotencyKey] one per attempt is fine too: the order id is the identity
 * @returns {Promise<{success: boolean, reason?: string, duplicate?: boolean, purchase?: object}>}
 */
async function buyPlan(customerID, planType, orderId, idempotencyKey = `plan-purchase:${planType}:${orderId}`) {
  if (!PLANS[planType]) {
    return { success: false, reason: "unknown_plan" };
  }
  const res = await fetch(`${API_BASE}/customer-by-external-id/${encodeURIComponent(customerID)}/plan-purchases`, {
    method: "POST",
    headers: {
      "X-API-Key": API_KEY,
      "Idempotency-Key": idempotencyKey,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({
      plan_key: planKey(planType),
      order_id: orderId,
      metadata: { plan_type: planType, order_id: orderId },
    }),
  });
  if (res.status === 402) {
    // Nothing was debited or granted: show the recharge paywall.
    return { success: false, reason: "insufficient_wallet" };
  }
  if (!res.ok) {
    // A 5xx or a network error may or may not have bought it: retry with the same orderId.
    throw new Error(`Purchase failed: ${res.status} ${await res.text()} — retry with the same orderId`);
  }
  const purchase = await res.json();
  return { success: true, duplicate: purchase.duplicate, purchase };
}

// ---- Helpers ---------------------------------------------------------------

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

/** ledger returns every ledger entry of the customer, newest first. */
async function ledger(ext) {
  const all = [];
  let cursor = "";
  for (;;) {
    const q = `?limit=500${cursor ? `&cursor=${enc(cursor)}` : ""}`;
    const page = must(await api("GET", `/customer-by-external-id/${enc(ext)}/ledger${q}`), 200, `ledger of ${ext}`);
    all.push(...page.data);
    if (!page.pagination?.has_more) return all;
    cursor = page.pagination.next_cursor;
  }
}

/** snapshot is what must not change when nothing happens: balances, blocks and the ledger. */
async function snapshot(ext) {
  const c = await credits(ext);
  return {
    balance: c.balance,
    effective_balance: c.effective_balance,
    blocks: (c.blocks ?? []).map((b) => `${b.id}:${b.remaining_amount}`).sort(),
    ledger: (await ledger(ext)).map((e) => e.id),
  };
}

/** assertPurchased checks a purchase's ledger: one purchase debit per block paid from, one grant. */
async function assertPurchased(ext, purchase) {
  const mine = (await ledger(ext)).filter((e) => e.reference_type === "plan_purchase" && e.reference_id === purchase.id);
  const debits = mine.filter((e) => e.type === "purchase");
  const grants = mine.filter((e) => e.type === "grant");
  assert.equal(mine.length, debits.length + grants.length, `purchase ${purchase.id} has entries of other types`);
  assert.deepEqual(
    debits.map((e) => [e.block_id, -e.delta]).sort(),
    purchase.debits.map((d) => [d.block_id, d.amount]).sort(),
    `purchase entries of ${purchase.id} are not its debits`
  );
  assert.equal(debits.reduce((s, e) => s - e.delta, 0), purchase.price, `purchase ${purchase.id} debited other than its price`);
  assert.equal(grants.length, 1, `purchase ${purchase.id} has ${grants.length} grant entries, want 1`);
  assert.equal(grants[0].delta, purchase.credits);
  assert.equal(grants[0].block_id, purchase.block.id);
}

function walletBlock(c) {
  const ws = (c.blocks ?? []).filter((b) => b.metadata?.source === "wallet_recharge");
  assert.equal(ws.length, 1, `want one wallet block, got ${ws.length}: ${JSON.stringify(c.blocks)}`);
  return ws[0];
}

async function grantWallet(ext, amount, key) {
  return must(
    await api("POST", "/topup/grant", {
      key,
      body: { external_customer_id: ext, credits: amount, priority: 0, metadata: { source: "wallet_recharge" } },
    }),
    201,
    `wallet grant to ${ext}`
  );
}

// ---- The scenario ----------------------------------------------------------

const CUSTOMER = `user42:companion7:${RUN}`;
const WALLET = 500000;
const steps = [];
const step = (name, fn) => steps.push({ name, fn });

step("setup: the plan catalog and a 500,000 mc wallet", async () => {
  for (const [type, p] of Object.entries(PLANS)) {
    const plan = must(
      await api("POST", "/plans", {
        key: `e2e-plan:${type}:${RUN}`,
        body: { key: planKey(type), name: `${type} plan`, price: p.price, credits: p.credits, duration_seconds: p.durationSeconds },
      }),
      201,
      `create plan ${type}`
    );
    assert.match(plan.id, /^pln_/);
    assert.equal(plan.priority, 10, "plan credits burn before the wallet by default");
    assert.equal(plan.pay_from_max_priority, 0, "plans are paid from the wallet only by default");
    assert.equal(plan.duration_seconds, p.durationSeconds);
    assert.equal(plan.active, true);
  }
  const again = await api("POST", "/plans", { key: `e2e-plan-again:${RUN}`, body: { key: planKey("1hr"), name: "x", price: 1, credits: 1 } });
  assert.equal(must(again, 409, "a plan key taken").code, "plan-exists");
  await grantWallet(CUSTOMER, WALLET, `e2e-wallet:${CUSTOMER}:1`);
  assert.equal((await credits(CUSTOMER)).balance, WALLET);
});

let first; // the purchase of order_1
step("buy 1hr in one call: the wallet pays 100,000, a priority-10 block of 50,000 expires in an hour", async () => {
  const r = await buyPlan(CUSTOMER, "1hr", "order_1");
  assert.equal(r.success, true);
  assert.equal(r.duplicate, false);
  first = r.purchase;
  const c = await credits(CUSTOMER);
  const wallet = walletBlock(c);
  assert.match(first.id, /^pur_/);
  assert.equal(first.external_customer_id, CUSTOMER);
  assert.equal(first.plan_key, planKey("1hr"));
  assert.equal(first.order_id, "order_1");
  assert.deepEqual(first.debits, [{ block_id: wallet.id, amount: 100000 }]);
  assert.equal(first.balance_after, WALLET - 100000 + 50000);
  assert.equal(first.block.source, "plan");
  assert.equal(first.block.priority, 10);
  assert.equal(first.block.original_amount, 50000);
  assert.equal(Date.parse(first.block.expires_at) - Date.parse(first.created_at), 3600 * 1000, "expires_at = purchase time + duration, to the millisecond");
  assert.deepEqual(first.metadata, { plan_type: "1hr", order_id: "order_1" });
  assert.equal(c.balance, first.balance_after);
  assert.equal(wallet.remaining_amount, WALLET - 100000);
  assert.equal(c.blocks[0].id, first.block.id, "the plan block comes first in burn order");
  await assertPurchased(CUSTOMER, first);
});

step("retry of order_1: duplicate, the same purchase, nothing changes", async () => {
  const before = await snapshot(CUSTOMER);
  await new Promise((r) => setTimeout(r, 5));
  // The same Idempotency-Key: the stored answer, replayed.
  const res = await api("POST", `/customer-by-external-id/${enc(CUSTOMER)}/plan-purchases`, {
    key: "plan-purchase:1hr:order_1",
    body: { plan_key: planKey("1hr"), order_id: "order_1" },
  });
  const replay = must(res, 201, "replayed purchase");
  assert.equal(res.headers.get("x-idempotent-replayed"), "true");
  assert.equal(replay.duplicate, true);
  assert.deepEqual({ ...replay, duplicate: false }, first, "a replay is the first answer");
  // Another Idempotency-Key (a second device, a lost key): the order answers.
  const again = await buyPlan(CUSTOMER, "1hr", "order_1", `another-key:${RUN}`);
  assert.equal(again.success, true);
  assert.equal(again.duplicate, true);
  assert.equal(again.purchase.id, first.id);
  assert.equal(again.purchase.block.expires_at, first.block.expires_at, "a retry never moves the expiry");
  assert.deepEqual(await snapshot(CUSTOMER), before, "a retry changed the balance or the ledger");
});

step("20 racing retries of one new order under different keys: one purchase, the others duplicates", async () => {
  const before = await credits(CUSTOMER);
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => buyPlan(CUSTOMER, "1hr", "order_race", `race:${RUN}:${i % 10}`))
  );
  assert.ok(results.every((r) => r.success), `a racer failed: ${JSON.stringify(results.filter((r) => !r.success))}`);
  assert.equal(results.filter((r) => !r.duplicate).length, 1, "want exactly one racer to buy, the others to see its purchase");
  assert.equal(new Set(results.map((r) => r.purchase.id)).size, 1, "racers answered different purchases");
  const c = await credits(CUSTOMER);
  assert.equal(c.balance, before.balance - 100000 + 50000, "balance after one 1hr purchase");
  assert.equal((c.blocks ?? []).filter((b) => b.source === "plan").length, 2, "want two plan blocks: order_1's and order_race's");
  await assertPurchased(CUSTOMER, results[0].purchase);
});

step("plan credits do not pay for the next plan: 24hr is paid from the wallet alone", async () => {
  const before = await credits(CUSTOMER);
  const plans = before.blocks.filter((b) => b.source === "plan");
  assert.equal(walletBlock(before).remaining_amount, 300000);
  // The seed's debit is ordinary usage and would take the 100,000 of plan credits first.
  const r = await buyPlan(CUSTOMER, "24hr", "order_24");
  assert.equal(r.success, true);
  assert.deepEqual(r.purchase.debits, [{ block_id: walletBlock(before).id, amount: 300000 }]);
  const after = await credits(CUSTOMER);
  for (const p of plans) {
    assert.equal(after.blocks.find((b) => b.id === p.id)?.remaining_amount, p.remaining_amount, `plan block ${p.id} paid for a plan`);
  }
  assert.equal(after.blocks.some((b) => b.metadata?.source === "wallet_recharge"), false, "the wallet should be spent");
  await assertPurchased(CUSTOMER, r.purchase);
});

step("no wallet credits left: 402 with available = payable credits (0), not the balance; nothing changes", async () => {
  const before = await snapshot(CUSTOMER);
  assert.ok(before.effective_balance >= PLANS["1hr"].price, "the balance (plan credits) would cover the price");
  for (let i = 0; i < 2; i++) {
    const res = await api("POST", `/customer-by-external-id/${enc(CUSTOMER)}/plan-purchases`, {
      key: "plan-purchase:1hr:order_paywall",
      body: { plan_key: planKey("1hr"), order_id: "order_paywall" },
    });
    const p = must(res, 402, `purchase without wallet credits (attempt ${i + 1})`);
    assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
    assert.equal(p.code, "insufficient-credits");
    assert.equal(p.required, PLANS["1hr"].price);
    assert.equal(p.available, 0, "plan credits are not payable");
    assert.equal(res.headers.get("x-idempotent-replayed"), null, "a 402 must not be replayed");
  }
  assert.deepEqual(await buyPlan(CUSTOMER, "1hr", "order_paywall"), { success: false, reason: "insufficient_wallet" });
  assert.deepEqual(await buyPlan(CUSTOMER, "monthly", "order_paywall"), { success: false, reason: "unknown_plan" });
  assert.deepEqual(await snapshot(CUSTOMER), before, "a refused purchase changed something");
});

step("paywall: recharge, and the same orderId and key then buy the plan", async () => {
  await grantWallet(CUSTOMER, 120000, `e2e-wallet:${CUSTOMER}:2`);
  const p = must(
    await api("GET", `/customer-by-external-id/${enc(CUSTOMER)}/credits`),
    200,
    "balance after the recharge"
  );
  const r = await buyPlan(CUSTOMER, "1hr", "order_paywall");
  assert.equal(r.success, true);
  assert.equal(r.duplicate, false);
  assert.equal(r.purchase.balance_after, p.balance - 100000 + 50000);
  assert.equal(walletBlock(await credits(CUSTOMER)).remaining_amount, 20000);
  await assertPurchased(CUSTOMER, r.purchase);
});

step("a new customer who cannot pay is not created", async () => {
  const ext = `user77:companion1:${RUN}`;
  assert.deepEqual(await buyPlan(ext, "1hr", "order_new"), { success: false, reason: "insufficient_wallet" });
  must(await api("GET", `/customer-by-external-id/${enc(ext)}`), 404, "the refused buyer");
});

step("an order id names one purchase: the same order with another plan is 409 order-exists", async () => {
  const before = await snapshot(CUSTOMER);
  const res = await api("POST", `/customer-by-external-id/${enc(CUSTOMER)}/plan-purchases`, {
    key: `e2e-other-plan:${RUN}`,
    body: { plan_key: planKey("24hr"), order_id: "order_1" },
  });
  const p = must(res, 409, "order_1 with another plan");
  assert.equal(p.code, "order-exists");
  assert.equal(p.purchase_id, first.id);
  assert.deepEqual(await snapshot(CUSTOMER), before);
});

step("an archived plan cannot be bought; its orders still answer their purchase", async () => {
  const a = must(await api("POST", `/plans/${enc(planKey("1hr"))}/archive`, { key: `e2e-archive:${RUN}` }), 200, "archive 1hr");
  assert.equal(a.active, false);
  await grantWallet(CUSTOMER, 100000, `e2e-wallet:${CUSTOMER}:3`);
  const before = await snapshot(CUSTOMER);
  const res = await api("POST", `/customer-by-external-id/${enc(CUSTOMER)}/plan-purchases`, {
    key: `e2e-archived:${RUN}`,
    body: { plan_key: planKey("1hr"), order_id: "order_late" },
  });
  assert.equal(must(res, 409, "buying an archived plan").code, "plan-archived");
  const r = await buyPlan(CUSTOMER, "1hr", "order_1", `after-archive:${RUN}`);
  assert.equal(r.success, true);
  assert.equal(r.duplicate, true);
  assert.equal(r.purchase.id, first.id);
  assert.deepEqual(await snapshot(CUSTOMER), before);
});

step("the purchases read back, newest first, and the ledger adds up", async () => {
  const got = must(await api("GET", `/plan-purchases/${first.id}`), 200, "GET the first purchase");
  assert.equal(got.order_id, "order_1");
  assert.equal(got.duplicate, false);
  const list = must(await api("GET", `/customer-by-external-id/${enc(CUSTOMER)}/plan-purchases`), 200, "the customer's purchases");
  assert.deepEqual(
    list.data.map((p) => p.order_id),
    ["order_paywall", "order_24", "order_race", "order_1"]
  );
  const c = await credits(CUSTOMER);
  const sum = (await ledger(CUSTOMER)).reduce((s, e) => s + e.delta, 0);
  assert.equal(sum, c.balance, `ledger sums to ${sum}, balance is ${c.balance}`);
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
