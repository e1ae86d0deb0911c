/**
 * Clicktrail's tracking library: stateless tracking links (pytracking-compatible and Clicktrail's own signed format),
 * Fernet, the open pixel, HTML rewriting and the webhook call. Importable without the server: it depends only on
 * node: built-ins and parse5.
 */
export {
  DEFAULT_TIMEOUT_SECONDS,
  getClickTrackingResult,
  getClickTrackingUrl,
  getClickTrackingUrlPath,
  getOpenTrackingPixel,
  getOpenTrackingResult,
  getOpenTrackingUrl,
  getOpenTrackingUrlPath,
  peekKeyId,
  PNG_MIME_TYPE,
  tokenFromUrl,
  TRACKING_PIXEL,
  trackingJsonDict,
  TrackingResult,
  type Metadata,
  type TrackingConfig,
  type TrackingFormat,
  type TrackingJsonDict,
} from "./codec.js";
export { TrackingError, type TrackingErrorCode } from "./errors.js";
export {
  fernetDecrypt,
  fernetEncrypt,
  fernetTimestamp,
  generateFernetKey,
  type FernetDecryptOptions,
  type FernetEncryptOptions,
  type FernetKey,
} from "./fernet.js";
export { adaptHtml, type AdaptHtmlOptions } from "./html.js";
export { generateSigningKey, MIN_SIGNING_KEY_LENGTH, signingKeyId, type SigningKey } from "./keys.js";
export { pyJsonDumps, pyJsonNumber, pyJsonString } from "./pyjson.js";
export { pyUrljoin } from "./urljoin.js";
export { sendWebhook, WEBHOOK_USER_AGENT, webhookBody, type WebhookSource } from "./webhook.js";
