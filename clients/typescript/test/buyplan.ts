// The seed's buyPlan ("Plan Purchase as a Usage Event": check the wallet,
// debit the plan's price as usage, grant the plan's credits at priority 10
// with an expiry) written with the TypeScript client, and the scenario of
// test/e2e/buyplan.mjs run with it: the same customers, keys and
// assertions, every call through the client.
//
//   API_BASE=http://127.0.0.1:8080/v1 API_KEY=qs_test_... node dist/test/buyplan.js
//
// go test ./cmd/creditd compiles it (tsc --strict) and runs it against a
// fresh SQLite file and a fresh PostgreSQL database (TestTypeScriptClient).

import assert from "node:assert/strict";

import { type Balance, type Block, type CreditdClient, type LedgerEntry, CreditdError, InsufficientCreditsError, createClient } from "../src/index.js";
import { API_KEY, BASE_URL, RUN, creditd, credits, ext, grantWallet, ledger, rejects, run, snapshot, sleep, step, walletBlock } from "./harness.js";

// ---- The seed's buyPlan, with the client -------------------------------------

interface PlanConfig {
  debitUnits: number;
  grantCredits: number;
  durationMs: number;
  metricKey: string;
}

const PLANS: Record<string, PlanConfig> = {
  "1hr": { debitUnits: 100000, grantCredits: 50000, durationMs: 3600000, metricKey: "plan_purchase_1hr" },
  "24hr": { debitUnits: 300000, grantCredits: 200000, durationMs: 86400000, metricKey: "plan_purchase_24hr" },
  weekly: { debitUnits: 800000, grantCredits: 600000, durationMs: 604800000, metricKey: "plan_purchase_weekly" },
};

type BuyPlanResult = { success: true } | { success: false; reason: "unknown_plan" | "insufficient_wallet" };

/**
 * buyPlan is the seed's three calls. The idempotency keys derive from the
 * order id, so calling it again with the same orderId never debits or
 * grants twice; the client's own retries (429, 503, network errors) resend
 * each call with its key.
 */
async function buyPlan(client: CreditdClient, customerID: string, planType: string, orderId: string): Promise<BuyPlanResult> {
  const plan = PLANS[planType];
  if (!plan) {
    return { success: false, reason: "unknown_plan" };
  }

  // Step 1: Check wallet balance (the path takes the external id, as the seed sends it).
  let balance: Balance | undefined;
  try {
    balance = await client.getBalance({ customerId: customerID }, { includeBlocks: true });
  } catch (err) {
    if (!(err instanceof CreditdError && err.code === "not-found")) throw err;
  }
  if ((balance?.effective_balance ?? 0) < plan.debitUnits) {
    return { success: false, reason: "insufficient_wallet" };
  }

  // Step 2: Debit plan cost from wallet.
  try {
    await client.recordUsage(
      {
        external_customer_id: customerID,
        billable_metric_key: plan.metricKey,
        units: plan.debitUnits,
        metadata: { plan_type: planType, order_id: orderId },
      },
      { idempotencyKey: `plan-debit:${planType}:${orderId}` },
    );
  } catch (err) {
    if (err instanceof InsufficientCreditsError) {
      return { success: false, reason: "insufficient_wallet" };
    }
    throw err;
  }

  // Step 3: Grant plan credits (retry-safe via idempotency key).
  const expiresAt = new Date(Date.now() + plan.durationMs).toISOString();
  try {
    await client.topupGrant(
      {
        external_customer_id: customerID,
        credits: plan.grantCredits,
        price_paid: 0,
        currency: "mc",
        expires_at: expiresAt,
        priority: 10,
        metadata: { source: "plan_grant", plan_type: planType, order_id: orderId },
      },
      { idempotencyKey: `plan-grant:${planType}:${orderId}` },
    );
  } catch (err) {
    // Critical: debit succeeded but grant failed. Retry with the same orderId.
    throw new Error(`Grant failed — retry with same orderId`, { cause: err });
  }

  return { success: true };
}

// ---- Helpers -------------------------------------------------------------------

const customerIDs = new Map<string, string>();

/** ledgerOf reads the ledger by creditd's customer id, as buyplan.mjs does. */
async function ledgerOf(externalId: string): Promise<LedgerEntry[]> {
  let id = customerIDs.get(externalId);
  if (id === undefined) {
    id = (await credits(externalId)).customer_id;
    customerIDs.set(externalId, id);
  }
  return ledger({ customerId: id });
}

