// A simple case view: the attendant's cases, the messages of one case from every channel, and a
// reply box that answers through the channel (account) the customer last wrote from.
//
// Mail bodies are shown as plain text only. When a mail has no text part, its HTML is turned
// into text with DOMParser (which runs no scripts and loads nothing) and only its textContent is
// shown; HTML is never put into this page.
import {h, replaceChildren, uniqueId} from './dom.js';
import {t, formatDateTime} from './i18n.js';
import {reasonOf} from './channels.js';

// Only the newest 50 cases and each case's newest 100 messages are shown: there is no paging
// ("next_before") in this simple view yet.
const kCaseLimit = 50;
const kMessageLimit = 100;

export class CasesView {
  constructor(root, api, channelName) {
    this.root = root;
    this.api = api;
    this.channelName = channelName;  // account id → the channel's display name
    this.cases = [];
    this.selected = null;
    this.messages = [];
    this.reloadTimer = null;
    this.build();
  }

  build() {
    this.listEl = h('ul', {class: 'case-list', 'data-testid': 'case-list'});
    this.listNote = h('p', {class: 'note'});
    this.detail = h('div', {class: 'case-detail', 'data-testid': 'case-detail'});
    replaceChildren(this.root, h('h2', {id: 'cases-heading', text: t('cases.heading')}),
                    h('div', {class: 'cases-layout'},
                      h('nav', {class: 'case-nav', 'aria-labelledby': 'cases-heading'},
                        this.listNote, this.listEl),
                      this.detail));
    this.renderDetail();
  }

  relabel() {
    this.build();
    this.renderList();
    this.renderDetail();
  }

  async load() {
    try {
      const page = await this.api.get(`/cases?limit=${kCaseLimit}`);
      this.cases = page.items;
      this.listNote.textContent = this.cases.length === 0 ? t('cases.empty') : '';
    } catch (error) {
      this.cases = [];
      this.listNote.textContent = t('cases.unavailable', {reason: reasonOf(error)});
    }
    this.renderList();
    if (this.selected != null) await this.refreshMessages();
  }

