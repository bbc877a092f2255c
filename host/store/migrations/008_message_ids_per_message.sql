-- A Message-ID is remembered for every stored message that carries it, not only the first one:
-- a customer mail that reaches two attendants threads the replies that refer to it for both.
DROP TRIGGER messages_remember_message_id;
CREATE TABLE mail_message_ids_all (
  message_id TEXT NOT NULL,
  message_row INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  PRIMARY KEY (message_id, message_row)
) WITHOUT ROWID;
-- Every stored message again, also those the first-claim table left out.
INSERT OR IGNORE INTO mail_message_ids_all (message_id, message_row)
  SELECT v, id FROM (
    SELECT id, trim(coalesce(json_extract(details, '$.message_id'),
                             CASE WHEN direction = 'outbound' AND instr(external_id, '@') > 0
                                  THEN external_id END), ' <>') AS v
    FROM messages)
  WHERE v IS NOT NULL AND v != '';
DROP TABLE mail_message_ids;
ALTER TABLE mail_message_ids_all RENAME TO mail_message_ids;
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
