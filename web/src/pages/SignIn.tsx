import { useEffect, useRef, useState } from "preact/hooks";
import { signIn, type Session } from "../api";
import { Field, FormError, focusField } from "../components/ui";
import { toApiError, useFormErrors } from "../hooks";

const fmtWait = (s: number) => (s < 60 ? `${s} s` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")} min`);

export function SignInPage(props: { notice?: string; onSignedIn: (s: Session) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [waitUntil, setWaitUntil] = useState(0);
  const [now, setNow] = useState(Date.now());
  const errors = useFormErrors(["email", "password"]);
  const form = useRef<HTMLFormElement>(null);

  useEffect(() => {
    form.current?.querySelector<HTMLInputElement>("input")?.focus();
  }, []);

  // throttled (429): count down Retry-After, then allow another try
  useEffect(() => {
    if (waitUntil <= Date.now()) return;
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, [waitUntil]);
  const waitLeft = Math.max(0, Math.ceil((waitUntil - now) / 1000));

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy || waitLeft > 0) return;
    errors.clear();
    if (!email.trim() || !password) {
      const missing = !email.trim() ? "email" : "password";
      errors.setField(missing, missing === "email" ? "Enter your email address." : "Enter your password.");
      focusField(form.current, missing);
      return;
    }
    setBusy(true);
    try {
      const s = await signIn(email.trim(), password);
      props.onSignedIn(s);
    } catch (err) {
      const ae = toApiError(err);
      if (ae.status === 429) {
        const secs = ae.retryAfter ?? 30;
        setWaitUntil(Date.now() + secs * 1000);
        setNow(Date.now());
      }
      focusField(form.current, errors.show(ae));
      setPassword("");
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <form class="card signin-card" onSubmit={submit} ref={form} data-testid="signin-form" noValidate>
        <h1>
          <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width={28} height={28} /> Sign in to Clicktrail
        </h1>
        {props.notice && !errors.top && (
          <p class="alert ok" role="status">
            {props.notice}
          </p>
        )}
        <FormError message={errors.top} testid="signin-error" />
        <Field label="Email" name="email" idPrefix="signin" error={errors.byField.email}>
          {(c) => (
            <input
              {...c}
              type="email"
              autocomplete="username"
              required
              value={email}
              onInput={(e) => {
                setEmail(e.currentTarget.value);
                setWaitUntil(0); // the throttle counts per e-mail address too: another one may go through
              }}
              data-testid="signin-email"
            />
          )}
        </Field>
        <Field label="Password" name="password" idPrefix="signin" error={errors.byField.password}>
          {(c) => (
            <input
              {...c}
              type="password"
              autocomplete="current-password"
              required
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
              data-testid="signin-password"
            />
          )}
        </Field>
        <button type="submit" class="btn primary wide" disabled={busy || waitLeft > 0} data-testid="signin-submit">
          {busy ? "Signing in…" : waitLeft > 0 ? `Try again in ${fmtWait(waitLeft)}` : "Sign in"}
        </button>
      </form>
    </main>
  );
}
