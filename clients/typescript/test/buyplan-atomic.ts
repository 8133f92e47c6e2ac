// creditd's one-call plan purchase written with the TypeScript client, and
// the scenario of test/e2e/buyplan-atomic.mjs run with it: plans created
// over the API, one POST …/plan-purchases per order, retries answering
// duplicate under any key (20 racing), plan credits never paying for the
// next plan, a 402 with only payable credits available, the paywall,
// order-exists and archived plans.
//
//   API_BASE=http://127.0.0.1:8080/v1 API_KEY=qs_test_... node dist/test/buyplan-atomic.js
//
// go test ./cmd/creditd compiles it (tsc --strict) and runs it against a
// fresh SQLite file and a fresh PostgreSQL database (TestTypeScriptClient).

import assert from "node:assert/strict";

import { type PlanPurchase, CreditdError, InsufficientCreditsError } from "../src/index.js";
import { RUN, creditd, credits, ext, grantWallet, ledger, rejects, run, snapshot, sleep, step, walletBlock } from "./harness.js";

// ---- buyPlan, as one call ---------------------------------------------------------

const PLANS: Record<string, { price: number; credits: number; durationSeconds: number }> = {
  "1hr": { price: 100000, credits: 50000, durationSeconds: 3600 },
  "24hr": { price: 300000, credits: 200000, durationSeconds: 86400 },
  weekly: { price: 800000, credits: 600000, durationSeconds: 604800 },
};

/** planKey is the plan's key on the server (run-unique: plans are immutable). */
const planKey = (planType: string): string => `${planType}.${RUN}`;

type BuyPlanResult =
  | { success: true; duplicate: boolean; purchase: PlanPurchase }
  | { success: false; reason: "unknown_plan" | "insufficient_wallet" };

/**
 * buyPlan buys planType for the customer in one atomic call: the wallet is
 * debited and the plan block granted together, or nothing happens. The
 * order id is the purchase's identity, so retrying with the same orderId
 * never buys twice, under any Idempotency-Key; the client retries 429, 503
 * and network errors itself, with the call's key.
 */
async function buyPlan(customerID: string, planType: string, orderId: string, idempotencyKey = `plan-purchase:${planType}:${orderId}`): Promise<BuyPlanResult> {
  if (!PLANS[planType]) {
    return { success: false, reason: "unknown_plan" };
  }
  try {
    const purchase = await creditd.purchasePlan(
      { externalId: customerID },
      { plan_key: planKey(planType), order_id: orderId, metadata: { plan_type: planType, order_id: orderId } },
      { idempotencyKey },
    );
    return { success: true, duplicate: purchase.duplicate, purchase };
  } catch (err) {
    if (err instanceof InsufficientCreditsError) {
      // Nothing was debited or granted: show the recharge paywall.
      return { success: false, reason: "insufficient_wallet" };
    }
    throw err; // a 5xx or network error after the retries: retry with the same orderId
  }
}

function bought(r: BuyPlanResult): { duplicate: boolean; purchase: PlanPurchase } {
  assert.ok(r.success, `want a purchase, got ${JSON.stringify(r)}`);
  return r;
}

// ---- Helpers -----------------------------------------------------------------------

/** assertPurchased checks a purchase's ledger: one purchase debit per block paid from, one grant. */
async function assertPurchased(externalId: string, purchase: PlanPurchase): Promise<void> {
  const mine = (await ledger(ext(externalId))).filter((e) => e.reference_type === "plan_purchase" && e.reference_id === purchase.id);
  const debits = mine.filter((e) => e.type === "purchase");
  const grants = mine.filter((e) => e.type === "grant");
  assert.equal(mine.length, debits.length + grants.length, `purchase ${purchase.id} has entries of other types`);
  assert.deepEqual(
    debits.map((e) => [e.block_id, -e.delta]).sort(),
    purchase.debits.map((d) => [d.block_id, d.amount]).sort(),
    `purchase entries of ${purchase.id} are not its debits`,
  );
  assert.equal(debits.reduce((s, e) => s - e.delta, 0), purchase.price, `purchase ${purchase.id} debited other than its price`);
  assert.equal(grants.length, 1, `purchase ${purchase.id} has ${grants.length} grant entries, want 1`);
  assert.equal(grants[0]?.delta, purchase.credits);
  assert.equal(grants[0]?.block_id, purchase.block.id);
}

// ---- The scenario (test/e2e/buyplan-atomic.mjs's) ---------------------------------

