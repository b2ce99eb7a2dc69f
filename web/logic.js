// Pure helpers (no DOM, no network): tests/unit.test.mjs imports them.

/** The payload of a JWT (base64url JSON), or null when it is not one. */
export function jwtPayload(token) {
  const part = typeof token === 'string' ? token.split('.')[1] : undefined;
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return payload && typeof payload === 'object' && !Array.isArray(payload) ? payload : null;
  } catch {
    return null;
  }
}

/** When a token expires, in ms since the epoch (0 when unknown). */
export const tokenExpiryMs = (token) => (Number.isFinite(jwtPayload(token)?.exp) ? jwtPayload(token).exp * 1000 : 0);

/** Whom a Cognito access token speaks for: its `username` claim. */
export function displayName(accessToken, idToken) {
  const a = jwtPayload(accessToken) || {};
  const i = jwtPayload(idToken) || {};
  return a.username || i['cognito:username'] || a.sub || '';
}

/** The next wait of a doubling backoff: 1 s, 2 s, 4 s … capped at `max`. */
export const nextDelay = (previous, { first = 1000, max = 10000 } = {}) => (previous ? Math.min(previous * 2, max) : first);

/** The waits of a doubling backoff whose total stays within `total` ms (1, 2, 4 … s). */
export function backoffSchedule({ max = 10000, total = 300000 } = {}) {
  const waits = [];
  let sum = 0;
  for (let d = nextDelay(0, { max }); sum + d <= total; d = nextDelay(d, { max })) {
    waits.push(d);
    sum += d;
  }
  return waits;
}

/** A phrase as a sentence: first letter upper case, one final stop. */
export function asSentence(text) {
  const t = String(text ?? '').trim();
  if (!t) return '';
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?…]$/.test(s) ? s : `${s}.`;
}

const REASONS = {
  undecodable: 'This file could not be read as an image.',
  corrupt: 'This file could not be read as an image; it may be damaged.',
  too_large: 'This photo is too large.',
  decompression_bomb: 'This photo has too many pixels to process.',
  unsupported_format: 'This file type is not supported.',
  unstorable: 'This photo could not be stored.',
};

/** Why a photo was rejected, as a sentence: the backend's `message` first, else its `reason`. */
export function rejectionSentence({ reason, message } = {}) {
  if (message && String(message).trim()) return asSentence(message);
  if (reason && REASONS[reason]) return REASONS[reason];
  return reason ? `This photo was rejected (${reason}).` : 'This photo was rejected.';
}

/** A problem+json body (or anything else) as a sentence for people, never raw JSON. */
export function problemSentence(body, status) {
  if (body && typeof body === 'object') {
    const text = typeof body.detail === 'string' && body.detail.trim() ? body.detail : body.title;
    if (typeof text === 'string' && text.trim()) return asSentence(text);
  }
  if (status === 429) return 'The server is busy; try again in a moment.';
  if (status >= 500) return `The server had a problem (HTTP ${status}); try again in a moment.`;
  return `The request failed (HTTP ${status}).`;
}

/** Seconds to wait: the Retry-After header (when CORS exposes it), else the problem's `retry_after`. */
export function retryAfterSeconds(header, body) {
  for (const v of [header, body?.retry_after]) if (/^\d+$/.test(String(v ?? '').trim())) return Number(v);
  return null;
}

export function uploadLimitSentence(seconds) {
  if (seconds == null) return 'You have reached your hourly upload limit; try again later.';
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  return `You have reached your hourly upload limit; try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`;
}

const COGNITO = {
  NotAuthorizedException: 'Wrong username or password.',
  UserNotFoundException: 'Wrong username or password.',
  UserNotConfirmedException: 'This account is not confirmed yet.',
  PasswordResetRequiredException: 'This account needs a password reset before it can sign in.',
  TooManyRequestsException: 'Too many attempts; wait a moment and try again.',
  InvalidParameterException: 'Enter a username and a password.',
  ResourceNotFoundException: 'Sign-in is not set up correctly (unknown app client).',
  UsernameExistsException: 'That username is taken; choose another.',
  InvalidPasswordException: 'Choose a password of at least 12 characters with upper- and lower-case letters and a number.',
  CodeMismatchException: 'That code is not the one we sent; check the email and try again.',
  ExpiredCodeException: 'That code has expired; send a new one.',
  CodeDeliveryFailureException: 'The code could not be sent to that email; check the address.',
  LimitExceededException: 'Too many attempts; wait a while and try again.',
};

