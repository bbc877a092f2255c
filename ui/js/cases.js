// A simple case view: the attendant's cases, the messages of one case from every channel, and a
// reply box that answers through the channel (account) the customer last wrote from.
//
// Mail bodies are shown as plain text only. When a mail has no text part, its HTML is turned
// into text with DOMParser (which runs no scripts and loads nothing) and only its textContent is
// shown; HTML is never put into this page.
import {h, replaceChildren, uniqueId} from './dom.js';
import {t, formatDateTime} from './i18n.js';
import {reasonOf} from './channels.js';

// The newest 50 cases and each case's newest 100 messages come first; "Load older" buttons
// fetch the next pages through the API's paging (?before=<the previous page's next_before>).
const kCaseLimit = 50;
const kMessageLimit = 100;

export class CasesView {
  constructor(root, api, channelName) {
    this.root = root;
    this.api = api;
    this.channelName = channelName;  // account id → the channel's display name
    this.cases = [];
    this.casesNextBefore = null;  // the next older page of cases, null when none is left
    this.olderCasesShown = false;
    this.selected = null;
    this.messages = [];
    this.messagesNextBefore = null;
    this.reloadTimer = null;
    this.build();
  }

  build() {
    this.listEl = h('ul', {class: 'case-list', 'data-testid': 'case-list'});
    this.listNote = h('p', {class: 'note'});
    this.olderCases = h('button', {type: 'button', class: 'secondary load-older', hidden: true,
                                   text: t('cases.older'), onclick: () => this.loadOlderCases()});
    this.olderCasesError = h('p', {class: 'error-text', role: 'alert', hidden: true});
    this.detail = h('div', {class: 'case-detail', 'data-testid': 'case-detail'});
    replaceChildren(this.root, h('h2', {id: 'cases-heading', text: t('cases.heading')}),
                    h('div', {class: 'cases-layout'},
                      h('nav', {class: 'case-nav', 'aria-labelledby': 'cases-heading'},
                        this.listNote, this.listEl, this.olderCases, this.olderCasesError),
                      this.detail));
    this.renderDetail();
  }

  relabel() {
    this.build();
    this.renderList();
    this.renderDetail();
  }

  // Reloads the newest page. Older pages already shown stay (merged by id), so a live update
  // does not take away what the attendant paged back to.
  async load() {
    try {
      const page = await this.api.get(`/cases?limit=${kCaseLimit}`);
      if (this.olderCasesShown) {
        this.mergeCases(page.items);
      } else {
        this.cases = page.items;
        this.casesNextBefore = page.next_before ?? null;
      }
      this.listNote.textContent = this.cases.length === 0 ? t('cases.empty') : '';
    } catch (error) {
      this.cases = [];
      this.casesNextBefore = null;
      this.olderCasesShown = false;
      this.listNote.textContent = t('cases.unavailable', {reason: reasonOf(error)});
    }
    this.renderList();
    if (this.selected != null) await this.refreshMessages();
  }

  mergeCases(items) {
    const byId = new Map(this.cases.map((c) => [c.id, c]));
    for (const c of items) byId.set(c.id, c);
    this.cases = [...byId.values()].sort((a, b) => b.id - a.id);
  }

  async loadOlderCases() {
    if (this.casesNextBefore == null) return;
    const firstNew = this.cases.length;
    this.olderCases.disabled = true;
    this.olderCasesError.hidden = true;
    try {
      const page = await this.api.get(`/cases?limit=${kCaseLimit}&before=${this.casesNextBefore}`);
      this.olderCasesShown = true;
      this.mergeCases(page.items);
      this.casesNextBefore = page.next_before ?? null;
    } catch (error) {
      this.olderCasesError.hidden = false;
      this.olderCasesError.textContent = t('cases.older_failed', {reason: reasonOf(error)});
    } finally {
      this.olderCases.disabled = false;
    }
    this.renderList();
    // Keyboard users continue where the new cases begin.
    const next = this.listEl.querySelectorAll('.case-item')[firstNew];
    if (next && this.olderCases.hidden) next.focus();
  }