const CUSTOMER = `user42:companion7:${RUN}`;
const WALLET = 500000;

step("setup: the plan catalog and a 500,000 mc wallet", async () => {
  for (const [type, p] of Object.entries(PLANS)) {
    const plan = await creditd.createPlan(
      { key: planKey(type), name: `${type} plan`, price: p.price, credits: p.credits, duration_seconds: p.durationSeconds },
      { idempotencyKey: `e2e-plan:${type}:${RUN}` },
    );
    assert.match(plan.id, /^pln_/);
    assert.equal(plan.priority, 10, "plan credits burn before the wallet by default");
    assert.equal(plan.pay_from_max_priority, 0, "plans are paid from the wallet only by default");
    assert.equal(plan.duration_seconds, p.durationSeconds);
    assert.equal(plan.active, true);
  }
  const err = await rejects(
    () => creditd.createPlan({ key: planKey("1hr"), name: "x", price: 1, credits: 1 }, { idempotencyKey: `e2e-plan-again:${RUN}` }),
    "a plan key taken",
  );
  assert.ok(err instanceof CreditdError && err.status === 409 && err.code === "plan-exists", `want 409 plan-exists, got ${String(err)}`);
  await grantWallet(CUSTOMER, WALLET, `e2e-wallet:${CUSTOMER}:1`);
  assert.equal((await credits(CUSTOMER)).balance, WALLET);
});

let first: PlanPurchase; // the purchase of order_1
step("buy 1hr in one call: the wallet pays 100,000, a priority-10 block of 50,000 expires in an hour", async () => {
  const r = bought(await buyPlan(CUSTOMER, "1hr", "order_1"));
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
  assert.ok(first.block.expires_at !== null, "a plan block expires");
  assert.equal(Date.parse(first.block.expires_at) - Date.parse(first.created_at), 3600 * 1000, "expires_at = purchase time + duration, to the millisecond");
  assert.deepEqual(first.metadata, { plan_type: "1hr", order_id: "order_1" });
  assert.equal(c.balance, first.balance_after);
  assert.equal(wallet.remaining_amount, WALLET - 100000);
  assert.equal(c.blocks?.[0]?.id, first.block.id, "the plan block comes first in burn order");
  await assertPurchased(CUSTOMER, first);
});

step("retry of order_1: duplicate, the same purchase, nothing changes", async () => {
  const before = await snapshot(CUSTOMER);
  await sleep(5);
  // The same Idempotency-Key: the stored answer, replayed.
  const res = await creditd.raw.POST("/v1/customer-by-external-id/{external_id}/plan-purchases", {
    params: { path: { external_id: CUSTOMER }, header: { "Idempotency-Key": "plan-purchase:1hr:order_1" } },
    body: { plan_key: planKey("1hr"), order_id: "order_1" },
  });
  assert.equal(res.response.status, 201, `replayed purchase: ${JSON.stringify(res.error)}`);
  assert.equal(res.response.headers.get("x-idempotent-replayed"), "true");
  assert.ok(res.data);
  assert.equal(res.data.duplicate, true);
  assert.deepEqual({ ...res.data, duplicate: false }, first, "a replay is the first answer");
  // Another Idempotency-Key (a second device, a lost key): the order answers.
  const again = bought(await buyPlan(CUSTOMER, "1hr", "order_1", `another-key:${RUN}`));
  assert.equal(again.duplicate, true);
  assert.equal(again.purchase.id, first.id);
  assert.equal(again.purchase.block.expires_at, first.block.expires_at, "a retry never moves the expiry");
  // No key at all: the client generates one, and the order still answers.
  const generated = await creditd.purchasePlan({ externalId: CUSTOMER }, { plan_key: planKey("1hr"), order_id: "order_1" });
  assert.equal(generated.duplicate, true);
  assert.equal(generated.id, first.id);
  assert.deepEqual(await snapshot(CUSTOMER), before, "a retry changed the balance or the ledger");
});

step("20 racing retries of one new order under different keys: one purchase, the others duplicates", async () => {
  const before = await credits(CUSTOMER);
  const results = (await Promise.all(Array.from({ length: 20 }, (_, i) => buyPlan(CUSTOMER, "1hr", "order_race", `race:${RUN}:${i % 10}`)))).map(bought);
  assert.equal(results.filter((r) => !r.duplicate).length, 1, "want exactly one racer to buy, the others to see its purchase");
  assert.equal(new Set(results.map((r) => r.purchase.id)).size, 1, "racers answered different purchases");
  const c = await credits(CUSTOMER);
  assert.equal(c.balance, before.balance - 100000 + 50000, "balance after one 1hr purchase");
  assert.equal((c.blocks ?? []).filter((b) => b.source === "plan").length, 2, "want two plan blocks: order_1's and order_race's");
  const r0 = results[0];
  assert.ok(r0);
  await assertPurchased(CUSTOMER, r0.purchase);
});