/** operation sums the ledger entries written under one idempotency key. */
function operation(entries: LedgerEntry[], key: string) {
  const mine = entries.filter((e) => e.idempotency_key === key);
  return {
    entries: mine,
    total: mine.reduce((s, e) => s + e.delta, 0),
    references: new Set(mine.map((e) => `${e.reference_type}:${e.reference_id}`)),
    types: new Set(mine.map((e) => e.type)),
  };
}

/** assertPurchased checks that the order bought the plan exactly once: one debit, one grant. */
function assertPurchased(entries: LedgerEntry[], planType: string, orderId: string): void {
  const plan = PLANS[planType];
  assert.ok(plan);
  const debit = operation(entries, `plan-debit:${planType}:${orderId}`);
  assert.ok(debit.entries.length >= 1, `no ledger entry for the debit of ${orderId}`);
  assert.deepEqual([...debit.types], ["usage"], `debit entries of ${orderId} are not all usage entries`);
  assert.equal(debit.references.size, 1, `debit of ${orderId} was recorded as ${debit.references.size} usage events`);
  assert.equal(debit.total, -plan.debitUnits, `debit of ${orderId} took ${-debit.total} mc, want ${plan.debitUnits}`);
  const grant = operation(entries, `plan-grant:${planType}:${orderId}`);
  assert.equal(grant.entries.length, 1, `grant of ${orderId} has ${grant.entries.length} ledger entries, want 1`);
  assert.equal(grant.entries[0]?.type, "grant");
  assert.equal(grant.total, plan.grantCredits, `grant of ${orderId} gave ${grant.total} mc, want ${plan.grantCredits}`);
}

function planBlock(c: Balance, orderId: string): Block | undefined {
  return (c.blocks ?? []).find((b) => b.metadata.order_id === orderId);
}

async function createMetric(key: string, unitCost: number): Promise<void> {
  await creditd.createBillableMetric({ key, name: key }, { idempotencyKey: `e2e-metric:${key}:${RUN}` });
  const r = await creditd.createMeteringRule(
    { billable_metric_key: key, cost_type: "per_unit", unit_cost: unitCost },
    { idempotencyKey: `e2e-rule:${key}:${RUN}` },
  );
  assert.equal(r.cost_type, "per_unit");
}

// ---- The scenario (test/e2e/buyplan.mjs's) --------------------------------------

const CUSTOMER = "user42:companion7";
const WALLET = 500000;
const buy = (planType: string, orderId: string): Promise<BuyPlanResult> => buyPlan(creditd, CUSTOMER, planType, orderId);

step("setup: plan metrics, chat metric and a 500,000 mc wallet", async () => {
  for (const plan of Object.values(PLANS)) {
    await createMetric(plan.metricKey, 1);
  }
  await createMetric("chat_message", 1000);
  await grantWallet(CUSTOMER, WALLET, `e2e-wallet:${CUSTOMER}:${RUN}`);
  const c = await credits(CUSTOMER);
  assert.equal(c.external_customer_id, CUSTOMER);
  assert.equal(c.balance, WALLET);
  assert.equal(c.effective_balance, WALLET);
  assert.equal(walletBlock(c).remaining_amount, WALLET);
});

step("buy 1hr: wallet debited 100,000 and a priority-10 block of 50,000 granted", async () => {
  const before = Date.now();
  assert.deepEqual(await buy("1hr", "order_1"), { success: true });
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
  assert.ok(b.expires_at !== null, "a plan block expires");
  const exp = Date.parse(b.expires_at);
  assert.ok(exp >= before + 3600000 - 1000 && exp <= Date.now() + 3600000 + 1000, `plan block expires at ${b.expires_at}, want about an hour from now`);
  assert.equal(c.blocks?.[0]?.id, b.id, "the plan block comes first in burn order");
  assertPurchased(await ledgerOf(CUSTOMER), "1hr", "order_1");
});

step("retry of order_1: success, no second debit or grant; a replayed debit says duplicate", async () => {
  const before = await snapshot(CUSTOMER);
  // A later retry recomputes expires_at: the grant's body differs, and is replayed.
  await sleep(5);
  assert.deepEqual(await buy("1hr", "order_1"), { success: true });
  assert.deepEqual(await snapshot(CUSTOMER), before, "a retry changed the balance or the ledger");
  const replay = await creditd.raw.POST("/v1/usage", {
    params: { header: { "Idempotency-Key": "plan-debit:1hr:order_1" } },
    body: { external_customer_id: CUSTOMER, billable_metric_key: "plan_purchase_1hr", units: 100000, metadata: { plan_type: "1hr", order_id: "order_1" } },
  });
  assert.equal(replay.response.status, 200, `replayed debit: ${JSON.stringify(replay.error)}`);
  assert.equal(replay.data?.duplicate, true);
  assert.equal(replay.response.headers.get("x-idempotent-replayed"), "true");
  assertPurchased(await ledgerOf(CUSTOMER), "1hr", "order_1");
});

