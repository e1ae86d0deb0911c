/**
 * The one error type of the core. Routes turn it into RFC 9457 problem+json; dialects into their own shapes.
 * `type` is a stable slug: clients may switch on it.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const PROBLEM_BASE = "https://clicktrail.dev/problems/";

export const notFound = (what: string) => new AppError(404, "not-found", `${what} not found`);
export const badRequest = (message: string, extra: Record<string, unknown> = {}) => new AppError(400, "invalid-request", message, extra);
export const conflict = (message: string, extra: Record<string, unknown> = {}) => new AppError(409, "conflict", message, extra);

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [k: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  410: "Gone",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
  507: "Insufficient Storage",
};

export function problem(status: number, type: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: PROBLEM_BASE + type, title: TITLES[status] ?? "Error", status, detail, ...extra };
}
