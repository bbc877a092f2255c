-- Contacts belong to one attendant. Before this, one contact served every attendant, so an
-- attendant who named a customer's phone or address on a case joined (or merged) the contact
-- that another attendant's cases and inbound messages used. Now every contact, and every
-- identity that reaches it, is the attendant's own: the same phone may be a contact of Ana and
-- a different contact of Beto, and matching a message looks only at the contacts of the
-- attendant who owns the account it arrived on.

-- The owner. '' only for contacts this migration cannot place (see below).
ALTER TABLE contacts ADD COLUMN attendant_id TEXT NOT NULL DEFAULT '';

-- An existing contact goes to the attendant of its oldest case.
UPDATE contacts SET attendant_id = coalesce(
  (SELECT attendant_id FROM cases WHERE contact_id = contacts.id ORDER BY id LIMIT 1), '');

-- Every other attendant whose cases used the contact gets a copy of it (same identities), and
-- those cases move to the copy. New ids follow the highest existing one.
CREATE TEMP TABLE contact_split (
  n INTEGER PRIMARY KEY,
  old_id INTEGER NOT NULL,
  attendant_id TEXT NOT NULL,
  new_id INTEGER
);
INSERT INTO contact_split (old_id, attendant_id)
  SELECT DISTINCT c.contact_id, c.attendant_id FROM cases c JOIN contacts k ON k.id = c.contact_id
  WHERE c.attendant_id != k.attendant_id ORDER BY c.contact_id, c.attendant_id;
UPDATE contact_split SET new_id = n + (SELECT coalesce(max(id), 0) FROM contacts);
INSERT INTO contacts (id, display_name, created_at, attendant_id)
  SELECT s.new_id, k.display_name, k.created_at, s.attendant_id
  FROM contact_split s JOIN contacts k ON k.id = s.old_id;
UPDATE cases SET contact_id = (SELECT new_id FROM contact_split s
                               WHERE s.old_id = cases.contact_id
                                 AND s.attendant_id = cases.attendant_id)
  WHERE EXISTS (SELECT 1 FROM contact_split s
                WHERE s.old_id = cases.contact_id AND s.attendant_id = cases.attendant_id);

-- A contact merged earlier follows the contact it was merged into. A contact with no case at
-- all (its messages stayed unassigned) cannot be placed: it keeps owner '' and is never matched
-- again; the next message from that person makes a new contact of the account's attendant.
UPDATE contacts SET attendant_id = coalesce(
  (SELECT k.attendant_id FROM contacts k WHERE k.id = contacts.merged_into), '')
  WHERE attendant_id = '' AND merged_into IS NOT NULL;

-- Identities are keyed by owner too, so "this attendant's contact with this phone" is one
-- index probe. The owner is copied from the contact (never differs from it).
CREATE TABLE contact_identities_by_owner (
  attendant_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('phone', 'whatsapp', 'email')),
  value TEXT NOT NULL,
  contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
  PRIMARY KEY (attendant_id, kind, value)
) WITHOUT ROWID;
INSERT OR IGNORE INTO contact_identities_by_owner (attendant_id, kind, value, contact_id)
  SELECT k.attendant_id, i.kind, i.value, i.contact_id
  FROM contact_identities i JOIN contacts k ON k.id = i.contact_id;
INSERT OR IGNORE INTO contact_identities_by_owner (attendant_id, kind, value, contact_id)
  SELECT s.attendant_id, i.kind, i.value, s.new_id
  FROM contact_identities i JOIN contact_split s ON s.old_id = i.contact_id;
DROP TABLE contact_identities;
ALTER TABLE contact_identities_by_owner RENAME TO contact_identities;
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);
CREATE INDEX contacts_attendant ON contacts (attendant_id, id);

DROP TABLE contact_split;
