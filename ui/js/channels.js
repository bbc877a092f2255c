// The channels: one section per enabled plugin, built from the plugin's self-description
// (name, capabilities, connect_fields), and inside it one card per account. Nothing here knows
// a plugin by name, so a new plugin appears without changing the screen.
import {h, replaceChildren, uniqueId} from './dom.js';
import {t, localized, formatTime} from './i18n.js';

const kLogLimit = 10;

// What the error text of a failed call should say, in the screen's language: the host's errors
// carry stable codes, translated here; a code the screen does not know (a plugin's own failure)
// keeps the message it came with.
export function reasonOf(error) {
  if (error.code === 'network') return t('error.network');
  const key = `error.code.${error.code}`;
  const text = t(key);
  return text === key ? error.message : text;
}

// A status detail with the plugin's optional machine-readable reason_code: the reason in the
// screen's language, the plugin's own words kept as the technical detail.
export function detailOf(detail, reasonCode) {
  const key = `reason.${reasonCode}`;
  const reason = reasonCode ? t(key) : key;
  if (reason === key) return detail;
  return detail ? `${reason} ${t('reason.detail', {detail})}` : reason;
}

export class ChannelsView {
  constructor(root, api, confirm) {
    this.root = root;
    this.api = api;
    this.confirm = confirm;
    this.plugins = [];
    this.sections = new Map();  // plugin id → {element, list, empty}
    this.cards = new Map();     // account id → AccountCard
  }

  pluginName(pluginId) {
    const record = this.plugins.find((p) => p.id === pluginId);
    return record && record.descriptor ? localized(record.descriptor.name) : pluginId;
  }

  // Loads run one after another: an event's reload and a language switch's rebuild overlapping
  // would both add the same account's card.
  load() {
    const previous = this.loading;
    this.loading = (async () => {
      try {
        await previous;
      } catch {
        // that load's failure was its caller's to handle
      }
      return this.loadOnce();
    })();
    return this.loading;
  }

  async loadOnce() {
    const [plugins, accounts] = await Promise.all([
      this.api.get('/plugins'), this.api.get('/accounts'),
    ]);
    this.plugins = plugins.items;
    this.layout();
    const seen = new Set();
    for (const account of accounts.items) {
      seen.add(account.id);
      this.upsert(account);
    }
    for (const id of [...this.cards.keys()]) {
      if (!seen.has(id)) this.drop(id);
    }
    this.refreshEmptyNotes();
    // The host answered: "it did not answer" is no longer true anywhere on the screen.
    for (const failure of this.root.querySelectorAll('.error-text[data-unreachable="true"]')) {
      failure.hidden = true;
      failure.dataset.unreachable = 'false';
    }
  }

  // Builds the plugin sections once; later loads keep them (and the forms being typed in).
  layout() {
    if (!this.root.querySelector('#channels-heading')) {
      replaceChildren(this.root, h('h2', {id: 'channels-heading', text: t('channels.heading')}),
                      h('div', {class: 'channel-list'}));
    }
    const container = this.root.querySelector('.channel-list');
    if (this.plugins.length === 0) {
      replaceChildren(container, h('p', {class: 'note', text: t('channels.none')}));
      return;
    }
    for (const record of this.plugins) {
      if (this.sections.has(record.id)) continue;
      const section = this.pluginSection(record);
      this.sections.set(record.id, section);
      container.append(section.element);
    }
  }

  pluginSection(record) {
    const headingId = uniqueId('plugin');
    const name = record.descriptor ? localized(record.descriptor.name) : record.id;
    const element = h('section', {class: 'channel', 'aria-labelledby': headingId,
                                  'data-plugin': record.id});
    element.append(h('h3', {id: headingId, text: name}));
    const list = h('div', {class: 'accounts'});
    const empty = h('p', {class: 'note', text: t('channels.no_accounts')});
    if (record.state !== 'loaded') {
      // The host's refusal code, translated; its English words stay as the detail.
      const key = `plugin.code.${record.code}`;
      const known = record.code ? t(key) : key;
      const reason = known === key ? record.reason
          : record.reason ? `${known} ${t('reason.detail', {detail: record.reason})}` : known;
      element.append(h('p', {class: 'error-text', role: 'alert',
                             text: t('channels.refused', {reason})}));
      return {element, list, empty};
    }
    const add = h('button', {type: 'button', class: 'secondary add-account',
                             text: t('channels.add', {plugin: name}),
                             onclick: () => this.addAccount(record.id, add)});
    const addError = h('p', {class: 'error-text', role: 'alert', hidden: true});
    element.append(empty, list, add, addError);
    return {element, list, empty, addError};
  }

