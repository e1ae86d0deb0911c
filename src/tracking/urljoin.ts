/**
 * Python's `urllib.parse.urljoin(base, url)` (3.11), as pytracking joins its base URL and the token. Only what a token
 * needs is exercised (a relative path segment), but the algorithm is the full one so the base URL behaves exactly as in
 * pytracking: the base's last path segment is replaced unless the base ends with "/", its query and fragment are
 * dropped, empty segments in the middle are squeezed and "." / ".." are resolved.
 */

const USES_RELATIVE = new Set([
  "",
  "ftp",
  "http",
  "gopher",
  "nntp",
  "imap",
  "wais",
  "file",
  "https",
  "shttp",
  "mms",
  "prospero",
  "rtsp",
  "rtsps",
  "rtspu",
  "sftp",
  "svn",
  "svn+ssh",
  "ws",
  "wss",
]);
const USES_NETLOC = new Set([
  "",
  "ftp",
  "http",
  "gopher",
  "nntp",
  "telnet",
  "imap",
  "wais",
  "file",
  "mms",
  "https",
  "shttp",
  "snews",
  "prospero",
  "rtsp",
  "rtsps",
  "rtspu",
  "rsync",
  "svn",
  "svn+ssh",
  "sftp",
  "nfs",
  "git",
  "git+ssh",
  "ws",
  "wss",
]);
const USES_PARAMS = new Set([
  "",
  "ftp",
  "hdl",
  "prospero",
  "http",
  "imap",
  "https",
  "shttp",
  "rtsp",
  "rtsps",
  "rtspu",
  "sip",
  "sips",
  "mms",
  "sftp",
  "tel",
]);
const SCHEME_CHARS = /^[A-Za-z][A-Za-z0-9+\-.]*$/;

interface Parts {
  scheme: string;
  netloc: string;
  path: string;
  params: string;
  query: string;
  fragment: string;
}

/** urlsplit's input cleaning: leading C0 controls and spaces stripped, tabs and newlines removed anywhere. */
function clean(s: string): string {
  let i = 0;
  while (i < s.length && s.charCodeAt(i) <= 0x20) i++;
  return s.slice(i).replace(/[\t\r\n]/g, "");
}

function urlparse(input: string, defaultScheme: string): Parts {
  let url = clean(input);
  let scheme = clean(defaultScheme);
  let netloc = "";
  let query = "";
  let fragment = "";
  const colon = url.indexOf(":");
  if (colon > 0 && SCHEME_CHARS.test(url.slice(0, colon))) {
    scheme = url.slice(0, colon).toLowerCase();
    url = url.slice(colon + 1);
  }
  if (url.startsWith("//")) {
    let end = url.length;
    for (const c of "/?#") {
      const i = url.indexOf(c, 2);
      if (i >= 0 && i < end) end = i;
    }
    netloc = url.slice(2, end);
    url = url.slice(end);
  }
  const hash = url.indexOf("#");
  if (hash >= 0) {
    fragment = url.slice(hash + 1);
    url = url.slice(0, hash);
  }
  const q = url.indexOf("?");
  if (q >= 0) {
    query = url.slice(q + 1);
    url = url.slice(0, q);
  }
  let params = "";
  if (USES_PARAMS.has(scheme) && url.includes(";")) {
    const slash = url.lastIndexOf("/");
    const semi = url.indexOf(";", slash < 0 ? 0 : slash);
    if (semi >= 0) {
      params = url.slice(semi + 1);
      url = url.slice(0, semi);
    }
  }
  return { scheme, netloc, path: url, params, query, fragment };
}

function urlunparse(p: Parts): string {
  let url = p.params ? `${p.path};${p.params}` : p.path;
  if (p.netloc || (p.scheme && USES_NETLOC.has(p.scheme) && !url.startsWith("//"))) {
    if (url && !url.startsWith("/")) url = "/" + url;
    url = "//" + p.netloc + url;
  }
  if (p.scheme) url = p.scheme + ":" + url;
  if (p.query) url += "?" + p.query;
  if (p.fragment) url += "#" + p.fragment;
  return url;
}

export function pyUrljoin(base: string, url: string): string {
  if (!base) return url;
  if (!url) return base;
  const b = urlparse(base, "");
  const u = urlparse(url, b.scheme);
  if (u.scheme !== b.scheme || !USES_RELATIVE.has(u.scheme)) return url;
  let netloc = u.netloc;
  if (USES_NETLOC.has(u.scheme)) {
    if (netloc) return urlunparse(u);
    netloc = b.netloc;
  }
  if (!u.path && !u.params) {
    return urlunparse({ ...u, netloc, path: b.path, params: b.params, query: u.query || b.query });
  }
  const baseParts = b.path.split("/");
  if (baseParts[baseParts.length - 1] !== "") baseParts.pop();
  let segments: string[];
  if (u.path.startsWith("/")) {
    segments = u.path.split("/");
  } else {
    segments = [...baseParts, ...u.path.split("/")];
    segments = [segments[0], ...segments.slice(1, -1).filter(Boolean), ...(segments.length > 1 ? [segments[segments.length - 1]] : [])];
  }
  const resolved: string[] = [];
  for (const seg of segments) {
    if (seg === "..") resolved.pop();
    else if (seg !== ".") resolved.push(seg);
  }
  const last = segments[segments.length - 1];
  if (last === "." || last === "..") resolved.push("");
  return urlunparse({ scheme: u.scheme, netloc, path: resolved.join("/") || "/", params: u.params, query: u.query, fragment: u.fragment });
}
