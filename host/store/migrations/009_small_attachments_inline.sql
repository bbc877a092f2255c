-- Small attachment contents (an e-mail's raw copy, a small image) are kept in their row, where
-- SQLite reads and writes them faster than one file each. NULL: the content is in its file under
-- attachments/, as for every row an older host wrote.
ALTER TABLE attachments ADD COLUMN bytes BLOB;
