-- The first schema: people and their tokens, channel accounts with their durable values and
-- integration log, and the conversation data (contacts, cases, messages, attachments, links).
-- Times are milliseconds since the Unix epoch.

CREATE TABLE attendants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'attendant')),
  created_at INTEGER NOT NULL
);

-- Bearer tokens, stored as BLAKE2b hashes: the token itself is shown once, when issued.
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  attendant_id TEXT NOT NULL REFERENCES attendants (id) ON DELETE CASCADE,
  hash BLOB NOT NULL UNIQUE,
  label TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
);

-- One-time login links for the UI, hashed like tokens; used_at is set when redeemed.
CREATE TABLE login_links (
  hash BLOB PRIMARY KEY,
  attendant_id TEXT NOT NULL REFERENCES attendants (id) ON DELETE CASCADE,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);

-- One connection of one plugin for one attendant. `wanted_connected` is what the attendant
-- asked for last, so a restart resumes exactly the accounts that were connected.
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  attendant_id TEXT NOT NULL REFERENCES attendants (id) ON DELETE CASCADE,
  plugin_id TEXT NOT NULL,
  label TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'disconnected',
  account_name TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  wanted_connected INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX accounts_attendant ON accounts (attendant_id);

-- The plugins' durable per-account values; secret ones are sealed with the host's key.
CREATE TABLE account_values (
  account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  secret INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (account_id, key)
);

CREATE TABLE integration_log (
  id INTEGER PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  level TEXT NOT NULL,
  text TEXT NOT NULL
);
CREATE INDEX integration_log_account ON integration_log (account_id, id);

CREATE TABLE contacts (
  id INTEGER PRIMARY KEY,
  display_name TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);

-- Ways to reach a contact: a normalised phone, a WhatsApp id (phone JID or LID), an address.
CREATE TABLE contact_identities (
  kind TEXT NOT NULL CHECK (kind IN ('phone', 'whatsapp', 'email')),
  value TEXT NOT NULL,
  contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
  PRIMARY KEY (kind, value)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);

CREATE TABLE cases (
  id INTEGER PRIMARY KEY,
  attendant_id TEXT NOT NULL REFERENCES attendants (id) ON DELETE CASCADE,
  contact_id INTEGER REFERENCES contacts (id),
  title TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  closed_at INTEGER
);
CREATE INDEX cases_attendant ON cases (attendant_id, id);
CREATE INDEX cases_contact ON cases (contact_id, status);

CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  channel TEXT NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
  external_id TEXT NOT NULL,
  sender TEXT NOT NULL DEFAULT '',
  recipient TEXT NOT NULL DEFAULT '',
  subject TEXT NOT NULL DEFAULT '',
  text_body TEXT NOT NULL DEFAULT '',
  html_body TEXT NOT NULL DEFAULT '',
  sent_at INTEGER,
  stored_at INTEGER NOT NULL,
  delivery_status TEXT NOT NULL DEFAULT '',
  automatic INTEGER NOT NULL DEFAULT 0,
  link_keys TEXT NOT NULL DEFAULT '{}',
  details TEXT NOT NULL DEFAULT '{}',
  UNIQUE (account_id, external_id)
);
CREATE INDEX messages_account ON messages (account_id, id);

-- Attachment bytes live in content-addressed files; this records what exists.
CREATE TABLE attachments (
  id TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE message_attachments (
  message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  attachment_id TEXT NOT NULL REFERENCES attachments (id),
  name TEXT NOT NULL,
  mime TEXT NOT NULL,
  content_id TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (message_id, position)
);

-- How each message came to be on its case: automatically (by phone, WhatsApp id, address,
-- subject case id or thread; or a new case opened for it) or by hand, and by whom.
CREATE TABLE message_links (
  message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  method TEXT NOT NULL
    CHECK (method IN ('phone', 'whatsapp_id', 'address', 'subject', 'thread', 'new_case', 'manual')),
  linked_by TEXT NOT NULL DEFAULT '',
  linked_at INTEGER NOT NULL
);
CREATE INDEX message_links_case ON message_links (case_id);