  async addAccount(pluginId, button) {
    button.disabled = true;
    const {addError} = this.sections.get(pluginId);
    try {
      const account = await this.api.post('/accounts', {plugin: pluginId});
      addError.hidden = true;
      const card = this.upsert(account);
      this.refreshEmptyNotes();
      card.focusForm();
    } catch (error) {
      showFailure(addError, reasonOf(error), error);
    } finally {
      button.disabled = false;
    }
  }

  upsert(account) {
    let card = this.cards.get(account.id);
    if (card) {
      card.update(account);
      card.loadLog();  // entries written while the event stream was down
      return card;
    }
    const section = this.sections.get(account.plugin);
    const record = this.plugins.find((p) => p.id === account.plugin);
    if (!section || !record) return null;  // a plugin no longer enabled: nothing to show
    const number = section.list.children.length + 1;
    card = new AccountCard(account, record.descriptor, number, this.api, this.confirm,
                           () => this.removed(account.id, account.plugin));
    this.cards.set(account.id, card);
    section.list.append(card.element);
    this.renumber(account.plugin);
    return card;
  }

  // Accounts without a label are called "Account 1", "Account 2"… in the order shown; after a
  // removal the rest close up, so no two cards ever carry the same name.
  renumber(pluginId) {
    let number = 0;
    for (const card of this.cards.values()) {
      if (card.account.plugin === pluginId) card.setNumber(++number);
    }
  }

  // After a removal from this screen: the focus goes to the section's "Add account" button
  // rather than getting lost with the card. The host's "account.removed" event may have taken
  // the card away already, so the section is known by the plugin, not looked up on the card.
  removed(accountId, pluginId) {
    this.drop(accountId);
    this.focusAdd(pluginId);
  }

  focusAdd(pluginId) {
    const section = this.sections.get(pluginId);
    const add = section ? section.element.querySelector('.add-account') : null;
    if (add) add.focus();
  }

  drop(accountId) {
    const card = this.cards.get(accountId);
    if (!card) return;
    const hadFocus = card.element.contains(document.activeElement);
    card.dispose();
    this.cards.delete(accountId);
    this.renumber(card.account.plugin);
    this.refreshEmptyNotes();
    if (hadFocus) this.focusAdd(card.account.plugin);
  }

  refreshEmptyNotes() {
    for (const section of this.sections.values()) {
      section.empty.hidden = section.list.children.length > 0;
    }
  }

  // Live events about accounts. Returns false when the event names an account this screen has
  // not seen (made in another window), so the caller reloads.
  handle(event) {
    if (!event.type.startsWith('account.')) return true;
    const card = this.cards.get(event.account_id);
    if (event.type === 'account.removed') {
      this.drop(event.account_id);
      return true;
    }
    if (!card) return false;
    card.handle(event);
    return true;
  }

  // Language switch: rebuild every label, keeping what was typed in the connect forms.
  async relabel() {
    const typed = new Map();
    for (const [id, card] of this.cards) typed.set(id, card.typedValues());
    this.root.replaceChildren();
    for (const card of this.cards.values()) card.dispose();
    this.sections.clear();
    this.cards.clear();
    await this.load();
    for (const [id, values] of typed) this.cards.get(id)?.restoreTyped(values);
  }
}

class AccountCard {
  constructor(account, descriptor, number, api, confirm, onRemoved) {
    this.account = account;
    this.descriptor = descriptor ?? {};
    this.number = number;
    this.api = api;
    this.confirm = confirm;
    this.onRemoved = onRemoved;
    this.capabilities = new Set(this.descriptor.capabilities ?? []);
    this.mode = null;
    this.formError = '';
    this.qrExpired = false;
    this.qrObjectUrl = null;
    this.qrShownFor = null;
    this.qrTimer = null;
    this.pairing = null;
    this.progress = null;
    this.logEntries = [];
    this.draft = {};  // what was typed in the form, secrets left out, kept across rebuilds
    this.build();
    this.update(account);
    this.loadLog();
  }

  // The values of the connect form's fields by name (what the attendant typed or chose).
  typedValues() {
    const values = new Map();
    for (const control of this.element.querySelectorAll('form [name]')) {
      values.set(control.name, control.type === 'checkbox' ? control.checked : control.value);
    }
    return values;
  }

