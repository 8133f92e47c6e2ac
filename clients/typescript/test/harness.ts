// What the end-to-end scripts share: the server they run against (API_BASE
// and API_KEY, as for test/e2e/*.mjs), a client of it, reads of a
// customer's balance and ledger, and the step runner whose last line
// ("e2e: N passed, 0 failed") go test checks.

import assert from "node:assert/strict";

import { type Balance, type Block, type CreditdClient, type CustomerRef, type LedgerEntry, createClient } from "../src/index.js";

const apiBase = (process.env.API_BASE ?? "").replace(/\/+$/, "");
export const API_KEY = process.env.API_KEY ?? "";
if (!apiBase || !API_KEY) {
  console.error("e2e: set API_BASE (e.g. http://127.0.0.1:8080/v1) and API_KEY (a qs_test_ or qs_live_ key)");
  process.exit(2);
}
/** The server's root URL: the client's paths carry /v1. */
export const BASE_URL = apiBase.replace(/\/v1$/, "");

export const creditd: CreditdClient = createClient({ baseUrl: BASE_URL, apiKey: API_KEY });

/** A run-unique suffix for keys and names. */
export const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

export const ext = (externalId: string): CustomerRef => ({ externalId });

export function credits(externalId: string): Promise<Balance> {
  return creditd.getBalance(ext(externalId), { includeBlocks: true });
}

/** ledger returns every ledger entry of the customer, newest first. */
export async function ledger(customer: CustomerRef): Promise<LedgerEntry[]> {
  const all: LedgerEntry[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await creditd.listLedgerEntries(customer, { limit: 500, cursor });
    all.push(...page.data);
    if (!page.pagination.has_more || !page.pagination.next_cursor) return all;
    cursor = page.pagination.next_cursor;
  }
}

export interface Snapshot {
  balance: number;
  effective_balance: number;
  blocks: string[];
  ledger: string[];
}

/** snapshot is what must not change when nothing happens: balances, blocks and the ledger. */
export async function snapshot(externalId: string): Promise<Snapshot> {
  const c = await credits(externalId);
  return {
    balance: c.balance,
    effective_balance: c.effective_balance,
    blocks: (c.blocks ?? []).map((b) => `${b.id}:${b.remaining_amount}`).sort(),
    ledger: (await ledger(ext(externalId))).map((e) => e.id),
  };
}

export function walletBlock(c: Balance): Block {
  const ws = (c.blocks ?? []).filter((b) => b.metadata.source === "wallet_recharge");
  assert.equal(ws.length, 1, `want one wallet block, got ${ws.length}: ${JSON.stringify(c.blocks)}`);
  const w = ws[0];
  assert.ok(w);
  return w;
}

export async function grantWallet(externalId: string, amount: number, idempotencyKey: string): Promise<Block> {
  const b = await creditd.topupGrant(
    { external_customer_id: externalId, credits: amount, priority: 0, metadata: { source: "wallet_recharge" } },
    { idempotencyKey },
  );
  assert.equal(b.priority, 0);
  assert.equal(b.expires_at, null, "a wallet block does not expire");
  return b;
}

/** rejects asserts that fn throws, and returns what it threw. */
export async function rejects(fn: () => Promise<unknown>, what: string): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail(`${what}: want an error, got success`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Step = { name: string; fn: () => Promise<void> };
const steps: Step[] = [];

export function step(name: string, fn: () => Promise<void>): void {
  steps.push({ name, fn });
}

/** run runs the steps in order, stopping at the first failure, and exits. */
export async function run(): Promise<never> {
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
      const text = err instanceof Error ? (err.stack ?? String(err)) : String(err);
      console.log(text.replace(/^/gm, "     "));
      if (err instanceof Error && err.cause !== undefined) {
        console.log(`     cause: ${err.cause instanceof Error ? err.cause.message : String(err.cause)}`);
      }
      break; // later steps build on this one's state
    }
  }
  const skipped = steps.length - passed - failed;
  console.log(`e2e: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} not run` : ""}`);
  process.exit(failed ? 1 : 0);
}
