-- The last case id the host chose itself (for a case a message opened, or a POST /cases without
-- an "id"). The host's numbers count on from here, skipping ids already taken, and never from an
-- id the platform gave: a platform that numbers its cases 5000, 5001, … does not find 5001 taken
-- by the host's next case. Existing stores go on from their highest id, as before.
CREATE TABLE host_case_counter (
  only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
  last_id INTEGER NOT NULL
);
INSERT INTO host_case_counter (only_row, last_id) SELECT 1, coalesce(max(id), 0) FROM cases;

-- GET /cases lists an attendant's cases newest first by when they were opened.
CREATE INDEX cases_attendant_created ON cases (attendant_id, created_at, id);