  restoreTyped(values) {
    for (const control of this.element.querySelectorAll('form [name]')) {
      if (!values.has(control.name)) continue;
      if (control.type === 'checkbox') control.checked = values.get(control.name);
      else control.value = values.get(control.name);
      control.dispatchEvent(new Event('change', {bubbles: true}));
    }
  }

  setNumber(number) {
    if (number === this.number) return;
    this.number = number;
    this.titleEl.textContent = this.title();
  }

  title() {
    if (this.account.label) return this.account.label;
    return `${localized(this.descriptor.name)} · ${t('account.label', {n: this.number})}`;
  }

  build() {
    const titleId = uniqueId('account');
    this.element = h('article', {class: 'card', 'aria-labelledby': titleId,
                                 'data-account': this.account.id});
    this.titleEl = h('h4', {id: titleId, class: 'card-title'});
    this.statusEl = h('p', {class: 'status', role: 'status', 'aria-live': 'polite',
                            'data-testid': 'status'});
    this.countEl = h('span', {class: 'linked-count', 'data-testid': 'linked-count'});
    this.body = h('div', {class: 'card-body'});
    this.progressEl = h('div', {class: 'progress-area', hidden: true});
    const logId = uniqueId('log');
    this.logList = h('ol', {class: 'log-list', 'aria-labelledby': logId, 'data-testid': 'log'});
    this.logEl = h('details', {class: 'log', open: true},
                   h('summary', {id: logId, text: t('log.heading')}), this.logList);
    const remove = h('button', {type: 'button', class: 'secondary remove-account',
                                'data-testid': 'remove', text: t('remove'),
                                onclick: () => this.remove(remove)});
    this.removeError = h('p', {class: 'error-text', role: 'alert', hidden: true});
    this.element.append(h('header', {class: 'card-header'}, this.titleEl, this.statusEl),
                        this.body, this.progressEl, this.logEl,
                        h('div', {class: 'card-footer'}, remove, this.removeError));
  }

  // Removing deletes the account on the host together with its messages and integration log
  // (cases stay), so the dialog says so in plain words before anything happens.
  async remove(button) {
    const name = this.account.account || this.title();
    const confirmed = await this.confirm({title: t('remove.title'),
                                          body: t('remove.body', {account: shownName(name)}),
                                          ok: t('remove.confirm')});
    if (!confirmed) {
      button.focus();
      return;
    }
    button.disabled = true;
    try {
      await this.api.delete(`/accounts/${this.account.id}`);
      this.onRemoved();
    } catch (error) {
      button.disabled = false;
      showFailure(this.removeError, t('remove.failed', {reason: reasonOf(error)}), error);
    }
  }

  dispose() {
    clearTimeout(this.qrTimer);
    if (this.qrObjectUrl) URL.revokeObjectURL(this.qrObjectUrl);
    this.element.remove();
  }

  focusForm() {
    const first = this.body.querySelector('input, select, button');
    if (first) first.focus();
  }

  update(account) {
    this.account = {...this.account, ...account};
    if (account.state && account.state !== 'disconnected') this.qrExpired = false;
    if (account.state === 'connected') this.pairing = null;
    this.titleEl.textContent = this.title();
    this.renderStatus();
    this.renderCount();
    this.renderBody();
  }

  handle(event) {
    switch (event.type) {
      case 'account.status': {
        const next = {state: event.state, detail: event.detail ?? '',
                      reason_code: event.reason_code ?? ''};
        if ('account' in event) next.account = event.account;
        if (event.state !== 'awaiting_qr') next.qr = null;
        this.update(next);
        break;
      }
      case 'account.qr':
        this.qrExpired = false;
        this.update({qr: {expires_at: event.expires_at,
                          png: `/api/v1/accounts/${this.account.id}/qr.png`,
                          svg: `/api/v1/accounts/${this.account.id}/qr.svg`}});
        break;
      case 'account.qr_expired':
        this.qrExpired = true;
        this.update({qr: null});
        break;
      case 'account.pairing_code':
        this.pairing = {code: event.code, expires_at: event.expires_at};
        this.renderBody(true);
        break;
      case 'account.progress':
        this.progress = {phase: event.phase, done: event.done, total: event.total};
        this.renderProgress();
        break;
      case 'account.log':
        this.addLog(event.entry);
        break;
      case 'account.auto_linked':
        this.update({auto_linked_cases: event.cases});
        break;
      default:
        break;
    }
  }