step("plan credits do not pay for the next plan: 24hr is paid from the wallet alone", async () => {
  const before = await credits(CUSTOMER);
  const plans = (before.blocks ?? []).filter((b) => b.source === "plan");
  const wallet = walletBlock(before);
  assert.equal(wallet.remaining_amount, 300000);
  const r = bought(await buyPlan(CUSTOMER, "24hr", "order_24"));
  assert.deepEqual(r.purchase.debits, [{ block_id: wallet.id, amount: 300000 }]);
  const after = await credits(CUSTOMER);
  for (const p of plans) {
    assert.equal(after.blocks?.find((b) => b.id === p.id)?.remaining_amount, p.remaining_amount, `plan block ${p.id} paid for a plan`);
  }
  assert.equal((after.blocks ?? []).some((b) => b.metadata.source === "wallet_recharge"), false, "the wallet should be spent");
  await assertPurchased(CUSTOMER, r.purchase);
});

step("no wallet credits left: InsufficientCreditsError (402) with available = payable credits (0); nothing changes", async () => {
  const before = await snapshot(CUSTOMER);
  assert.ok(before.effective_balance >= 100000, "the balance (plan credits) would cover the price");
  for (let i = 0; i < 2; i++) {
    const err = await rejects(
      () =>
        creditd.purchasePlan(
          { externalId: CUSTOMER },
          { plan_key: planKey("1hr"), order_id: "order_paywall" },
          { idempotencyKey: "plan-purchase:1hr:order_paywall" },
        ),
      `purchase without wallet credits (attempt ${i + 1})`,
    );
    assert.ok(err instanceof InsufficientCreditsError, `want an InsufficientCreditsError, got ${String(err)}`);
    assert.equal(err.status, 402);
    assert.equal(err.code, "insufficient-credits");
    assert.equal(err.required, 100000);
    assert.equal(err.available, 0, "plan credits are not payable");
  }
  const res = await creditd.raw.POST("/v1/customer-by-external-id/{external_id}/plan-purchases", {
    params: { path: { external_id: CUSTOMER }, header: { "Idempotency-Key": "plan-purchase:1hr:order_paywall" } },
    body: { plan_key: planKey("1hr"), order_id: "order_paywall" },
  });
  assert.equal(res.response.status, 402);
  assert.match(res.response.headers.get("content-type") ?? "", /^application\/problem\+json/);
  assert.equal(res.response.headers.get("x-idempotent-replayed"), null, "a 402 must not be replayed");
  assert.deepEqual(await buyPlan(CUSTOMER, "1hr", "order_paywall"), { success: false, reason: "insufficient_wallet" });
  assert.deepEqual(await buyPlan(CUSTOMER, "monthly", "order_paywall"), { success: false, reason: "unknown_plan" });
  assert.deepEqual(await snapshot(CUSTOMER), before, "a refused purchase changed something");
});

step("paywall: recharge, and the same orderId and key then buy the plan", async () => {
  await grantWallet(CUSTOMER, 120000, `e2e-wallet:${CUSTOMER}:2`);
  const p = await creditd.getBalance(ext(CUSTOMER));
  const r = bought(await buyPlan(CUSTOMER, "1hr", "order_paywall"));
  assert.equal(r.duplicate, false);
  assert.equal(r.purchase.balance_after, p.balance - 100000 + 50000);
  assert.equal(walletBlock(await credits(CUSTOMER)).remaining_amount, 20000);
  await assertPurchased(CUSTOMER, r.purchase);
});

step("a new customer who cannot pay is not created", async () => {
  const other = `user77:companion1:${RUN}`;
  assert.deepEqual(await buyPlan(other, "1hr", "order_new"), { success: false, reason: "insufficient_wallet" });
  const err = await rejects(() => creditd.getCustomer(ext(other)), "the refused buyer");
  assert.ok(err instanceof CreditdError && err.status === 404 && err.code === "not-found", `want 404 not-found, got ${String(err)}`);
});

