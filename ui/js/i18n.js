// Translations: Brazilian Portuguese by default (the specification's language), English on
// request. The choice is remembered in localStorage; it is not a secret.
import ptBR from '../i18n/pt-BR.js';
import en from '../i18n/en.js';

const kCatalogs = {'pt-BR': ptBR, en};
const kStorageKey = 'connector.lang';
export const kLanguages = [
  {code: 'pt-BR', name: 'Português (Brasil)'},
  {code: 'en', name: 'English'},
];

let current = kCatalogs[localStorage.getItem(kStorageKey)] ? localStorage.getItem(kStorageKey)
                                                          : 'pt-BR';

export function language() { return current; }

// The host's own pages that a browser opens directly (the answer after an OAuth sign-in) read
// the choice from this cookie.
function shareWithHost() {
  document.cookie = `connector_lang=${current}; path=/; SameSite=Lax`;
}
shareWithHost();

export function setLanguage(code) {
  if (!kCatalogs[code]) return;
  current = code;
  localStorage.setItem(kStorageKey, code);
  document.documentElement.lang = code;
  shareWithHost();
}

// t('state.connected', {account: 'ana'}) → "Conectado como ana". A missing key falls back to
// Portuguese, then to the key itself, so a gap shows rather than breaks the screen.
export function t(key, params = {}) {
  const text = kCatalogs[current][key] ?? kCatalogs['pt-BR'][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// Picks the current language out of a plugin's {en, pt-BR} label, or takes a plain string.
export function localized(label) {
  if (label == null) return '';
  if (typeof label === 'string') return label;
  return label[current] ?? label['pt-BR'] ?? label.en ?? Object.values(label)[0] ?? '';
}

export function formatTime(ms) {
  return new Date(ms).toLocaleTimeString(current);
}

export function formatDateTime(ms) {
  return new Date(ms).toLocaleString(current);
}