/** Where the same error means something else while signing up. */
const SIGN_UP = {
  InvalidParameterException: 'Check the username, the name and the email: one of them is not accepted.',
  NotAuthorizedException: 'This account is already confirmed; sign in.',
  UserNotFoundException: 'No sign-up is waiting for that username; create the account again.',
};

/** Cognito's `__type` (maybe "namespace#Name") as a sentence; a failed refresh ends the session. */
export function cognitoSentence(type, during = 'signin') {
  if (during === 'refresh') return 'Your session has ended; please sign in again.';
  const name = String(type || '').split('#').pop().split(':')[0];
  if (during === 'signup') return SIGN_UP[name] || COGNITO[name] || 'Signing up failed; please try again.';
  return COGNITO[name] || 'Sign-in failed; please try again.';
}

export const notificationsLabel = (n) => (n > 0 ? `Notifications (${n} unread)` : 'Notifications');

/** The presigned PUT's headers the page may set: all but those the browser owns. */
export const uploadHeaders = (headers) =>
  Object.entries(headers || {}).filter(([k]) => !['content-length', 'host'].includes(k.toLowerCase()));

/**
 * Merges a fresh first page into a list already shown (newest first), keeping the older pages.
 * An item shown that the page should hold but does not (as new as the page's oldest, or any
 * item when the page is the whole list: `complete`) has left the list: a deleted photo.
 */
export function mergeFirstPage(current, page, { complete = false, key = 'image_id', at = (x) => toMs(x.published_at) } = {}) {
  const seen = new Set(page.map((x) => x[key]));
  const oldest = page.length ? Math.min(...page.map(at)) : Infinity;
  return page.concat(current.filter((x) => !seen.has(x[key]) && !complete && at(x) <= oldest));
}

/** A date (ms, seconds or ISO text) as ms since the epoch, or null. */
export function toMs(value) {
  if (typeof value === 'number') return value < 1e12 ? value * 1000 : value;
  const n = Date.parse(value);
  return Number.isNaN(n) ? null : n;
}

/** "just now", "5 minutes ago", "2 days ago" … */
export function timeAgo(ms, now = Date.now()) {
  if (ms == null) return '';
  const s = Math.round((ms - now) / 1000);
  if (Math.abs(s) < 45) return 'just now';
  const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]]) {
    if (Math.abs(s) >= size || unit === 'minute') return rtf.format(Math.round(s / size), unit);
  }
  return '';
}

/** The address of a photo's page: a fragment, so the page can be shared and reloaded. */
export const photoHref = (id) => `#photo=${encodeURIComponent(id)}`;

/** The photo id a location's fragment names, or null. */
export function photoOf(hash) {
  const m = /^#photo=([^&]+)$/.exec(hash || '');
  return m ? decodeURIComponent(m[1]) : null;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * What a photo says of itself, as a line: "Taken 21 Jun 2025, 21:14 · FUJIFILM X100V · XF23mm".
 * The time is the camera's wall clock where it was taken (not converted to the reader's zone);
 * '' when the photo says nothing.
 */
export function takenLine({ taken_at: at, camera, lens } = {}) {
  const m = typeof at === 'string' && /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(at);
  const when = m && MONTHS[Number(m[2]) - 1]
    ? `Taken ${Number(m[3])} ${MONTHS[Number(m[2]) - 1]} ${m[1]}, ${m[4]}:${m[5]}` : '';
  return [when, camera, lens].filter(Boolean).join(' · ');
}

/**
 * A push applied to the inbox the page shows: its new and changed notifications replace
 * theirs, its removed ones leave, newest activity first, at most `limit`.
 */
export function applyPush(current, { items = [], removed = [] } = {}, limit = 20) {
  const replaced = new Set([...removed, ...items.map((n) => n.id)]);
  return items.concat(current.filter((n) => !replaced.has(n.id)))
    .sort((a, b) => (toMs(b.updated_at) ?? 0) - (toMs(a.updated_at) ?? 0))
    .slice(0, limit);
}

/** The wait before reconnecting (`attempt` from 0): full jitter under 1 s doubling to 30 s. */
export function reconnectDelay(attempt, random = Math.random) {
  const cap = Math.min(30000, 1000 * 2 ** Math.min(attempt, 10));
  return Math.max(500, Math.round(cap * random()));
}
