// A TypeScript client for creditd's HTTP API.
//
// Its types are generated from creditd's OpenAPI document by
// openapi-typescript (src/schema.ts, never edited by hand: npm run
// generate), and its requests go through openapi-fetch, which types every
// path, parameter, body and answer from them. On top of that:
//
//   - every POST and PATCH carries an Idempotency-Key: the caller's, else a
//     UUID generated once per call; every retry of the call sends the same;
//   - 429 and 503 are retried after Retry-After (else an exponential
//     backoff with jitter), and so are network errors, a bounded number of
//     times (see retry.ts);
//   - a non-2xx answer throws a CreditdError carrying the problem+json
//     (an InsufficientCreditsError, with required and available, for a 402).
//
//   const creditd = createClient({ baseUrl: "http://127.0.0.1:8080", apiKey: "qs_test_…" });
//   const res = await creditd.recordUsage({ external_customer_id: "u1", billable_metric_key: "tokens", units: 10 },
//                                         { idempotencyKey: `chat-msg:${messageId}` });
//
// Every operation of the document is also reachable, typed, through
// creditd.raw (openapi-fetch's GET/POST/PATCH answering {data, error,
// response}, with the same keys and retries, Idempotency-Key optional).

import createFetchClient from "openapi-fetch";
import type { Client } from "openapi-fetch";

import { CreditdError } from "./errors.js";
import { type FetchLike, type RetryPolicy, withIdempotencyAndRetries } from "./retry.js";
import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";
export { CreditdError, InsufficientCreditsError, isCreditdError, isProblem, parseRetryAfter } from "./errors.js";
export type { FieldError, Problem, ProblemCode } from "./errors.js";
export { backoffMs, defaultRetryPolicy, newIdempotencyKey, withIdempotencyAndRetries } from "./retry.js";
export type { FetchLike, RetryInfo, RetryPolicy } from "./retry.js";

/** The document's schemas, by name: Schemas["Balance"], Schemas["UsageEvent"]… */
export type Schemas = components["schemas"];
export type Balance = Schemas["Balance"];
export type BillableMetric = Schemas["BillableMetric"];
export type BillableMetricCreate = Schemas["BillableMetricCreate"];
export type Block = Schemas["Block"];
export type Customer = Schemas["Customer"];
export type CustomerCreate = Schemas["CustomerCreate"];
export type CustomerGrant = Schemas["CustomerGrant"];
export type CustomerList = Schemas["CustomerList"];
export type Entitlement = Schemas["Entitlement"];
export type LedgerEntry = Schemas["LedgerEntry"];
export type LedgerEntryList = Schemas["LedgerEntryList"];
export type MeteringRule = Schemas["MeteringRule"];
export type MeteringRuleCreate = Schemas["MeteringRuleCreate"];
export type Plan = Schemas["Plan"];
export type PlanCreate = Schemas["PlanCreate"];
export type PlanList = Schemas["PlanList"];
export type PlanPurchase = Schemas["PlanPurchase"];
export type PlanPurchaseCreate = Schemas["PlanPurchaseCreate"];
export type PlanPurchaseList = Schemas["PlanPurchaseList"];
export type Reservation = Schemas["Reservation"];
export type ReservationCommit = Schemas["ReservationCommit"];
export type ReservationCreate = Schemas["ReservationCreate"];
export type TopupGrant = Schemas["TopupGrant"];
export type Transaction = Schemas["Transaction"];
export type TransactionCreate = Schemas["TransactionCreate"];
export type UsageBatch = Schemas["UsageBatch"];
export type UsageBatchResult = Schemas["UsageBatchResult"];
export type UsageEvent = Schemas["UsageEvent"];
export type UsageResult = Schemas["UsageResult"];
export type LedgerEntryType = NonNullable<NonNullable<operations["listLedgerEntries"]["parameters"]["query"]>["type"]>;

/**
 * An operation with its required Idempotency-Key header made optional: the
 * client sends a generated one when the caller gives none.
 */
type WithOptionalIdempotencyKey<Op> = Op extends { parameters: { header: infer H } }
  ? "Idempotency-Key" extends keyof H
    ? Omit<Op, "parameters"> & {
        parameters: Omit<Op["parameters"], "header"> & {
          header?: Omit<H, "Idempotency-Key"> & { "Idempotency-Key"?: string };
        };
      }
    : Op
  : Op;

/** The document's paths as the client takes them: Idempotency-Key optional. */
export type ClientPaths = {
  [P in keyof paths]: {
    [M in keyof paths[P]]: M extends "parameters" ? paths[P][M] : WithOptionalIdempotencyKey<paths[P][M]>;
  };
};