step("20 concurrent buyPlan calls with one new orderId: all succeed, one debit, one grant", async () => {
  const before = await credits(CUSTOMER);
  const entriesBefore = (await ledgerOf(CUSTOMER)).length;
  const results = await Promise.all(Array.from({ length: 20 }, () => buy("1hr", "order_race")));
  assert.deepEqual(results, Array(20).fill({ success: true }));
  const c = await credits(CUSTOMER);
  assert.equal(c.balance, before.balance - 100000 + 50000, "balance after one 1hr purchase");
  const entries = await ledgerOf(CUSTOMER);
  assertPurchased(entries, "1hr", "order_race");
  const debitEntries = operation(entries, "plan-debit:1hr:order_race").entries.length;
  assert.equal(entries.length, entriesBefore + debitEntries + 1, "the race wrote more than one debit and one grant");
  assert.equal((c.blocks ?? []).filter((b) => b.metadata.order_id === "order_race").length, 1, "want one plan block for order_race");
});

// The seed's balance check is not a lock: a racer checking between another's
// debit and grant answers insufficient_wallet though the order is bought.
step("20 racing buyPlan calls on a tight wallet: at least one success, still one debit, one grant", async () => {
  const before = await credits(CUSTOMER);
  assert.ok(before.effective_balance >= 300000 && before.effective_balance - 300000 < 300000, `setup: balance ${before.effective_balance}`);
  const results = await Promise.all(Array.from({ length: 20 }, () => buy("24hr", "order_tight")));
  for (const r of results) {
    assert.ok(r.success || r.reason === "insufficient_wallet", `unexpected result ${JSON.stringify(r)}`);
  }
  assert.ok(results.some((r) => r.success), "no racer bought the plan");
  const c = await credits(CUSTOMER);
  assert.equal(c.balance, before.balance - 300000 + 200000, "balance after one 24hr purchase");
  assertPurchased(await ledgerOf(CUSTOMER), "24hr", "order_tight");
  assert.deepEqual(await buy("24hr", "order_tight"), { success: true });
  assert.equal((await credits(CUSTOMER)).balance, c.balance);
});

step("weekly plan larger than the wallet: insufficient_wallet, nothing changes", async () => {
  const before = await snapshot(CUSTOMER);
  assert.ok(before.effective_balance < 800000, "the setup should leave less than a weekly plan");
  assert.deepEqual(await buy("weekly", "order_weekly"), { success: false, reason: "insufficient_wallet" });
  assert.deepEqual(await buy("monthly", "order_weekly"), { success: false, reason: "unknown_plan" });
  assert.deepEqual(await snapshot(CUSTOMER), before);
});

step("a direct debit of the weekly price throws InsufficientCreditsError (402), nothing debited, not replayed", async () => {
  const before = await snapshot(CUSTOMER);
  for (let i = 0; i < 2; i++) {
    const err = await rejects(
      () =>
        creditd.recordUsage(
          { external_customer_id: CUSTOMER, billable_metric_key: "plan_purchase_weekly", units: 800000, metadata: { plan_type: "weekly", order_id: "order_weekly" } },
          { idempotencyKey: "plan-debit:weekly:order_weekly" },
        ),
      `direct weekly debit (attempt ${i + 1})`,
    );
    assert.ok(err instanceof InsufficientCreditsError, `want an InsufficientCreditsError, got ${String(err)}`);
    assert.ok(err instanceof CreditdError);
    assert.equal(err.status, 402);
    assert.equal(err.code, "insufficient-credits");
    assert.equal(err.problem?.status, 402);
    assert.equal(err.type, "/problems/insufficient-credits");
    assert.ok(err.detail && err.detail.length > 0, "a 402 has a detail");
    assert.equal(err.required, 800000);
    assert.equal(err.available, before.effective_balance);
    assert.match(err.requestId ?? "", /.+/, "X-Request-Id");
  }
  // The raw client sees the same problem, and no replay header.
  const res = await creditd.raw.POST("/v1/usage", {
    params: { header: { "Idempotency-Key": "plan-debit:weekly:order_weekly" } },
    body: { external_customer_id: CUSTOMER, billable_metric_key: "plan_purchase_weekly", units: 800000 },
  });
  assert.equal(res.response.status, 402);
  assert.match(res.response.headers.get("content-type") ?? "", /^application\/problem\+json/);
  assert.equal(res.response.headers.get("x-idempotent-replayed"), null, "a 402 must not be replayed");
  assert.deepEqual(await snapshot(CUSTOMER), before, "a refused debit changed something");
});

