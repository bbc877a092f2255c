-- The machine-readable reason a plugin gave with the account's last status (its reason_code),
-- kept beside the detail so that it survives a host restart.
ALTER TABLE accounts ADD COLUMN reason_code TEXT NOT NULL DEFAULT '';