/** The media types the client reads: answers and problems. */
export type JSONMedia = "application/json" | "application/problem+json";

/** The typed openapi-fetch client behind creditd.raw. */
export type RawClient = Client<ClientPaths, JSONMedia>;

export interface ClientOptions {
  /**
   * The server's root URL, e.g. http://127.0.0.1:8080: the document's
   * paths carry /v1 (a trailing /v1 is dropped).
   */
  baseUrl: string;
  /** A qs_test_… or qs_live_… key, sent as X-API-Key. */
  apiKey: string;
  /** Retries after the first attempt (a number), or the whole policy; 0 never retries. Default 3. */
  retries?: number | RetryPolicy;
  /** The fetch each attempt is sent with (default globalThis.fetch). */
  fetch?: FetchLike;
  /** Headers sent with every request, e.g. a User-Agent. */
  headers?: Record<string, string>;
}

/** Options of one call. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of one call that changes something. */
export interface MutationOptions extends CallOptions {
  /**
   * The operation's identity (at most 256 characters): a retry with the same
   * key gets the stored answer and never applies twice. Default: a UUID
   * generated for this call, reused by its automatic retries only; pass your
   * own to make retries across calls (or processes) safe.
   */
  idempotencyKey?: string;
}

/** A page of a list. */
export interface PageOptions extends CallOptions {
  /** 1–500, default 50. */
  limit?: number;
  /** The next_cursor of the page before. */
  cursor?: string;
}

/** A customer, by creditd's id or by your external id. */
export type CustomerRef = { customerId: string; externalId?: never } | { externalId: string; customerId?: never };

export interface CreditdClient {
  /** Every operation of the document, typed, with the same keys and retries: {data, error, response}, never throws on a status. */
  readonly raw: RawClient;

  /** POST /v1/customers */
  createCustomer(body: CustomerCreate, options?: MutationOptions): Promise<Customer>;
  /** GET /v1/customers/{customer_id}, GET /v1/customer-by-external-id/{external_id} */
  getCustomer(customer: CustomerRef, options?: CallOptions): Promise<Customer>;
  /** GET /v1/customers */
  listCustomers(options?: PageOptions): Promise<CustomerList>;

  /** POST /v1/billable-metrics */
  createBillableMetric(body: BillableMetricCreate, options?: MutationOptions): Promise<BillableMetric>;
  /** POST /v1/metering-rules */
  createMeteringRule(body: MeteringRuleCreate, options?: MutationOptions): Promise<MeteringRule>;

  /** POST /v1/usage: 402 (InsufficientCreditsError) when the cost exceeds the effective balance; nothing is written then. */
  recordUsage(body: UsageEvent, options?: MutationOptions): Promise<UsageResult>;
  /** POST /v1/usage/batch */
  recordUsageBatch(body: UsageBatch, options?: MutationOptions): Promise<UsageBatchResult>;

  /** POST /v1/topup/grant: grants credits to an external customer, creating it when unknown. */
  topupGrant(body: TopupGrant, options?: MutationOptions): Promise<Block>;
  /** POST /v1/customers/{customer_id}/credits/grant, POST /v1/customer-by-external-id/{external_id}/credits/grant */
  grantCredits(customer: CustomerRef, body: CustomerGrant, options?: MutationOptions): Promise<Block>;

  /** GET …/credits: the balance, and the live blocks in burn order with includeBlocks. */
  getBalance(customer: CustomerRef, options?: CallOptions & { includeBlocks?: boolean }): Promise<Balance>;
  /** GET …/ledger: newest first. */
  listLedgerEntries(customer: CustomerRef, options?: PageOptions & { type?: LedgerEntryType }): Promise<LedgerEntryList>;
  /** GET …/entitlements/{key}: whether units of the metric are affordable now. */
  checkEntitlement(customer: CustomerRef, metricKey: string, options?: CallOptions & { units?: number }): Promise<Entitlement>;

  /** POST /v1/plans */
  createPlan(body: PlanCreate, options?: MutationOptions): Promise<Plan>;
  /** GET /v1/plans/{key} */
  getPlan(key: string, options?: CallOptions): Promise<Plan>;
  /** GET /v1/plans */
  listPlans(options?: PageOptions): Promise<PlanList>;
  /** POST /v1/plans/{key}/archive */
  archivePlan(key: string, options?: MutationOptions): Promise<Plan>;

