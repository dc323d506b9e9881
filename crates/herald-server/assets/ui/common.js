// What the tester and the dashboard share: connecting through herald.js
// while watching each HTTP attempt (status, headers, the `retry:` hints,
// the body of a refusal), and saying in words why a connection failed.
//
// herald.js does the protocol (reconnects with Last-Event-ID, backoff,
// final statuses); `observedFetch` is the `fetch` it is given, so the page
// sees every attempt as it happens without a second SSE client.

import { Parser } from "/herald.js";

/** The hub's subscribe endpoint, on the origin this page came from. */
export const HUB_PATH = "/.well-known/mercure";

/** Most characters of a refusal's body shown (the hub's are one line). */
const MAX_REASON = 2000;

/** An element by id. */
export const $ = (id) => document.getElementById(id);

/** Creates an element with text and attributes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/**
 * A `fetch` for herald.js that reports each attempt to `watch`:
 *
 * - `watch.request({url, attempt, lastEventId})` before it is sent;
 * - `watch.response({attempt, status, statusText, headers})` when the
 *   head arrives (`headers`: [name, value] pairs the page may read);
 * - `watch.refused({attempt, status, message})` for a status other than a
 *   200 event stream, with the reason in words (WWW-Authenticate, body);
 * - `watch.failed({attempt, message})` when no answer came (network, CORS);
 * - `watch.retry(ms)` and `watch.event(ev)` from the body as it streams
 *   (`ev`: {type, data, id, lastEventId}).
 */
export function observedFetch(watch) {
  let attempt = 0;
  return async (url, init = {}) => {
    attempt += 1;
    const n = attempt;
    const headers = new Headers(init.headers || {});
    watch.request({ url: String(url), attempt: n, lastEventId: headers.get("Last-Event-ID") });
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      if (init.signal?.aborted) throw error;
      watch.failed({ attempt: n, message: await explainFailure(String(url)) });
      throw error;
    }
    const pairs = [...response.headers.entries()];
    watch.response({ attempt: n, status: response.status, statusText: response.statusText, headers: pairs });
    const type = response.headers.get("content-type") || "";
    if (response.status !== 200 || !/^\s*text\/event-stream\s*(;|$)/i.test(type)) {
      const body = await readSome(response.clone());
      watch.refused({ attempt: n, status: response.status, message: explainStatus(response, body) });
      return response;
    }
    const parser = new Parser({
      lastEventId: headers.get("Last-Event-ID") || "",
      onRetry: (ms) => watch.retry(ms),
      onEvent: (ev) => watch.event(ev),
    });
    const observer = new TransformStream({
      transform(chunk, controller) {
        try {
          parser.feed(chunk);
        } catch (error) {
          console.error(error);
        }
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(observer), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** Up to MAX_REASON characters of a body, or "" (it may never end). */
async function readSome(response) {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < MAX_REASON) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // a cut body: what came is the reason
  }
  reader.cancel().catch(() => {});
  return text.slice(0, MAX_REASON).trim();
}

const BEARER_ERRORS = {
  invalid_token: "the token was refused: expired, not yet valid, badly signed, or for another hub or issuer",
  insufficient_scope: "the token is valid but does not grant this",
  invalid_request: "the token is not sent correctly (the Authorization header must be 'Bearer <token>')",
};

/** A refusal in words: status, the WWW-Authenticate challenge, the body. */
export function explainStatus(response, body) {
  const status = response.status;
  const parts = [`HTTP ${status}${response.statusText ? ` ${response.statusText}` : ""}`];
  const challenge = response.headers.get("www-authenticate");
  if (status === 401 && !challenge) parts.push("a token is required (or the hub's WWW-Authenticate header is not exposed to this page)");
  if (challenge) {
    const code = /error="([^"]*)"/.exec(challenge)?.[1];
    parts.push(`WWW-Authenticate: ${challenge}`);
    if (code && BEARER_ERRORS[code]) parts.push(BEARER_ERRORS[code]);
    else if (!code) parts.push("a token is required");
  }
  const type = response.headers.get("content-type") || "";
  if (status === 200) parts.push(`expected text/event-stream, got ${type || "no content type"}`);
  if (status === 204) parts.push("the server asks not to reconnect");
  if (status === 429 || status === 503) {
    const after = response.headers.get("retry-after");
    if (after) parts.push(`retry after ${after} s`);
  }
  if (body && !/html/i.test(type)) parts.push(`the server says: ${body}`);
  return parts.join(" — ");
}

/**
 * Why a fetch threw, in words. The browser says only "TypeError" for a
 * network failure and for a CORS refusal alike; a `no-cors` probe tells
 * them apart: if it gets an (opaque) answer, the server is up and the
 * failure was CORS.
 */
export async function explainFailure(url) {
  let target;
  try {
    target = new URL(url, location.href);
  } catch {
    return `not a valid URL: ${url}`;
  }
  if (navigator.onLine === false) return "network down: the browser is offline";
  if (location.protocol === "https:" && target.protocol === "http:") {
    return `blocked as mixed content: this page is HTTPS and ${target.origin} is plain HTTP`;
  }
  if (target.origin === location.origin) {
    return `network error: the hub at ${target.origin} did not answer (stopped, restarting, or the connection was cut)`;
  }
  const probe = new AbortController();
  const timer = setTimeout(() => probe.abort(), 5000);
  try {
    await fetch(target, { mode: "no-cors", cache: "no-store", signal: probe.signal });
    return (
      `CORS refused: ${target.origin} answered, but does not let this page (${location.origin}) read it. ` +
      "It must send Access-Control-Allow-Origin for this origin (and, for a token or a reconnect, " +
      "answer the preflight allowing the Authorization and Last-Event-ID headers)."
    );
  } catch {
    return `network error: ${target.origin} cannot be reached (down, wrong address, refused, or a certificate the browser does not trust)`;
  } finally {
    clearTimeout(timer);
    probe.abort();
  }
}

/** A time as HH:MM:SS.mmm. */
export function clock(date = new Date()) {
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** Puts `text` on the clipboard; false if the browser refuses (not a secure context). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** Quotes for a POSIX shell. */
export function shellQuote(text) {
  return /^[A-Za-z0-9_\-./:=@%+,]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
