// Live push: one WebSocket to the live API while signed in, opened with a one-time ticket
// from POST /me/live-ticket (a browser cannot send an Authorization header on a WebSocket).
// API Gateway closes a connection after 10 idle minutes and after 2 hours: a heartbeat every
// 4 minutes keeps it, and any close is followed by a reconnect with jittered backoff. The
// caller refetches its inbox on every open: what happened while closed is never lost.
// A phone that loses its network keeps a dead socket until TCP gives up (minutes): the socket
// is closed as soon as the browser says it is offline, and opened again, without waiting out
// the backoff, as soon as it is back online.
import { reconnectDelay } from './logic.js';

const HEARTBEAT_MS = 4 * 60000;

export function createLive({ api, onMessage, onOpen, onClose }) {
  let socket = null;
  let stopped = true;
  let attempt = 0;
  let timer = 0;
  let heartbeat = 0;
  let connecting = false; // a ticket asked for: no second connection meanwhile

  function retry() {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(connect, reconnectDelay(attempt++));
  }

  async function connect() {
    if (stopped || socket || connecting) return;
    let url;
    connecting = true;
    try {
      url = (await api.request('POST', '/me/live-ticket')).url;
    } catch {
      return retry(); // offline, or the API busy: the poll goes on meanwhile
    } finally {
      connecting = false;
    }
    if (stopped || socket) return;
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      attempt = 0;
      heartbeat = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('{"action":"ping"}'), HEARTBEAT_MS);
      onOpen();
    };
    ws.onmessage = (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch { return; }
      onMessage(message);
    };
    ws.onclose = () => {
      clearInterval(heartbeat);
      if (socket === ws) socket = null;
      onClose();
      retry();
    };
  }

  function offline() {
    socket?.close(); // its onclose schedules the reconnect
  }

  function online() {
    if (stopped) return;
    attempt = 0;
    clearTimeout(timer);
    connect();
  }

  return {
    start() {
      stopped = false;
      window.addEventListener('offline', offline);
      window.addEventListener('online', online);
      connect();
    },
    stop() {
      stopped = true;
      window.removeEventListener('offline', offline);
      window.removeEventListener('online', online);
      clearTimeout(timer);
      const ws = socket;
      socket = null;
      if (ws) {
        ws.onclose = null;
        clearInterval(heartbeat);
        ws.close();
      }
    },
    get open() {
      return socket?.readyState === WebSocket.OPEN;
    },
  };
}