step("plan credits (priority 10) burn before wallet credits", async () => {
  const before = await credits(CUSTOMER);
  const wallet = walletBlock(before).remaining_amount;
  const plans = (before.blocks ?? []).filter((b) => b.priority === 10 && b.remaining_amount > 0);
  const first = plans[0]; // burn order: the live plan block that expires first
  assert.ok(first, "no plan credits left to burn");
  const used = await creditd.recordUsage(
    { external_customer_id: CUSTOMER, billable_metric_key: "chat_message", units: 3 },
    { idempotencyKey: `e2e-chat:${RUN}:1` },
  );
  assert.equal(used.estimated_cost, 3000);
  const after = await credits(CUSTOMER);
  assert.equal(after.balance, before.balance - 3000);
  assert.equal(walletBlock(after).remaining_amount, wallet, "the wallet paid for chat while plan credits were left");
  const blocks = after.blocks ?? [];
  assert.equal(blocks.find((b) => b.id === first.id)?.remaining_amount, first.remaining_amount - 3000, `want the chat paid from plan block ${first.id}`);
  assert.ok(blocks.findIndex((b) => b.id === first.id) < blocks.findIndex((b) => b.priority === 0), "blocks are not listed in burn order");
  const e = operation(await ledgerOf(CUSTOMER), `e2e-chat:${RUN}:1`).entries;
  assert.deepEqual(
    e.map((x) => [x.block_id, x.delta]),
    [[first.id, -3000]],
  );
});

step("paywall: a short wallet is refused, recharged, and the same orderId then buys the plan", async () => {
  const other = "user99:companion3";
  await grantWallet(other, 150000, `e2e-wallet:${other}:${RUN}:1`);

  // Between the balance check and the debit another request drains the
  // wallet (the check is not a lock): the debit's 402 is the answer. The
  // drain runs in a fetch given to a second client.
  let drained = false;
  const draining = createClient({
    baseUrl: BASE_URL,
    apiKey: API_KEY,
    fetch: async (req) => {
      const res = await globalThis.fetch(req);
      if (!drained && req.url.endsWith("/credits?include_blocks=true")) {
        drained = true;
        await creditd.recordUsage({ external_customer_id: other, billable_metric_key: "chat_message", units: 100 }, { idempotencyKey: `e2e-drain:${RUN}` });
      }
      return res;
    },
  });
  assert.deepEqual(await buyPlan(draining, other, "1hr", "order_paywall"), { success: false, reason: "insufficient_wallet" });
  assert.ok(drained, "the drain did not run");
  let c = await credits(other);
  assert.equal(c.balance, 50000, "the refused debit took credits");
  assert.equal(operation(await ledgerOf(other), "plan-debit:1hr:order_paywall").entries.length, 0, "a refused debit is in the ledger");

  // Still short: refused by the balance check.
  assert.deepEqual(await buyPlan(creditd, other, "1hr", "order_paywall"), { success: false, reason: "insufficient_wallet" });

  // Recharge and retry the same order: the earlier 402 was not stored.
  await grantWallet(other, 100000, `e2e-wallet:${other}:${RUN}:2`);
  assert.deepEqual(await buyPlan(creditd, other, "1hr", "order_paywall"), { success: true });
  c = await credits(other);
  assert.equal(c.balance, 150000 - 100000 + 50000);
  assert.equal(planBlock(c, "order_paywall")?.remaining_amount, 50000);
  assertPurchased(await ledgerOf(other), "1hr", "order_paywall");
  // And once more: a replay, nothing new.
  const before = await snapshot(other);
  assert.deepEqual(await buyPlan(creditd, other, "1hr", "order_paywall"), { success: true });
  assert.deepEqual(await snapshot(other), before);
});

step("the ledger adds up: Σ delta = balance for both customers", async () => {
  for (const e of [CUSTOMER, "user99:companion3"]) {
    const c = await credits(e);
    const sum = (await ledger(ext(e))).reduce((s, x) => s + x.delta, 0);
    assert.equal(sum, c.balance, `ledger of ${e} sums to ${sum}, balance is ${c.balance}`);
  }
});

await run();
