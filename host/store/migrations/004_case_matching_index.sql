-- "This contact's newest open case of this attendant" is asked for nearly every message. With
-- every column the matcher reads in the index, the answer is one index probe and never a second
-- descent into the cases table (issue 4's matching benchmark, 1,000,000 cases).
CREATE INDEX cases_contact_open ON cases (contact_id, attendant_id, status, id, closed_at);

-- Its first column serves every lookup the older (contact_id, status) index served.
DROP INDEX cases_contact;
