// Errors thrown by the client: every non-2xx answer becomes a CreditdError
// carrying the RFC 7807 problem creditd answered (application/problem+json).

import type { components } from "./schema.js";

/** The problem body creditd answers with every 4xx and 5xx, as the OpenAPI document describes it. */
export type Problem = components["schemas"]["Problem"];
/** A problem's `code`, the type's slug: switch on it. */
export type ProblemCode = Problem["code"];
/** One invalid field of a 400 `invalid-request`. */
export type FieldError = components["schemas"]["FieldError"];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * isProblem reports whether body is a creditd problem: it has the members
 * every problem has. (A code newer than this client's document passes too.)
 */
export function isProblem(body: unknown): body is Problem {
  return (
    isRecord(body) &&
    typeof body.type === "string" &&
    typeof body.title === "string" &&
    typeof body.status === "number" &&
    typeof body.detail === "string" &&
    typeof body.code === "string"
  );
}

function optionalNumber(v: unknown): number | undefined {
  return typeof v === "number" ? v : undefined;
}

/**
 * CreditdError is a non-2xx answer of creditd. The problem's members are
 * copied onto it (status, code, title, detail, and the extras some types
 * carry); problem is the whole body when it was a problem, body the raw
 * body otherwise (a proxy's HTML page, say).
 */
export class CreditdError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The problem type's slug, or undefined when the body was not a creditd problem. */
  readonly code: ProblemCode | undefined;
  /** The problem type, `/problems/<code>`. */
  readonly type: string | undefined;
  readonly title: string | undefined;
  /** What went wrong with this request, for humans. */
  readonly detail: string | undefined;
  /** `invalid-request` only: every invalid field. */
  readonly errors: readonly FieldError[] | undefined;
  /** `insufficient-credits` only: what the operation costs, in millicredits. */
  readonly required: number | undefined;
  /** `insufficient-credits` only: what could pay for it, in millicredits. */
  readonly available: number | undefined;
  /** The whole problem, when the body was one. */
  readonly problem: Problem | undefined;
  /** The body as answered (parsed JSON, or text), when it was not a problem. */
  readonly body: unknown;
  /** X-Request-Id of the answer: finds the request in the server's log. */
  readonly requestId: string | undefined;
  /** The Retry-After of a 429 or 503, in seconds, when the answer had one. */
  readonly retryAfterSeconds: number | undefined;
  /** The request's method and URL. */
  readonly method: string;
  readonly url: string;

  constructor(init: { method: string; url: string; status: number; body: unknown; headers: Headers }) {
    const problem = isProblem(init.body) ? init.body : undefined;
    super(
      problem
        ? `creditd: ${init.method} ${init.url}: ${init.status} ${problem.code}: ${problem.detail}`
        : `creditd: ${init.method} ${init.url}: HTTP ${init.status}`,
    );
    this.name = "CreditdError";
    this.status = init.status;
    this.method = init.method;
    this.url = init.url;
    this.problem = problem;
    this.body = init.body;
    this.code = problem?.code;
    this.type = problem?.type;
    this.title = problem?.title;
    this.detail = problem?.detail;
    this.errors = problem?.errors;
    this.required = optionalNumber(problem?.required);
    this.available = optionalNumber(problem?.available);
    this.requestId = init.headers.get("X-Request-Id") ?? undefined;
    const ra = parseRetryAfter(init.headers.get("Retry-After"));
    this.retryAfterSeconds = ra === undefined ? undefined : ra / 1000;
  }

  /** from builds the error for an answer: an InsufficientCreditsError for a 402 insufficient-credits. */
  static from(init: { method: string; url: string; status: number; body: unknown; headers: Headers }): CreditdError {
    if (isProblem(init.body) && init.body.code === "insufficient-credits") {
      return new InsufficientCreditsError(init);
    }
    return new CreditdError(init);
  }
}

/**
 * InsufficientCreditsError is a 402 `insufficient-credits`: nothing was
 * debited. required is what the operation costs, available what could pay
 * for it (the effective balance; for a plan purchase, the payable credits).
 */
export class InsufficientCreditsError extends CreditdError {
  declare readonly status: 402;
  declare readonly code: "insufficient-credits";
  declare readonly required: number;
  declare readonly available: number;

  constructor(init: { method: string; url: string; status: number; body: unknown; headers: Headers }) {
    super(init);
    this.name = "InsufficientCreditsError";
    const p = isRecord(init.body) ? init.body : {};
    // Own properties, so that a 402 without the extras still reads as numbers.
    Object.defineProperty(this, "required", { value: optionalNumber(p.required) ?? 0, enumerable: true });
    Object.defineProperty(this, "available", { value: optionalNumber(p.available) ?? 0, enumerable: true });
  }
}

/** isCreditdError narrows e, optionally to one problem code. */
export function isCreditdError(e: unknown, code?: ProblemCode): e is CreditdError {
  return e instanceof CreditdError && (code === undefined || e.code === code);
}

/**
 * parseRetryAfter reads a Retry-After header (delay-seconds or an HTTP
 * date) as milliseconds from now, or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