step("an order id names one purchase: the same order with another plan is 409 order-exists", async () => {
  const before = await snapshot(CUSTOMER);
  const err = await rejects(
    () => creditd.purchasePlan(ext(CUSTOMER), { plan_key: planKey("24hr"), order_id: "order_1" }, { idempotencyKey: `e2e-other-plan:${RUN}` }),
    "order_1 with another plan",
  );
  assert.ok(err instanceof CreditdError, String(err));
  assert.equal(err.status, 409);
  assert.equal(err.code, "order-exists");
  assert.equal(err.problem?.purchase_id, first.id);
  assert.deepEqual(await snapshot(CUSTOMER), before);
});

step("an archived plan cannot be bought; its orders still answer their purchase", async () => {
  const a = await creditd.archivePlan(planKey("1hr"), { idempotencyKey: `e2e-archive:${RUN}` });
  assert.equal(a.active, false);
  await grantWallet(CUSTOMER, 100000, `e2e-wallet:${CUSTOMER}:3`);
  const before = await snapshot(CUSTOMER);
  const err = await rejects(
    () => creditd.purchasePlan(ext(CUSTOMER), { plan_key: planKey("1hr"), order_id: "order_late" }, { idempotencyKey: `e2e-archived:${RUN}` }),
    "buying an archived plan",
  );
  assert.ok(err instanceof CreditdError && err.status === 409 && err.code === "plan-archived", `want 409 plan-archived, got ${String(err)}`);
  const r = bought(await buyPlan(CUSTOMER, "1hr", "order_1", `after-archive:${RUN}`));
  assert.equal(r.duplicate, true);
  assert.equal(r.purchase.id, first.id);
  assert.deepEqual(await snapshot(CUSTOMER), before);
});

step("the purchases read back, newest first, and the ledger adds up", async () => {
  const got = await creditd.getPlanPurchase(first.id);
  assert.equal(got.order_id, "order_1");
  assert.equal(got.duplicate, false);
  const list = await creditd.listPlanPurchases(ext(CUSTOMER));
  assert.deepEqual(
    list.data.map((p) => p.order_id),
    ["order_paywall", "order_24", "order_race", "order_1"],
  );
  const c = await credits(CUSTOMER);
  const sum = (await ledger(ext(CUSTOMER))).reduce((s, e) => s + e.delta, 0);
  assert.equal(sum, c.balance, `ledger sums to ${sum}, balance is ${c.balance}`);
});

step("an entitlement check and a linked transaction, through the typed calls", async () => {
  const metric = `chat.${RUN}`;
  await creditd.createBillableMetric({ key: metric, name: "chat" }, { idempotencyKey: `e2e-metric:${metric}` });
  const noRule = await rejects(() => creditd.checkEntitlement(ext(CUSTOMER), metric, { units: 1 }), "entitlement without a metering rule");
  assert.ok(noRule instanceof CreditdError && noRule.status === 422 && noRule.code === "no-metering-rule", `want 422 no-metering-rule, got ${String(noRule)}`);
  await creditd.createMeteringRule({ billable_metric_key: metric, cost_type: "per_unit", unit_cost: 1000 }, { idempotencyKey: `e2e-rule:${metric}` });
  const c = await credits(CUSTOMER);
  const ent = await creditd.checkEntitlement(ext(CUSTOMER), metric, { units: 2 });
  assert.equal(ent.allowed, true);
  assert.equal(ent.estimated_cost, 2000);
  assert.equal(ent.effective_balance, c.effective_balance);
  const tooMuch = await creditd.checkEntitlement(ext(CUSTOMER), metric, { units: 1_000_000 });
  assert.equal(tooMuch.allowed, false);

  const body = {
    operations: [
      { type: "usage" as const, external_customer_id: CUSTOMER, billable_metric_key: metric, units: 2 },
      { type: "grant" as const, external_customer_id: CUSTOMER, credits: 5000, metadata: { source: "tx" } },
    ],
  };
  const tx = await creditd.createTransaction(body, { idempotencyKey: `e2e-tx:${RUN}` });
  assert.equal(tx.results.length, 2);
  assert.equal((await creditd.getTransaction(tx.id)).id, tx.id);
  assert.equal((await credits(CUSTOMER)).balance, c.balance - 2000 + 5000);
  const again = await creditd.createTransaction(body, { idempotencyKey: `e2e-tx:${RUN}` });
  assert.equal(again.id, tx.id, "a replayed transaction is the same transaction");
  assert.equal((await credits(CUSTOMER)).balance, c.balance - 2000 + 5000, "a replayed transaction applied twice");
});

await run();
