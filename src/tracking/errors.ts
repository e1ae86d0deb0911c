/**
 * The one error type of the tracking library. `code` is a stable slug a caller may switch on (e.g. to answer 404 for
 * any bad token but log `bad_signature` louder than `bad_base64`); `message` is for people.
 */
export type TrackingErrorCode =
  /** a configuration value is missing, malformed or contradicts another one */
  | "config"
  /** a signing key or Fernet key is malformed */
  | "bad_key"
  /** the token (or a part of it) is not valid base64 / base64url / base32 */
  | "bad_base64"
  /** the token is too short, has an unknown version byte or unknown flags, or is not a token at all */
  | "bad_token"
  /** the MAC / authentication tag does not verify (tampered, truncated, or made with another key) */
  | "bad_signature"
  /** the decrypted data has bad PKCS7 padding (Fernet) */
  | "bad_padding"
  /** the token names a key id that none of the configured keys has */
  | "unknown_key"
  /** the token's expiry (clicktrail) or TTL (Fernet with a ttl) has passed */
  | "expired"
  /** a Fernet token's timestamp is more than 60 s in the future (only checked with a ttl) */
  | "future"
  /** the payload is not UTF-8 or not JSON */
  | "bad_json"
  /** the payload is JSON but not an object, or a field has the wrong type */
  | "bad_payload"
  /** a plain (unsigned) pytracking link, and the reader does not set allowUnsigned */
  | "unsigned_not_allowed"
  /** an encrypted pytracking (Fernet) link, and the reader has no encryptionKey */
  | "no_encryption_key"
  /** a clicktrail link, and the reader has no signingKeys */
  | "no_signing_key"
  /** a clicktrail token made for an open pixel was read as a click link, or the reverse */
  | "wrong_kind"
  /** a value cannot be serialised to JSON */
  | "not_serialisable"
  /** the webhook request failed (network error, bad URL) */
  | "webhook_failed"
  /** the webhook request did not answer within webhookTimeoutSeconds */
  | "webhook_timeout";

export class TrackingError extends Error {
  override readonly name = "TrackingError";
  constructor(
    readonly code: TrackingErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
