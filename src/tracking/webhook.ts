/**
 * pytracking's `send_webhook`: POSTs the tracking result as JSON to `result.webhookUrl`. Only the library function —
 * one attempt, no signature, no retry; Clicktrail's server has its own durable webhook delivery.
 *
 * Body: pytracking's payload (is_open_tracking, is_click_tracking, metadata, request_data, timestamp, then tracked_url
 * only if truthy) serialised like Python's json.dumps, so a receiver built for pytracking gets the same bytes.
 * Headers: Content-Type: application/json, Accept (any type), User-Agent: clicktrail-tracking (pytracking sends
 * python-requests/<version>). Redirects are not followed (requests follows them): a 3xx is returned as not ok.
 */
import { DEFAULT_TIMEOUT_SECONDS, trackingJsonDict, type TrackingConfig, type TrackingResult } from "./codec.js";
import { TrackingError } from "./errors.js";
import { pyJsonDumps } from "./pyjson.js";

export const WEBHOOK_USER_AGENT = "clicktrail-tracking";

export type WebhookSource = Pick<
  TrackingResult,
  "isOpenTracking" | "isClickTracking" | "metadata" | "requestData" | "timestamp" | "trackedUrl" | "webhookUrl"
>;

/** The exact request body sendWebhook posts for a result. */
export function webhookBody(result: WebhookSource): string {
  return pyJsonDumps(trackingJsonDict(result));
}

export async function sendWebhook(result: WebhookSource, config: TrackingConfig = {}): Promise<{ status: number; ok: boolean }> {
  const url = result.webhookUrl;
  if (!url) throw new TrackingError("webhook_failed", "the tracking result has no webhook URL");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TrackingError("webhook_failed", `the webhook URL is not a valid URL: ${url}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new TrackingError("webhook_failed", "the webhook URL must be http or https");
  const timeout = config.webhookTimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (!(typeof timeout === "number" && timeout > 0 && Number.isFinite(timeout)))
    throw new TrackingError("config", "webhookTimeoutSeconds must be a positive number");
  const body = webhookBody(result);
  let res: Response;
  try {
    res = await fetch(parsed, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "*/*", "User-Agent": WEBHOOK_USER_AGENT },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(Math.ceil(timeout * 1000)),
    });
  } catch (e) {
    const err = e as Error;
    if (err?.name === "TimeoutError" || err?.name === "AbortError") {
      throw new TrackingError("webhook_timeout", `webhook ${parsed.origin} did not answer within ${timeout} s`, { cause: e });
    }
    throw new TrackingError("webhook_failed", `webhook request to ${parsed.origin} failed: ${describe(err)}`, { cause: e });
  }
  try {
    // Release the connection; the body is not needed. A timeout while reading it does not matter any more.
    await res.body?.cancel();
  } catch {}
  return { status: res.status, ok: res.ok };
}

function describe(err: Error & { cause?: unknown }): string {
  const cause = err?.cause as { code?: string; message?: string } | undefined;
  return cause?.code ?? cause?.message ?? err?.message ?? String(err);
}
