import { useEffect, useState } from "preact/hooks";
import { apiBlob, type Link } from "../api";
import { toApiError, useLoad } from "../hooks";

/**
 * QR codes are fetched with the API's headers (X-Project-Id) and shown or saved through blob: URLs,
 * which the dashboard's CSP allows for images; a plain <img src="/api/..."> could not choose the project.
 */
function useObjectUrl(blob: Blob | undefined): string | undefined {
  const [u, setU] = useState<string | undefined>(undefined);
  useEffect(() => {
    if (!blob) return setU(undefined);
    const made = URL.createObjectURL(blob);
    setU(made);
    return () => URL.revokeObjectURL(made);
  }, [blob]);
  return u;
}

const fileName = (link: Link, ext: string) => `qr-${link.domain}-${link.slug}.${ext}`.replace(/[^a-z0-9._-]/gi, "_");

export function QrPanel(props: { link: Link; size?: number }) {
  const { link } = props;
  const preview = useLoad((signal) => apiBlob(`/api/v1/links/${link.id}/qr`, { format: "svg", size: 240 }, signal), [link.id]);
  const src = useObjectUrl(preview.data);
  const [size, setSize] = useState(props.size ?? 512);
  const [busy, setBusy] = useState<"" | "svg" | "png">("");
  const [error, setError] = useState<string | undefined>(undefined);

  const download = async (format: "svg" | "png") => {
    setBusy(format);
    setError(undefined);
    try {
      const blob = await apiBlob(`/api/v1/links/${link.id}/qr`, { format, size });
      const u = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = u;
      a.download = fileName(link, format);
      document.body.appendChild(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(u), 10_000);
    } catch (e) {
      setError(toApiError(e).problem.detail);
    } finally {
      setBusy("");
    }
  };

  return (
    <div class="qr" data-testid="qr-panel">
      <div class="qr-image">
        {src ? (
          <img src={src} width={160} height={160} alt={`QR code for ${link.short_url}`} data-testid="qr-image" />
        ) : preview.error ? (
          <p class="field-error">{preview.error.problem.detail}</p>
        ) : (
          <span class="skeleton qr-skeleton" aria-hidden="true" />
        )}
      </div>
      <div class="qr-actions">
        <label for={`qr-size-${link.id}`}>Size (px)</label>
        <select id={`qr-size-${link.id}`} value={size} onChange={(e) => setSize(Number(e.currentTarget.value))} data-testid="qr-size">
          {[256, 512, 1024, 2048].map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <button type="button" class="btn small" disabled={busy !== ""} onClick={() => download("svg")} data-testid="qr-download-svg">
          {busy === "svg" ? "Preparing…" : "Download SVG"}
        </button>
        <button type="button" class="btn small" disabled={busy !== ""} onClick={() => download("png")} data-testid="qr-download-png">
          {busy === "png" ? "Preparing…" : "Download PNG"}
        </button>
        {error && (
          <p class="field-error" role="alert">
            {error}
          </p>
        )}
      </div>
    </div>
  );
}