  // --- Status and count ------------------------------------------------------------------------

  statusText() {
    const {state, account} = this.account;
    const detail = detailOf(this.account.detail, this.account.reason_code);
    switch (state) {
      case 'connected':
        return account ? t('state.connected', {account: shownName(account)})
                       : t('state.connected_anon');
      case 'connecting': return t('state.connecting');
      case 'awaiting_qr': return t('state.awaiting_qr');
      case 'error': return detail ? t('state.error', {detail}) : t('state.error_plain');
      case 'reauth_needed': return t('state.reauth_needed', {detail: detail || '—'});
      default:
        // Why it is not connected, when the plugin said so with a reason code (a session
        // replaced elsewhere, a QR that expired).
        return this.account.reason_code && detail
          ? t('state.disconnected_why', {detail}) : t('state.disconnected');
    }
  }

  renderStatus() {
    const state = this.account.state ?? 'disconnected';
    this.statusEl.className = `status state-${state}`;
    this.statusEl.dataset.state = state;
    replaceChildren(this.statusEl, h('span', {class: 'status-dot', 'aria-hidden': 'true'}),
                    h('span', {class: 'visually-hidden', text: t('status.prefix') + ' '}),
                    this.statusText());
  }

  renderCount() {
    const n = Number(this.account.auto_linked_cases ?? 0);
    this.countEl.dataset.count = String(n);
    this.countEl.textContent =
        n === 0 ? t('linked.zero') : n === 1 ? t('linked.one') : t('linked.count', {n});
  }

  // --- The body: form, QR, connecting, or connected ----------------------------------------------

  modeFor() {
    const {state, qr} = this.account;
    if (state === 'connected') return 'connected';
    if (qr || state === 'awaiting_qr') return 'qr';
    if (this.qrExpired) return 'qr-expired';
    if (state === 'connecting') return 'connecting';
    return 'form';
  }

  // Rebuilds the body only when what it shows changes, so a form being filled in keeps its
  // values and focus while status events arrive.
  renderBody(force = false) {
    const mode = this.modeFor();
    if (mode === this.mode && !force) {
      this.refreshBody(mode);
      return;
    }
    const hadFocus = this.body.contains(document.activeElement);
    this.mode = mode;
    if (mode !== 'qr') this.clearQr();
    const build = {
      connected: () => this.connectedView(),
      qr: () => this.qrView(),
      'qr-expired': () => this.qrExpiredView(),
      connecting: () => this.connectingView(),
      form: () => this.formView(),
    }[mode];
    replaceChildren(this.body, build());
    this.refreshBody(mode);
    if (hadFocus) this.focusForm();
  }

  refreshBody(mode) {
    if (mode === 'form') this.renderFormError();
    if (mode === 'qr') this.showQr();
  }

  actionRow(...buttons) {
    return h('div', {class: 'actions'}, ...buttons, this.countEl);
  }

  connectedView() {
    const disconnect = h('button', {type: 'button', class: 'danger', text: t('disconnect'),
                                    onclick: () => this.disconnect(disconnect)});
    this.disconnectError = h('p', {class: 'error-text', role: 'alert'});
    return [this.actionRow(disconnect), this.disconnectError];
  }

  async disconnect(button) {
    const name = this.account.account || this.title();
    const confirmed = await this.confirm({title: t('disconnect.title'),
                                          body: t('disconnect.body', {account: shownName(name)}),
                                          ok: t('disconnect.confirm')});
    if (!confirmed) {
      button.focus();
      return;
    }
    try {
      this.update(await this.api.post(`/accounts/${this.account.id}/disconnect`));
    } catch (error) {
      showFailure(this.disconnectError, t('disconnect.failed', {reason: reasonOf(error)}), error);
    }
  }

