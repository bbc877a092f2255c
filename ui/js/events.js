// The live event stream. Browsers cannot set headers on a WebSocket, so the token travels as a
// subprotocol ("bearer.<token>") beside "connector.v1". When the socket drops (the host
// restarted, the network blinked) it reconnects by itself with a growing pause, and on every
// (re)open the screen reloads its state, since events sent while away are lost. The host closes
// the socket with code 4401 when its token is revoked (signed out elsewhere, revoked by an
// admin): then there is nothing to reconnect with, and the screen asks to sign in again.
const kMinDelayMs = 500;
const kMaxDelayMs = 5000;
export const kTokenRevoked = 4401;

export class EventStream {
  constructor(session, {onEvent, onOpen, onState, onRevoked}) {
    this.session = session;
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.onState = onState;
    this.onRevoked = onRevoked;
    this.delay = kMinDelayMs;
    this.socket = null;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
    this.socket = null;
  }

  open() {
    if (this.stopped || !this.session.token()) return;
    this.onState('connecting');
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${window.location.host}/api/v1/events`,
                                 ['connector.v1', `bearer.${this.session.token()}`]);
    this.socket = socket;
    socket.addEventListener('message', (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;  // not ours to interpret
      }
      if (event.type === 'hello') {
        this.delay = kMinDelayMs;
        this.onState('online');
        this.onOpen();
        return;
      }
      this.onEvent(event);
    });
    socket.addEventListener('close', (closed) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (closed.code === kTokenRevoked) {
        this.stopped = true;
        this.onRevoked();
        return;
      }
      this.onState('offline');
      this.timer = setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, kMaxDelayMs);
    });
  }
}