  // Many messages can arrive at once (a first mail sync); one reload covers them all.
  scheduleReload() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), 300);
  }

  renderList() {
    replaceChildren(this.listEl, this.cases.map((c) => {
      const title = c.title || (c.contact && c.contact.name) || '—';
      const current = c.id === this.selected;
      return h('li', {},
               h('button', {type: 'button', class: 'case-item', 'aria-current': current ? 'true' : null,
                            'data-case': c.id, onclick: () => this.select(c.id)},
                 h('span', {class: 'case-title', text: t('cases.item', {id: c.id, title})}),
                 h('span', {class: 'case-meta',
                            text: `${t(`cases.status.${c.status}`)} · `
                                  + (c.message_count === 1 ? t('cases.message_one')
                                     : t('cases.messages', {n: c.message_count ?? 0}))})));
    }));
  }

  async select(caseId) {
    this.selected = caseId;
    this.replyNote = null;
    this.replyKey = null;
    this.messages = [];
    this.renderList();
    await this.loadMessages();
    const heading = this.detail.querySelector('h3');
    if (heading) heading.focus();
  }

  async loadMessages() {
    try {
      const page = await this.api.get(`/cases/${this.selected}/messages?limit=${kMessageLimit}`);
      this.messages = page.items.slice().reverse();  // oldest first, as a conversation reads
    } catch (error) {
      this.messages = [];
      this.detailError = reasonOf(error);
    }
    this.renderDetail();
  }

  // Merges the newest messages into the open case without rebuilding the reply box.
  async refreshMessages() {
    try {
      const page = await this.api.get(`/cases/${this.selected}/messages?limit=${kMessageLimit}`);
      for (const m of page.items) this.add(m);
      this.refreshReplyBox();
    } catch {
      // Kept as shown; the next event or reconnect tries again.
    }
  }

  // A new inbound message can change whom the reply goes to; the box is rebuilt only then and
  // only when empty, so a reply being typed is never lost.
  refreshReplyBox() {
    const target = this.replyTarget();
    const typing = this.detail.querySelector('textarea');
    const changed = target && `${target.account_id} ${target.from}` !== this.replyKey;
    if (changed && (!typing || typing.value === '')) this.renderDetail();
  }

  current() { return this.cases.find((c) => c.id === this.selected); }

  renderDetail() {
    const chosen = this.current();
    if (!chosen) {
      replaceChildren(this.detail, h('p', {class: 'note', text: t('cases.pick')}));
      return;
    }
    const title = chosen.title || '—';
    this.messageList = h('ol', {class: 'messages', 'data-testid': 'messages'});
    this.renderMessages();
    replaceChildren(this.detail,
                    h('h3', {tabindex: '-1', text: t('case.heading', {id: chosen.id, title})}),
                    this.messageList, this.replyBox());
  }

  renderMessages() {
    if (!this.messageList) return;
    if (this.messages.length === 0) {
      replaceChildren(this.messageList, h('li', {class: 'note', text: t('case.no_messages')}));
      return;
    }
    replaceChildren(this.messageList, this.messages.map((m) => this.messageItem(m)));
    this.messageList.scrollTop = this.messageList.scrollHeight;
  }

  messageItem(m) {
    const inbound = m.direction === 'inbound';
    const who = inbound ? t('message.in', {from: m.from || '—'}) : t('message.out', {to: m.to || '—'});
    const body = m.text || (m.html ? plainTextOf(m.html) : '');
    return h('li', {class: `message ${inbound ? 'inbound' : 'outbound'}`, 'data-message': m.id},
             h('p', {class: 'message-meta'},
               h('span', {text: who}), ' · ',
               h('span', {class: 'channel-badge',
                          text: t('message.via', {channel: this.channelName(m.account_id, m.channel)})}),
               ' · ', h('time', {text: formatDateTime(m.sent_at ?? m.stored_at)}),
               !inbound && m.delivery_status
                   ? ` · ${t('message.delivery', {status: deliveryText(m.delivery_status)})}` : null),
             m.subject ? h('p', {class: 'message-subject',
                                 text: t('message.subject', {subject: m.subject})}) : null,
             h('p', {class: 'message-text', text: body}),
             !m.text && m.html ? h('p', {class: 'note', text: t('message.html_only')}) : null);
  }

  // Replies go to whoever wrote last, through the account that received it.
  replyTarget() {
    for (let i = this.messages.length - 1; i >= 0; --i) {
      const m = this.messages[i];
      if (m.direction === 'inbound' && m.from) return m;
    }
    return null;
  }

  replyBox() {
    const target = this.replyTarget();
    if (!target) return h('p', {class: 'note', text: t('reply.none')});
    const id = uniqueId('reply');
    const text = h('textarea', {id, rows: 3, required: true, 'data-testid': 'reply-text'});
    const status = h('p', {class: 'note', role: 'status', 'data-testid': 'reply-status',
                           text: this.noteText()});
    this.replyKey = `${target.account_id} ${target.from}`;
    const send = h('button', {type: 'submit', class: 'primary', text: t('reply.send')});
    const form = h('form', {class: 'reply'},
                   h('label', {for: id, text: t('reply.label', {
                     channel: this.channelName(target.account_id, target.channel), to: target.from})}),
                   text, h('div', {class: 'actions'}, send), status);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!text.value.trim()) return;
      send.disabled = true;
      const body = {to: target.from, text: text.value, case_id: this.selected};
      if (target.subject) {
        body.subject = /^re:/i.test(target.subject) ? target.subject : `Re: ${target.subject}`;
      }
      try {
        const sent = await this.api.post(`/accounts/${target.account_id}/messages`, body);
        this.add(sent);
        text.value = '';
        this.replyNote = {key: 'reply.sent'};
      } catch (error) {
        this.replyNote = {key: 'reply.failed', params: {reason: reasonOf(error)}};
      } finally {
        send.disabled = false;
        // The form may have been rebuilt meanwhile; the note goes to whichever is shown.
        const shown = this.detail.querySelector('[data-testid="reply-status"]');
        if (shown) shown.textContent = this.noteText();
      }
    });
    return form;
  }

  // Kept as a key, so a language switch translates it too.
  noteText() {
    return this.replyNote ? t(this.replyNote.key, this.replyNote.params) : '';
  }

  add(message) {
    const known = this.messages.find((m) => m.id === message.id);
    if (known) {
      if (known.delivery_status !== message.delivery_status) {
        known.delivery_status = message.delivery_status;
        this.renderMessages();
      }
      return;
    }
    this.messages.push(message);
    this.messages.sort((a, b) => a.id - b.id);
    this.renderMessages();
  }

  handle(event) {
    if (event.type === 'message.new') {
      const m = event.message;
      if (m.case && m.case.id === this.selected) {
        this.add(m);
        this.refreshReplyBox();
      }
      this.scheduleReload();
    } else if (event.type === 'message.delivery') {
      const m = this.messages.find((x) => x.id === event.message_id);
      if (m) {
        m.delivery_status = event.status;
        this.renderMessages();
      }
    }
  }
}

function deliveryText(status) {
  const text = t(`delivery.${status}`);
  return text.startsWith('delivery.') ? status : text;
}

function plainTextOf(html) {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  return (doc.body ? doc.body.textContent : '').replace(/\n{3,}/g, '\n\n').trim();
}
