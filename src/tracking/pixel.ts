/** The open-tracking pixel: pytracking's 68-byte 1×1 transparent PNG (grey + alpha, alpha 0), byte for byte. */
export const PNG_MIME_TYPE = "image/png";

/** Shared; do not modify it. `getOpenTrackingPixel()` hands out a copy. */
export const TRACKING_PIXEL: Buffer = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=",
  "base64",
);

export function getOpenTrackingPixel(): { bytes: Buffer; mimeType: typeof PNG_MIME_TYPE } {
  return { bytes: Buffer.from(TRACKING_PIXEL), mimeType: PNG_MIME_TYPE };
}