  // The connect form, from the plugin's connect_fields. Required fields and passwords are in
  // view; the optional rest (server names, ports…) folds under "More options", or under "Pair with
  // a code" for plugins that pair by code (the phone number is that alternative's only field).
  formView() {
    const form = h('form', {class: 'connect-form', novalidate: true});
    const main = h('div', {class: 'fields'});
    const more = h('div', {class: 'fields'});
    for (const field of this.descriptor.connect_fields ?? []) {
      const shown = field.required || field.type === 'password' || field.type === 'select';
      (shown && !(field.type === 'select' && !field.required) ? main : more).append(this.fieldRow(field));
    }
    form.append(main);
    if (more.children.length > 0) {
      const summary = this.capabilities.has('pairing_code') ? t('connect.pairing')
                                                             : t('connect.more');
      form.append(h('details', {class: 'more'}, h('summary', {text: summary}), more));
    }
    const submit = h('button', {type: 'submit', class: 'primary',
                                text: t('connect.named', {plugin: localized(this.descriptor.name)})});
    const buttons = [submit];
    if (this.capabilities.has('oauth')) {
      this.oauthButton = h('button', {type: 'button', class: 'secondary',
                                      onclick: () => this.startOAuth(form)});
      this.labelOAuth(form);
      form.addEventListener('change', () => this.labelOAuth(form));
      buttons.push(this.oauthButton);
    }
    this.formErrorEl = h('p', {class: 'error-text form-error', role: 'alert',
                               id: uniqueId('form-error'), 'data-testid': 'form-error'});
    this.oauthNote = h('p', {class: 'note', role: 'status'});
    form.append(this.actionRow(...buttons), this.formErrorEl, this.oauthNote);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.connect(form, submit);
    });
    return form;
  }

  fieldRow(field) {
    const id = uniqueId(`f-${field.name}`);
    const label = localized(field.label) || field.name;
    const labelEl = h('label', {for: id}, label,
                      field.required ? h('span', {class: 'required',
                                                  text: ' ' + t('connect.required')}) : null);
    let control;
    if (field.type === 'select') {
      control = h('select', {id, name: field.name, required: field.required});
      for (const choice of field.choices ?? []) {
        control.append(h('option', {value: choice.value, text: localized(choice.label) || choice.value}));
      }
      if (field.default != null) control.value = String(field.default);
      if (field.name in this.draft) control.value = String(this.draft[field.name]);
    } else if (field.type === 'checkbox') {
      control = h('input', {id, name: field.name, type: 'checkbox',
                            checked: Boolean(this.draft[field.name] ?? field.default)});
      return h('div', {class: 'field checkbox'}, control, labelEl);
    } else {
      const type = ['email', 'password', 'number'].includes(field.type) ? field.type : 'text';
      control = h('input', {id, name: field.name, type, required: field.required,
                            min: type === 'number' ? field.min : null,
                            max: type === 'number' ? field.max : null,
                            autocomplete: type === 'password' ? 'new-password' :
                                          type === 'email' ? 'email' : 'off',
                            value: field.secret ? null
                                                : this.draft[field.name] ?? field.default ?? null});
    }
    control.dataset.fieldType = field.type;
    return h('div', {class: 'field'}, labelEl, control);
  }

  values(form) {
    const values = {};
    for (const control of form.querySelectorAll('[name]')) {
      const type = control.dataset.fieldType;
      if (type === 'checkbox') {
        values[control.name] = control.checked;
      } else if (control.value !== '') {
        values[control.name] = type === 'number' ? Number(control.value) : control.value;
      }
    }
    return values;
  }

  // What is wrong with the form before anything is sent, in words, with the control to fix;
  // null when it can be sent. The host and the plugin check again.
  problem(form) {
    for (const field of this.descriptor.connect_fields ?? []) {
      const control = form.querySelector(`[name="${CSS.escape(field.name)}"]`);
      if (!control || field.type === 'checkbox') continue;
      const name = localized(field.label) || field.name;
      if (field.type === 'number' && control.validity && control.validity.badInput) {
        return {control, text: t('connect.field_not_number', {field: name})};
      }
      // Spaces alone fill nothing in (a password may be anything, so it is taken as typed).
      if ((field.secret ? control.value : control.value.trim()) === '') {
        const needed = field.required && field.default == null;
        if (needed) return {control, text: t('connect.field_required', {field: name})};
        continue;
      }
      if (field.type === 'number') {
        const n = Number(control.value);
        const min = field.min ?? -Infinity;
        const max = field.max ?? Infinity;
        if (!Number.isInteger(n) || n < min || n > max) {
          return {control, text: field.min != null && field.max != null
              ? t('connect.field_number', {field: name, min: field.min, max: field.max})
              : t('connect.field_not_number', {field: name})};
        }
      }
    }
    return null;
  }

  async connect(form, submit) {
    const problem = this.problem(form);
    if (problem) {
      this.formError = problem.text;
      this.renderFormError();
      problem.control.setAttribute('aria-invalid', 'true');
      problem.control.setAttribute('aria-describedby', this.formErrorEl.id);
      problem.control.focus();
      return;
    }
    for (const control of form.querySelectorAll('[aria-invalid]')) {
      control.removeAttribute('aria-invalid');
      control.removeAttribute('aria-describedby');
    }
    const values = this.values(form);
    const secrets = new Set((this.descriptor.connect_fields ?? [])
                                .filter((f) => f.secret || f.type === 'password')
                                .map((f) => f.name));
    this.draft = Object.fromEntries(Object.entries(values).filter(([name]) => !secrets.has(name)));
    this.formError = '';
    this.renderFormError();
    submit.disabled = true;
    submit.textContent = t('connect.working');
    try {
      this.update(await this.api.post(`/accounts/${this.account.id}/connect`, {values}));
    } catch (error) {
      this.formError = t('connect.failed', {reason: reasonOf(error)});
      this.renderFormError();
    } finally {
      submit.disabled = false;
      submit.textContent = t('connect.named', {plugin: localized(this.descriptor.name)});
    }
  }

  // The reason of the last failure, beside the form: the connect call's own answer, else the
  // account's error detail from the host.
  renderFormError() {
    if (!this.formErrorEl) return;
    const {state} = this.account;
    const detail = detailOf(this.account.detail, this.account.reason_code);
    let text = this.formError;
    if (!text && (state === 'error' || state === 'reauth_needed') && detail) {
      text = t('connect.failed', {reason: detail});
    }
    this.formErrorEl.textContent = text;
    this.formErrorEl.hidden = !text;
  }

  // "Connect with Google/Microsoft", named after the provider chosen in the form when it is one.
  labelOAuth(form) {
    const provider = [...form.querySelectorAll('select')].map((s) => s.value).join(' ');
    this.oauthButton.textContent = /google|gmail/i.test(provider) ? t('oauth.google')
        : /microsoft|outlook|office/i.test(provider) ? t('oauth.microsoft') : t('oauth.both');
  }

  // POST /accounts/{id}/oauth/start answers {authorization_url}; the provider's page finishes
  // the sign-in and the account's status events show the result. The body carries the form's
  // values (provider, address) as connect does. That route did not exist in the host when this
  // was written: a 404 says so in words instead of failing silently.
  async startOAuth(form) {
    this.oauthNote.replaceChildren();
    this.formError = '';
    this.renderFormError();
    try {
      const answer = await this.api.post(`/accounts/${this.account.id}/oauth/start`,
                                         {values: this.values(form)});
      const url = String(answer.authorization_url ?? '');
      if (!/^https?:\/\//i.test(url)) throw new Error('no authorization_url');
      const opened = window.open(url, '_blank', 'noopener');
      // With noopener the browser returns null even when the window opened, so the link is
      // always offered as well.
      this.oauthNote.append(opened ? t('oauth.opened') : t('oauth.blocked'),
                            h('a', {href: url, target: '_blank', rel: 'noopener noreferrer',
                                    text: t('oauth.link')}));
    } catch (error) {
      this.formError = error.status === 404 ? t('oauth.unavailable')
                                            : t('oauth.failed', {reason: reasonOf(error)});
      this.renderFormError();
    }
  }

  // --- QR and pairing code -----------------------------------------------------------------------

  qrView() {
    const headingId = uniqueId('qr');
    this.qrImg = h('img', {class: 'qr-image', 'data-testid': 'qr', alt: t('qr.loading'),
                           width: 280, height: 280, hidden: true});
    this.qrInfo = h('p', {class: 'qr-info', text: t('qr.loading')});
    const cancel = h('button', {type: 'button', class: 'secondary', text: t('qr.cancel'),
                                onclick: () => this.cancelPairing()});
    return h('section', {class: 'qr-area', 'aria-labelledby': headingId},
             h('h5', {id: headingId, text: t('qr.heading')}),
             h('p', {class: 'note', text: t('qr.help')}),
             h('div', {class: 'qr-frame'}, this.qrImg),
             this.qrInfo, this.pairingView(), this.actionRow(cancel));
  }

  pairingView() {
    if (!this.pairing || !this.pairing.code) return null;
    return h('div', {class: 'pairing', role: 'status'},
             h('h5', {text: t('pairing.heading')}),
             h('p', {class: 'note', text: t('pairing.help')}),
             h('p', {class: 'pairing-code', 'data-testid': 'pairing-code', text: this.pairing.code}),
             this.pairing.expires_at ? h('p', {class: 'note', text: t('qr.expires',
                                                     {time: formatTime(this.pairing.expires_at)})})
                                     : null);
  }

  qrExpiredView() {
    const refresh = h('button', {type: 'button', class: 'primary', text: t('qr.refresh'),
                                 onclick: () => this.refreshQr(refresh)});
    this.qrError = h('p', {class: 'error-text', role: 'alert'});
    const cancel = h('button', {type: 'button', class: 'secondary', text: t('qr.cancel'),
                                onclick: () => { this.qrExpired = false; this.renderBody(); }});
    return [h('p', {class: 'qr-expired', role: 'alert', text: t('qr.expired')}),
            this.actionRow(refresh, cancel), this.qrError];
  }

  async refreshQr(button) {
    button.disabled = true;
    try {
      this.update(await this.api.post(`/accounts/${this.account.id}/qr/refresh`));
    } catch (error) {
      button.disabled = false;
      this.qrError.textContent = reasonOf(error);
    }
  }

  async cancelPairing() {
    try {
      this.update(await this.api.post(`/accounts/${this.account.id}/disconnect`));
    } catch (error) {
      if (this.qrInfo) this.qrInfo.textContent = reasonOf(error);
    }
  }

  // Fetches the current QR image (with the token) when a new one was announced, and replaces
  // the old one in place.
  async showQr() {
    const qr = this.account.qr;
    if (!qr || !this.qrImg) return;
    const key = `${qr.expires_at}`;
    if (this.qrShownFor === key) return;
    this.qrShownFor = key;
    clearTimeout(this.qrTimer);
    // Should the plugin's own expiry notice be lost, the screen still stops showing a dead code.
    const left = qr.expires_at - Date.now();
    if (left > 0) {
      this.qrTimer = setTimeout(() => {
        if (this.account.qr && this.account.qr.expires_at === qr.expires_at) {
          this.qrExpired = true;
          this.update({qr: null});
        }
      }, left + 1500);
    }
    try {
      const blob = await this.api.blob(qr.svg ? qr.svg.replace(/^\/api\/v1/, '')
                                              : qr.png.replace(/^\/api\/v1/, ''));
      if (this.qrShownFor !== key || !this.qrImg) return;
      if (this.qrObjectUrl) URL.revokeObjectURL(this.qrObjectUrl);
      this.qrObjectUrl = URL.createObjectURL(blob);
      this.qrImg.src = this.qrObjectUrl;
      this.qrImg.alt = t('qr.alt', {account: this.account.account || this.title(),
                                    time: formatTime(qr.expires_at)});
      this.qrImg.dataset.expiresAt = String(qr.expires_at);
      this.qrImg.hidden = false;
      this.qrInfo.textContent = t('qr.expires', {time: formatTime(qr.expires_at)});
    } catch (error) {
      if (this.qrShownFor === key && this.qrInfo) {
        this.qrInfo.textContent = t('qr.load_failed', {reason: reasonOf(error)});
      }
    }
  }

  clearQr() {
    clearTimeout(this.qrTimer);
    this.qrShownFor = null;
    this.qrImg = null;
    this.qrInfo = null;
    if (this.qrObjectUrl) URL.revokeObjectURL(this.qrObjectUrl);
    this.qrObjectUrl = null;
  }

  connectingView() {
    const cancel = h('button', {type: 'button', class: 'secondary', text: t('qr.cancel'),
                                onclick: () => this.cancelPairing()});
    return [h('p', {class: 'note', text: t('state.connecting')}), this.pairingView(),
            this.actionRow(cancel)];
  }

  // --- First sync progress -----------------------------------------------------------------------

  renderProgress() {
    const p = this.progress;
    if (p?.phase === 'backlog') {
      // Older messages (queued while away, or the phone's history) were filed without being
      // announced one by one: said once here.
      this.progressEl.hidden = false;
      replaceChildren(this.progressEl, h('p', {class: 'note', role: 'status', 'data-testid': 'backlog',
                                               text: t('progress.backlog', {count: p.done})}));
      return;
    }
    const finished = !p || (p.total > 0 && p.done >= p.total);
    this.progressEl.hidden = finished;
    if (finished) return;
    // A phase the screen knows (the e-mail plugins' "initial_sync") is translated; any other
    // is shown as the plugin named it.
    const known = p.phase ? t(`progress.phase.${p.phase}`) : t('progress.label');
    const phase = known.startsWith('progress.phase.') ? p.phase : known;
    const text = p.total > 0 ? t('progress.phase', {phase, done: p.done, total: p.total})
                             : t('progress.phase_open', {phase, done: p.done});
    const id = uniqueId('progress');
    const bar = h('progress', {id, max: p.total > 0 ? p.total : null,
                               value: p.total > 0 ? p.done : null});
    replaceChildren(this.progressEl, h('label', {for: id, text: t('progress.label')}), bar,
                    h('span', {class: 'note', role: 'status', text}));
  }

  // --- Integration log -----------------------------------------------------------------------------

  async loadLog() {
    try {
      const page = await this.api.get(`/accounts/${this.account.id}/log?limit=${kLogLimit}`);
      const known = new Set(this.logEntries.map((e) => e.id));
      this.logEntries = [...this.logEntries, ...page.items.filter((e) => !known.has(e.id))];
    } catch {
      // The log is a convenience; the card works without it.
    }
    this.renderLog();
  }

  addLog(entry) {
    if (this.logEntries.some((e) => e.id === entry.id)) return;
    this.logEntries.unshift(entry);
    this.renderLog();
  }

  renderLog() {
    this.logEntries.sort((a, b) => b.id - a.id);
    this.logEntries = this.logEntries.slice(0, kLogLimit);
    if (this.logEntries.length === 0) {
      replaceChildren(this.logList, h('li', {class: 'note', text: t('log.empty')}));
      return;
    }
    replaceChildren(this.logList, this.logEntries.map((entry) => {
      const kind = t(`log.kind.${entry.kind}`);
      const text = logText(entry);
      return h('li', {class: `log-entry level-${entry.level}`, 'data-kind': entry.kind},
               h('time', {datetime: new Date(entry.at).toISOString(), text: formatTime(entry.at)}),
               ' ', h('strong', {text: kind.startsWith('log.kind.') ? entry.kind : kind}),
               ' — ', h('span', {class: 'log-text', 'data-translated': text.translated,
                                 text: text.text}));
    }));
  }
}

