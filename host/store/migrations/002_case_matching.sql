-- The case-matching engine: contact merges (recorded so they can be undone), the RFC 5322
-- Message-IDs of stored and sent mail (what a reply's In-Reply-To/References point at), and
-- indexes for the matcher's per-message lookups.

-- A contact merged into another keeps its row, pointing at the one it was merged into, so an
-- undo can give it back its identities and cases under the same id.
ALTER TABLE contacts ADD COLUMN merged_into INTEGER REFERENCES contacts (id);

-- One merge: `merged_id` was folded into `kept_id`. `identities` is a JSON array of
-- [kind, value] pairs and `cases` a JSON array of case ids that moved; an undo moves back those
-- still on the kept contact. An undone merge also stops the matcher from merging the same two
-- contacts again by itself.
CREATE TABLE contact_merges (
  id INTEGER PRIMARY KEY,
  kept_id INTEGER NOT NULL REFERENCES contacts (id),
  merged_id INTEGER NOT NULL REFERENCES contacts (id),
  reason TEXT NOT NULL DEFAULT '',
  identities TEXT NOT NULL DEFAULT '[]',
  cases TEXT NOT NULL DEFAULT '[]',
  merged_by TEXT NOT NULL DEFAULT '',
  merged_at INTEGER NOT NULL,
  undone_by TEXT,
  undone_at INTEGER
);
CREATE INDEX contact_merges_pair ON contact_merges (kept_id, merged_id);

-- Message-IDs without their angle brackets. Filled by the trigger below from every stored
-- message: details.message_id when the plugin reports it, else the external id of an outbound
-- message when it looks like a Message-ID (contains '@'), which is how mail plugins name what
-- they sent. The first message to claim an id keeps it.
CREATE TABLE mail_message_ids (
  message_id TEXT PRIMARY KEY,
  message_row INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX mail_message_ids_row ON mail_message_ids (message_row);

CREATE TRIGGER messages_remember_message_id AFTER INSERT ON messages
BEGIN
  INSERT OR IGNORE INTO mail_message_ids (message_id, message_row)
  SELECT v, NEW.id FROM (
    SELECT trim(coalesce(json_extract(NEW.details, '$.message_id'),
                         CASE WHEN NEW.direction = 'outbound' AND instr(NEW.external_id, '@') > 0
                              THEN NEW.external_id END), ' <>') AS v)
  WHERE v IS NOT NULL AND v != '';
END;

-- The matcher asks "this contact's latest (open) case of this attendant" for every message.
CREATE INDEX cases_contact_attendant ON cases (contact_id, attendant_id, id);
