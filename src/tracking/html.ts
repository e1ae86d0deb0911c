/**
 * pytracking's `adapt_html`: rewrites the links of an HTML e-mail into click-tracking links and adds the open-tracking
 * pixel, with a real HTML parser (parse5, the WHATWG algorithm browsers use).
 *
 * - Click tracking: every `<a href>` whose value starts (case-sensitively) with "http://", "https://" or "//" becomes
 *   `getClickTrackingUrl(href, metadata, config)`; mailto:, "#…", relative and other schemes stay. Unlike pytracking,
 *   a link that already starts with the configured baseClickTrackingUrl is left alone (no double tracking).
 * - Open tracking: `<img src="{open-tracking URL}">` is appended as the last child of `<body>`.
 * - Output, like pytracking 0.2.3 (lxml): "<!DOCTYPE html>" and a newline first (replacing any doctype), then the
 *   document, with every non-ASCII character as a decimal character reference (é → &#233;), so the result is ASCII.
 *
 *   <html>, <head> and <body> tags the input did not have are not written either (the parser implies them; so does
 *   any reader), so a fragment stays a fragment, followed by the pixel.
 *
 * Differences from lxml's output (same document, other bytes): the parser is HTML5's, so stray tags are repaired the way
 * browsers do, which moves some white space (white space between <html> and <head> is dropped, between </head> and
 * <body> kept there rather than moved into <head>, and after </body> moved inside <body>, before the pixel); for a
 * fragment lxml writes only the fragment and loses the pixel, here the pixel follows it; attribute values keep their
 * characters (libxml2 %-escapes non-ASCII in href/src); the content of <script>/<style> is written verbatim.
 */
import { defaultTreeAdapter, html as parse5html, parse, type DefaultTreeAdapterTypes } from "parse5";
import { getClickTrackingUrl, getOpenTrackingUrl, type Metadata, type TrackingConfig } from "./codec.js";

type Node = DefaultTreeAdapterTypes.Node;
type Element = DefaultTreeAdapterTypes.Element;
type ParentNode = DefaultTreeAdapterTypes.ParentNode;

const NS = parse5html.NS;

export interface AdaptHtmlOptions {
  /** rewrite links (default true) */
  clickTracking?: boolean;
  /** add the pixel (default true) */
  openTracking?: boolean;
  config?: TrackingConfig;
}

const TRACKABLE = /^(?:https?:)?\/\//;

export function adaptHtml(html: string, metadata?: Metadata | null, options: AdaptHtmlOptions = {}): string {
  const config = options.config ?? {};
  // Locations tell elements the parser implied (no tag in the input) from written ones; implied <html>, <head> and
  // <body> tags are not written back.
  const doc = parse(html, { sourceCodeLocationInfo: true });
  if (options.clickTracking ?? true) {
    const base = config.baseClickTrackingUrl;
    for (const el of elements(doc)) {
      if (el.tagName !== "a") continue;
      const href = el.attrs.find((a) => a.name === "href" && !a.namespace);
      if (!href || !TRACKABLE.test(href.value)) continue;
      if (base && href.value.startsWith(base)) continue;
      href.value = getClickTrackingUrl(href.value, metadata, config);
    }
  }
  if (options.openTracking ?? true) {
    const body = findBody(doc);
    if (body)
      defaultTreeAdapter.appendChild(
        body,
        defaultTreeAdapter.createElement("img", NS.HTML, [{ name: "src", value: getOpenTrackingUrl(metadata, config) }]),
      );
  }
  return serializeDocument(doc);
}

/** All elements in document order (template contents included), without recursion. */
function* elements(root: ParentNode): Generator<Element> {
  const stack: Node[] = [...root.childNodes].reverse();
  while (stack.length > 0) {
    const node = stack.pop() as Node;
    if (!("tagName" in node)) continue;
    yield node;
    const children = node.tagName === "template" && "content" in node ? node.content.childNodes : node.childNodes;
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
}

function findBody(doc: DefaultTreeAdapterTypes.Document): Element | undefined {
  const htmlEl = doc.childNodes.find((n): n is Element => "tagName" in n && n.tagName === "html");
  return htmlEl?.childNodes.find((n): n is Element => "tagName" in n && n.tagName === "body" && n.namespaceURI === NS.HTML);
}

// ---------------------------------------------------------------------------------------------------------------------
// serialisation (lxml-like: ASCII output with numeric character references)

const VOID = new Set([
  "area",
  "base",
  "basefont",
  "bgsound",
  "br",
  "col",
  "embed",
  "frame",
  "hr",
  "img",
  "input",
  "keygen",
  "link",
  "meta",
  "param",
  "source",
  "track",
  "wbr",
]);
const IMPLIED_OPTIONAL = new Set(["html", "head", "body"]);
const RAW_TEXT = new Set(["style", "script", "xmp", "iframe", "noembed", "noframes", "plaintext", "noscript"]);

function nonAscii(s: string): string {
  return s.replace(/[^\p{ASCII}]/gu, (c) => `&#${c.codePointAt(0)};`);
}

function escapeText(s: string): string {
  return nonAscii(s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));
}

function escapeAttr(s: string): string {
  return nonAscii(s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));
}

function attrName(a: { name: string; namespace?: string; prefix?: string }): string {
  switch (a.namespace) {
    case undefined:
    case "":
      return a.name;
    case NS.XML:
      return `xml:${a.name}`;
    case NS.XMLNS:
      return a.name === "xmlns" ? a.name : `xmlns:${a.name}`;
    case NS.XLINK:
      return `xlink:${a.name}`;
    default:
      return `${a.prefix}:${a.name}`;
  }
}

function serializeDocument(doc: DefaultTreeAdapterTypes.Document): string {
  let out = "<!DOCTYPE html>\n";
  // Iterative, so deeply nested input cannot overflow the stack.
  type Frame = { nodes: Node[]; i: number; end: string; raw: boolean };
  const stack: Frame[] = [];
  let frame: Frame = { nodes: doc.childNodes.filter((n) => n.nodeName !== "#documentType"), i: 0, end: "", raw: false };
  for (;;) {
    if (frame.i >= frame.nodes.length) {
      out += frame.end;
      const up = stack.pop();
      if (!up) return out;
      frame = up;
      continue;
    }
    const node = frame.nodes[frame.i++];
    if ("tagName" in node) {
      if (IMPLIED_OPTIONAL.has(node.tagName) && !node.sourceCodeLocation && node.attrs.length === 0) {
        stack.push(frame);
        frame = { nodes: node.childNodes, i: 0, end: "", raw: false };
        continue;
      }
      out += `<${node.tagName}${node.attrs.map((a) => ` ${attrName(a)}="${escapeAttr(a.value)}"`).join("")}>`;
      const isHtml = node.namespaceURI === NS.HTML;
      if (isHtml && VOID.has(node.tagName)) continue;
      const children = isHtml && node.tagName === "template" && "content" in node ? node.content.childNodes : node.childNodes;
      stack.push(frame);
      frame = { nodes: children, i: 0, end: `</${node.tagName}>`, raw: isHtml && RAW_TEXT.has(node.tagName) };
    } else if (node.nodeName === "#text") {
      out += frame.raw ? node.value : escapeText(node.value);
    } else if (node.nodeName === "#comment") {
      out += `<!--${node.data}-->`;
    }
  }
}
