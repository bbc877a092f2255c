-- The idempotency key a client may give with a send (POST .../messages "client_id"): a retry
-- with the same key finds the message sent the first time instead of sending it again.
ALTER TABLE messages ADD COLUMN client_id TEXT;
CREATE UNIQUE INDEX messages_client_id ON messages (account_id, client_id)
  WHERE client_id IS NOT NULL;
