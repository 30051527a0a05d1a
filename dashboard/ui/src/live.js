// Live updates: the events of api/ws, a WebSocket carrying what api/stream sends as server-sent
// events (docs/dashboard.md), one message `{event, data}` each. Why a WebSocket and not
// EventSource: a browser gives a host six HTTP/1.1 connections, shared by all its tabs, and each
// open EventSource holds one for good, so the seventh dashboard tab would never load; WebSockets
// are counted apart. One socket per URL, shared by every subscriber and closed with the last.

const streams = new Map(); // url -> {socket, listeners: Map(event -> Set(fn)), refs, stateFns, ...}
const RETRY_MS = [500, 1000, 2000, 5000]; // reconnect backoff; the last one repeats

/** Subscribe to events of `url` (e.g. 'api/ws' or 'api/ws?job=K/NS/N');
 * handlers: {jobs: fn(data), job: fn(data), metrics: fn(data), hello: fn(data)}.
 * onState(connected: boolean) follows the connection. Returns the unsubscribe function. */
export function subscribe(url, handlers, onState) {
  let stream = streams.get(url);
  if (!stream) {
    stream = {url, socket: null, listeners: new Map(), refs: 0, stateFns: new Set(), retries: 0, timer: 0, closed: false};
    streams.set(url, stream);
    connect(stream);
  }
  stream.refs += 1;
  for (const [event, fn] of Object.entries(handlers)) {
    if (!stream.listeners.has(event)) stream.listeners.set(event, new Set());
    stream.listeners.get(event).add(fn);
  }
  if (onState) {
    stream.stateFns.add(onState);
    onState(stream.socket?.readyState === WebSocket.OPEN);
  }
  return () => {
    for (const [event, fn] of Object.entries(handlers)) stream.listeners.get(event)?.delete(fn);
    if (onState) stream.stateFns.delete(onState);
    stream.refs -= 1;
    if (stream.refs === 0) {
      stream.closed = true;
      clearTimeout(stream.timer);
      stream.socket?.close();
      streams.delete(url);
    }
  };
}

function connect(stream) {
  const address = new URL(stream.url, location.href);
  address.protocol = address.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(address);
  stream.socket = socket;
  socket.addEventListener('open', () => {
    stream.retries = 0;
    stream.stateFns.forEach((fn) => fn(true));
  });
  socket.addEventListener('message', (e) => dispatch(stream, e.data));
  // A dropped socket (the dashboard restarted, or dropped a page that fell behind) comes back
  // with a backoff; the `hello` after it tells the views to re-read what they show.
  socket.addEventListener('close', () => {
    if (stream.closed) return;
    stream.stateFns.forEach((fn) => fn(false));
    const delay = RETRY_MS[Math.min(stream.retries, RETRY_MS.length - 1)];
    stream.retries += 1;
    stream.timer = setTimeout(() => connect(stream), delay);
  });
}

function dispatch(stream, text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    return; // not ours to show; never let a bad message break the page
  }
  for (const fn of stream.listeners.get(message.event) || []) {
    try {
      fn(message.data);
    } catch (err) {
      // A view's handler failing must not stop the others; report it without a console error.
      console.warn('live update failed', err);
    }
  }
}