  /**
   * POST …/plan-purchases: debits the plan's price and grants its credits
   * atomically. The order id is the purchase's identity: buying an order
   * again answers its purchase with duplicate: true, under any key.
   */
  purchasePlan(customer: CustomerRef, body: PlanPurchaseCreate, options?: MutationOptions): Promise<PlanPurchase>;
  /** GET /v1/plan-purchases/{id} */
  getPlanPurchase(id: string, options?: CallOptions): Promise<PlanPurchase>;
  /** GET …/plan-purchases: newest first. */
  listPlanPurchases(customer: CustomerRef, options?: PageOptions): Promise<PlanPurchaseList>;

  /** POST /v1/reserve */
  createReservation(body: ReservationCreate, options?: MutationOptions): Promise<Reservation>;
  /** POST /v1/reserve/{id}/commit */
  commitReservation(id: string, body?: ReservationCommit, options?: MutationOptions): Promise<Reservation>;
  /** POST /v1/reserve/{id}/release */
  releaseReservation(id: string, options?: MutationOptions): Promise<Reservation>;
  /** GET /v1/reserve/{id} */
  getReservation(id: string, options?: CallOptions): Promise<Reservation>;

  /** POST /v1/transactions: usage and grants applied together, or not at all. */
  createTransaction(body: TransactionCreate, options?: MutationOptions): Promise<Transaction>;
  /** GET /v1/transactions/{id} */
  getTransaction(id: string, options?: CallOptions): Promise<Transaction>;
}

/** The answer of a raw call, as openapi-fetch gives it. */
interface RawResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** ok returns a raw call's data, or throws the CreditdError of its answer. */
async function ok<T>(method: string, call: Promise<RawResult<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) {
    throw CreditdError.from({ method, url: response.url, status: response.status, body: error, headers: response.headers });
  }
  if (data === undefined) {
    throw new Error(`creditd: ${method} ${response.url}: ${response.status} with an empty body`);
  }
  return data;
}

function key(options: MutationOptions | undefined): { "Idempotency-Key"?: string } {
  return options?.idempotencyKey === undefined ? {} : { "Idempotency-Key": options.idempotencyKey };
}

function page(options: PageOptions | undefined): { limit?: number; cursor?: string } {
  return { limit: options?.limit, cursor: options?.cursor };
}

