// Compile-time checks of the client's types: this file is only compiled
// (tsc --strict fails on a broken check), never run. @ts-expect-error
// lines must stay errors; the NoAny checks fail when an `any` reaches the
// client's public API.

import {
  type Balance,
  type ClientPaths,
  type CreditdClient,
  type PlanPurchase,
  type Problem,
  type ProblemCode,
  type UsageResult,
  CreditdError,
  InsufficientCreditsError,
  createClient,
} from "../src/index.js";
import type { paths } from "../src/schema.js";

type IsAny<T> = 0 extends 1 & T ? true : false;
/** true when T or one of its members (one level down) is any. */
type HasAny<T> = IsAny<T> extends true ? true : T extends object ? { [K in keyof T]-?: IsAny<T[K]> }[keyof T] : false;
type MethodHasAny<F> = F extends (...args: infer A) => infer R
  ? HasAny<Awaited<R>> | { [I in keyof A]-?: HasAny<NonNullable<A[I]>> }[number]
  : IsAny<F>;
type Methods = Exclude<keyof CreditdClient, "raw">;
type ClientHasAny = { [K in Methods]: MethodHasAny<CreditdClient[K]> }[Methods];

// `false` only if every member is false: boolean (some true) fails to assign.
export const clientHasNoAny: ClientHasAny extends false ? true : never = true;
export const errorHasNoAny: HasAny<CreditdError> extends false ? true : never = true;
export const insufficientHasNoAny: HasAny<InsufficientCreditsError> extends false ? true : never = true;
export const problemHasNoAny: HasAny<Problem> extends false ? true : never = true;

// The paths are the document's.
export const samePaths: keyof ClientPaths extends keyof paths ? (keyof paths extends keyof ClientPaths ? true : never) : never = true;

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export const usageReturns: Equal<Awaited<ReturnType<CreditdClient["recordUsage"]>>, UsageResult> = true;
export const purchaseReturns: Equal<Awaited<ReturnType<CreditdClient["purchasePlan"]>>, PlanPurchase> = true;
export const balanceReturns: Equal<Awaited<ReturnType<CreditdClient["getBalance"]>>, Balance> = true;
export const codeIsTheDocuments: Equal<NonNullable<CreditdError["code"]>, ProblemCode> = true;
export const insufficientRequired: Equal<InsufficientCreditsError["required"], number> = true;

export async function checks(): Promise<void> {
  const c = createClient({ baseUrl: "http://127.0.0.1:8080", apiKey: "qs_test_x" });

  // The wrappers: bodies typed from the document.
  await c.recordUsage({ external_customer_id: "u", billable_metric_key: "m", units: 1 });
  // @ts-expect-error units is an integer, not a string
  await c.recordUsage({ external_customer_id: "u", billable_metric_key: "m", units: "1" });
  // @ts-expect-error billable_metric_key is required
  await c.recordUsage({ external_customer_id: "u", units: 1 });
  await c.purchasePlan({ externalId: "u" }, { plan_key: "p", order_id: "o" }, { idempotencyKey: "k" });
  // @ts-expect-error a customer is named by customerId or externalId, not both
  await c.getBalance({ customerId: "a", externalId: "b" });
  // @ts-expect-error the ledger's type is the document's enum
  await c.listLedgerEntries({ externalId: "u" }, { type: "refund" });

  // The raw client: every path of the document, Idempotency-Key optional.
  await c.raw.POST("/v1/usage", { body: { external_customer_id: "u", billable_metric_key: "m", units: 1 } });
  await c.raw.POST("/v1/usage", { params: { header: { "Idempotency-Key": "k" } }, body: { external_customer_id: "u", billable_metric_key: "m", units: 1 } });
  // @ts-expect-error not a path of the document
  await c.raw.GET("/v1/nope");
  // @ts-expect-error the plan's key is a required path parameter
  await c.raw.GET("/v1/plans/{key}", {});
  const r = await c.raw.GET("/v1/plans/{key}", { params: { path: { key: "pro" } } });
  if (r.data) {
    const price: number = r.data.price;
    // @ts-expect-error a plan has no such member
    void r.data.no_such_member;
    void price;
  } else {
    const code: ProblemCode | undefined = r.error?.code;
    void code;
  }

  try {
    await c.recordUsage({ external_customer_id: "u", billable_metric_key: "m", units: 1 });
  } catch (e) {
    if (e instanceof InsufficientCreditsError) {
      const need: number = e.required - e.available;
      void need;
    } else if (e instanceof CreditdError && e.code === "idempotency-key-reused") {
      const s: number = e.status;
      void s;
    }
  }
}