// The host's integration-log entries carry a stable kind (connected, disconnected, error,
// reauth_needed, qr_expired, plugin) but their text is an English sentence. The sentences the
// host itself writes are fixed and recognised here, so they are shown translated; everything else
// (a plugin's own error detail, a "plugin" entry) has no code to translate from and is shown as
// the channel wrote it. Known gap: the host would need to send a message code with parameters
// (e.g. {"code": "auth_failed"} from the plugin) for those to be translated too.
const kHostLogTexts = [
  {kind: 'connected', pattern: /^Connected as (.*)$/s, key: 'log.text.connected'},
  {kind: 'disconnected', pattern: /^Disconnected$/, key: 'log.text.disconnected'},
  {kind: 'error', pattern: /^Connection failed$/, key: 'log.text.failed'},
  {kind: 'reauth_needed', pattern: /^Connection failed$/, key: 'log.text.failed'},
  {kind: 'qr_expired', pattern: /^QR code expired$/, key: 'log.text.qr_expired'},
];

// Shows why a request failed in its place, replacing what was there. A failure for want of an
// answer is marked, so that the next time the host answers it is taken away.
function showFailure(element, text, error) {
  element.textContent = text;
  element.hidden = false;
  element.dataset.unreachable = String(!error.status);
}

function logText(entry) {
  for (const known of kHostLogTexts) {
    if (known.kind !== entry.kind) continue;
    const match = known.pattern.exec(entry.text ?? '');
    if (match) return {text: t(known.key, {account: shownName(match[1] ?? '')}), translated: 'true'};
  }
  return {text: withoutBidiControls(entry.text ?? ''), translated: 'false'};
}

// Explicit direction controls (U+202A–U+202E, U+2066–U+2069) have no business in an account
// name or a log line, and can make one read as another ("gnp.exe" shown as "exe.png").
function withoutBidiControls(text) {
  return text.replace(/[\u202A-\u202E\u2066-\u2069]/g, '');
}

const kNameLimit = 60;

// An account name as it goes inside a sentence: without direction controls, and cut to a length
// that fits a card (with "…").
function shownName(name) {
  const chars = [...withoutBidiControls(name)];
  return chars.length > kNameLimit ? chars.slice(0, kNameLimit - 1).join('') + '…' : chars.join('');
}