/** createClient returns a client of the creditd at baseUrl. */
export function createClient(options: ClientOptions): CreditdClient {
  if (!options.baseUrl) throw new TypeError("createClient: baseUrl is required");
  if (!options.apiKey) throw new TypeError("createClient: apiKey is required");
  const policy: RetryPolicy = typeof options.retries === "number" ? { maxRetries: options.retries } : (options.retries ?? {});
  const base: FetchLike = options.fetch ?? ((req: Request) => globalThis.fetch(req));
  const raw: RawClient = createFetchClient<ClientPaths, JSONMedia>({
    baseUrl: options.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, ""),
    headers: { ...options.headers, "X-API-Key": options.apiKey },
    fetch: withIdempotencyAndRetries(base, policy),
  });

  return {
    raw,

    createCustomer: (body, o) => ok("POST", raw.POST("/v1/customers", { params: { header: key(o) }, body, signal: o?.signal })),
    getCustomer: (c, o) =>
      c.externalId !== undefined
        ? ok("GET", raw.GET("/v1/customer-by-external-id/{external_id}", { params: { path: { external_id: c.externalId } }, signal: o?.signal }))
        : ok("GET", raw.GET("/v1/customers/{customer_id}", { params: { path: { customer_id: c.customerId } }, signal: o?.signal })),
    listCustomers: (o) => ok("GET", raw.GET("/v1/customers", { params: { query: page(o) }, signal: o?.signal })),

    createBillableMetric: (body, o) => ok("POST", raw.POST("/v1/billable-metrics", { params: { header: key(o) }, body, signal: o?.signal })),
    createMeteringRule: (body, o) => ok("POST", raw.POST("/v1/metering-rules", { params: { header: key(o) }, body, signal: o?.signal })),

    recordUsage: (body, o) => ok("POST", raw.POST("/v1/usage", { params: { header: key(o) }, body, signal: o?.signal })),
    recordUsageBatch: (body, o) => ok("POST", raw.POST("/v1/usage/batch", { params: { header: key(o) }, body, signal: o?.signal })),

    topupGrant: (body, o) => ok("POST", raw.POST("/v1/topup/grant", { params: { header: key(o) }, body, signal: o?.signal })),
    grantCredits: (c, body, o) =>
      c.externalId !== undefined
        ? ok(
            "POST",
            raw.POST("/v1/customer-by-external-id/{external_id}/credits/grant", {
              params: { path: { external_id: c.externalId }, header: key(o) },
              body,
              signal: o?.signal,
            }),
          )
        : ok(
            "POST",
            raw.POST("/v1/customers/{customer_id}/credits/grant", {
              params: { path: { customer_id: c.customerId }, header: key(o) },
              body,
              signal: o?.signal,
            }),
          ),

    getBalance: (c, o) => {
      const query = { include_blocks: o?.includeBlocks };
      return c.externalId !== undefined
        ? ok("GET", raw.GET("/v1/customer-by-external-id/{external_id}/credits", { params: { path: { external_id: c.externalId }, query }, signal: o?.signal }))
        : ok("GET", raw.GET("/v1/customers/{customer_id}/credits", { params: { path: { customer_id: c.customerId }, query }, signal: o?.signal }));
    },
    listLedgerEntries: (c, o) => {
      const query = { ...page(o), type: o?.type };
      return c.externalId !== undefined
        ? ok("GET", raw.GET("/v1/customer-by-external-id/{external_id}/ledger", { params: { path: { external_id: c.externalId }, query }, signal: o?.signal }))
        : ok("GET", raw.GET("/v1/customers/{customer_id}/ledger", { params: { path: { customer_id: c.customerId }, query }, signal: o?.signal }));
    },
    checkEntitlement: (c, metricKey, o) => {
      const query = { units: o?.units };
      return c.externalId !== undefined
        ? ok(
            "GET",
            raw.GET("/v1/customer-by-external-id/{external_id}/entitlements/{key}", {
              params: { path: { external_id: c.externalId, key: metricKey }, query },
              signal: o?.signal,
            }),
          )
        : ok(
            "GET",
            raw.GET("/v1/customers/{customer_id}/entitlements/{key}", {
              params: { path: { customer_id: c.customerId, key: metricKey }, query },
              signal: o?.signal,
            }),
          );
    },

    createPlan: (body, o) => ok("POST", raw.POST("/v1/plans", { params: { header: key(o) }, body, signal: o?.signal })),
    getPlan: (k, o) => ok("GET", raw.GET("/v1/plans/{key}", { params: { path: { key: k } }, signal: o?.signal })),
    listPlans: (o) => ok("GET", raw.GET("/v1/plans", { params: { query: page(o) }, signal: o?.signal })),
    archivePlan: (k, o) => ok("POST", raw.POST("/v1/plans/{key}/archive", { params: { path: { key: k }, header: key(o) }, signal: o?.signal })),

    purchasePlan: (c, body, o) =>
      c.externalId !== undefined
        ? ok(
            "POST",
            raw.POST("/v1/customer-by-external-id/{external_id}/plan-purchases", {
              params: { path: { external_id: c.externalId }, header: key(o) },
              body,
              signal: o?.signal,
            }),
          )
        : ok(
            "POST",
            raw.POST("/v1/customers/{customer_id}/plan-purchases", {
              params: { path: { customer_id: c.customerId }, header: key(o) },
              body,
              signal: o?.signal,
            }),
          ),
    getPlanPurchase: (id, o) => ok("GET", raw.GET("/v1/plan-purchases/{id}", { params: { path: { id } }, signal: o?.signal })),
    listPlanPurchases: (c, o) =>
      c.externalId !== undefined
        ? ok(
            "GET",
            raw.GET("/v1/customer-by-external-id/{external_id}/plan-purchases", {
              params: { path: { external_id: c.externalId }, query: page(o) },
              signal: o?.signal,
            }),
          )
        : ok(
            "GET",
            raw.GET("/v1/customers/{customer_id}/plan-purchases", {
              params: { path: { customer_id: c.customerId }, query: page(o) },
              signal: o?.signal,
            }),
          ),

    createReservation: (body, o) => ok("POST", raw.POST("/v1/reserve", { params: { header: key(o) }, body, signal: o?.signal })),
    commitReservation: (id, body, o) =>
      ok("POST", raw.POST("/v1/reserve/{id}/commit", { params: { path: { id }, header: key(o) }, body, signal: o?.signal })),
    releaseReservation: (id, o) => ok("POST", raw.POST("/v1/reserve/{id}/release", { params: { path: { id }, header: key(o) }, signal: o?.signal })),
    getReservation: (id, o) => ok("GET", raw.GET("/v1/reserve/{id}", { params: { path: { id } }, signal: o?.signal })),

    createTransaction: (body, o) => ok("POST", raw.POST("/v1/transactions", { params: { header: key(o) }, body, signal: o?.signal })),
    getTransaction: (id, o) => ok("GET", raw.GET("/v1/transactions/{id}", { params: { path: { id } }, signal: o?.signal })),
  };
}
