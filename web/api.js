// The HTTP API: bearer token on every call, one refresh-and-retry on 401, problems as sentences.
import { AuthError } from './auth.js';
import { problemSentence, retryAfterSeconds, uploadHeaders, uploadLimitSentence } from './logic.js';

export const OFFLINE = 'Cannot reach the server; retrying…';
const OFFLINE_FINAL = 'Cannot reach the server; check your connection and try again.';

export class ApiError extends Error {
  constructor(message, { status = 0, network = false } = {}) {
    super(message);
    Object.assign(this, { status, network });
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** onNetwork(true) when the server cannot be reached, onNetwork(false) when it answers again. */
export function createApi(apiUrl, auth, onNetwork) {
  const base = String(apiUrl).replace(/\/+$/, '');

  async function once(method, path, body, full = false) {
    let res;
    for (let attempt = 0; ; attempt++) {
      const headers = { Authorization: `Bearer ${await auth.token()}` };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      try {
        res = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
      } catch {
        onNetwork(true);
        throw new ApiError(OFFLINE, { network: true });
      }
      onNetwork(false);
      if (res.status !== 401 || attempt > 0) break;
      await auth.refresh(); // a failed refresh signs out and throws AuthError
    }
    if (res.status === 401) {
      const message = 'Your session has ended; please sign in again.';
      auth.signOut(message);
      throw new AuthError(message);
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      let message = problemSentence(data, res.status);
      if (res.status === 429 && path === '/uploads') {
        message = uploadLimitSentence(retryAfterSeconds(res.headers.get('Retry-After'), data));
      }
      throw new ApiError(message, { status: res.status });
    }
    return full ? { status: res.status, data, retryAfter: res.headers.get('Retry-After') } : data;
  }

  /** With `retry`, a network failure is tried again after 1, 2 and 4 s (for a person's action). */
  /** With `full`, the answer is `{ status, data, retryAfter }` rather than its data alone. */
  async function request(method, path, body, { retry = false, full = false } = {}) {
    for (const wait of [1000, 2000, 4000, 0]) {
      try {
        return await once(method, path, body, full);
      } catch (e) {
        if (!(e instanceof ApiError && e.network) || !retry) throw e;
        if (!wait) throw new ApiError(OFFLINE_FINAL, { network: true });
        await sleep(wait);
      }
    }
  }

  return { request, get: (path) => request('GET', path) };
}

/** PUTs a file to a presigned URL with XMLHttpRequest, for its upload progress events. */
export function putFile(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method || 'PUT', upload.url);
    for (const [name, value] of uploadHeaders(upload.headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded / (e.lengthComputable ? e.total : file.size || 1));
    xhr.onload = () => {
      // 412: the URL puts its object once (If-None-Match: * is signed into it) and this object
      // is there already, put by this page under its own key: an earlier try whose answer was
      // lost. Done, not refused.
      if ((xhr.status >= 200 && xhr.status < 300) || xhr.status === 412) resolve();
      else reject(new ApiError(`The upload was refused (HTTP ${xhr.status}); please try again.`, { status: xhr.status }));
    };
    xhr.onerror = () => reject(new ApiError('The upload did not get through; check your connection and try again.', { network: true }));
    xhr.send(file);
  });
}