  // Many messages can arrive at once (a first mail sync); one reload covers them all.
  // Known gap: the host pushes no event when a case is created, edited or closed through the API
  // (only message and account events exist), so such changes show here after the next message,
  // a reconnect or a reload.
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
    this.olderCases.hidden = this.casesNextBefore == null;
  }

  async select(caseId) {
    this.selected = caseId;
    this.replyNote = null;
    this.replyKey = null;
    this.messages = [];
    this.messagesNextBefore = null;
    this.renderList();
    await this.loadMessages();
    const heading = this.detail.querySelector('h3');
    if (heading) heading.focus();
  }

  async loadMessages() {
    try {
      const page = await this.api.get(`/cases/${this.selected}/messages?limit=${kMessageLimit}`);
      this.messages = page.items.slice().reverse();  // oldest first, as a conversation reads
      this.messagesNextBefore = page.next_before ?? null;
    } catch (error) {
      this.messages = [];
      this.messagesNextBefore = null;
      this.detailError = reasonOf(error);
    }
    this.renderDetail();
  }

  // The page before the oldest message shown goes on top; the view stays where the reader was.
  async loadOlderMessages(button, error) {
    if (this.messagesNextBefore == null) return;
    const caseId = this.selected;
    button.disabled = true;
    error.hidden = true;
    try {
      const page = await this.api.get(
          `/cases/${caseId}/messages?limit=${kMessageLimit}&before=${this.messagesNextBefore}`);
      if (caseId !== this.selected) return;
      this.messagesNextBefore = page.next_before ?? null;
      for (const m of page.items) {
        if (!this.messages.some((known) => known.id === m.id)) this.messages.push(m);
      }
      this.messages.sort((a, b) => a.id - b.id);
      this.renderMessages({keepScroll: true});
    } catch (failure) {
      error.hidden = false;
      error.textContent = t('case.older_failed', {reason: reasonOf(failure)});
    } finally {
      button.disabled = false;
      button.hidden = this.messagesNextBefore == null;
      if (button.hidden) this.detail.querySelector('h3')?.focus();
    }
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
    const olderError = h('p', {class: 'error-text', role: 'alert', hidden: true});
    const older = h('button', {type: 'button', class: 'secondary load-older', text: t('case.older'),
                               hidden: this.messagesNextBefore == null,
                               onclick: () => this.loadOlderMessages(older, olderError)});
    replaceChildren(this.detail,
                    h('h3', {tabindex: '-1', text: t('case.heading', {id: chosen.id, title})}),
                    older, olderError, this.messageList, this.replyBox());
  }

  renderMessages({keepScroll = false} = {}) {
    if (!this.messageList) return;
    const fromBottom = this.messageList.scrollHeight - this.messageList.scrollTop;
    if (this.messages.length === 0) {
      replaceChildren(this.messageList, h('li', {class: 'note', text: t('case.no_messages')}));
      return;
    }
    replaceChildren(this.messageList, this.messages.map((m) => this.messageItem(m)));
    this.messageList.scrollTop = keepScroll ? this.messageList.scrollHeight - fromBottom
                                            : this.messageList.scrollHeight;
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
    if (event.type === 'account.removed') {
      // The host deleted that account's messages: counts and the open case change.
      this.messages = this.messages.filter((m) => m.account_id !== event.account_id);
      this.renderDetail();
      this.scheduleReload();
    } else if (event.type === 'message.new') {
      const m = event.message;
      if (m.case && m.case.id === this.selected) {
        this.add(m);
        this.refreshReplyBox();
      }
      this.scheduleReload();
    } else if (event.type === 'account.progress' && event.phase === 'backlog') {
      // Older messages were filed quietly, without a message.new each.
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

// Elements that start a new line of their own; the text between them is kept as it reads.
const kBlocks = new Set(['P', 'DIV', 'LI', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'TR', 'UL', 'OL',
                         'TABLE', 'BLOCKQUOTE', 'PRE', 'ADDRESS', 'SECTION', 'ARTICLE', 'HEADER',
                         'FOOTER', 'DL', 'DT', 'DD', 'HR', 'FIGURE']);
const kParagraphs = new Set(['P', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'BLOCKQUOTE', 'PRE', 'TABLE',
                             'UL', 'OL']);
const kSkipped = new Set(['SCRIPT', 'STYLE', 'HEAD', 'TITLE', 'TEMPLATE', 'NOSCRIPT']);

// The text of a mail's HTML, read from an inert document (DOMParser runs no scripts and loads
// nothing): paragraphs and headings become blank lines, <br>, list items, table rows and other
// blocks line breaks, table cells a tab. Only text comes out; no markup reaches this page.
export function plainTextOf(html) {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const parts = [];
  const breakLine = (count) => parts.push({lines: count});
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const inPre = node.parentElement && node.parentElement.closest('pre');
      parts.push(inPre ? node.textContent : node.textContent.replace(/\s+/g, ' '));
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE || kSkipped.has(node.tagName)) return;
    if (node.tagName === 'BR') {
      breakLine(1);
      return;
    }
    const block = kBlocks.has(node.tagName);
    const gap = kParagraphs.has(node.tagName) ? 2 : 1;
    if (block) breakLine(gap);
    if (node.tagName === 'LI') parts.push('• ');
    for (const child of node.childNodes) walk(child);
    if (node.tagName === 'TD' || node.tagName === 'TH') parts.push('\t');
    if (block) breakLine(gap);
  };
  if (doc.body) walk(doc.body);

  // Joins the pieces: runs of breaks collapse to the largest asked for, spaces at line ends go.
  let text = '';
  let pending = 0;
  for (const part of parts) {
    if (typeof part !== 'string') {
      pending = Math.max(pending, part.lines);
      continue;
    }
    if (part === '' || (part.trim() === '' && (pending > 0 || text === '' || text.endsWith('\n')))) {
      continue;
    }
    if (pending > 0 && text !== '') text = text.replace(/[ \t]+$/, '') + '\n'.repeat(pending);
    pending = 0;
    text += text === '' || text.endsWith('\n') ? part.replace(/^ +/, '') : part;
  }
  return text.split('\n').map((line) => line.replace(/[ \t]+$/, '')).join('\n').trim();
}
