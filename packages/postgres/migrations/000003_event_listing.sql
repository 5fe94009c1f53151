-- 000003_event_listing: the REST API lists events newest first, by name or not, a page at a
-- time on a keyset cursor (received_at, id); these indexes make every page a seek, however long
-- the history, with no OFFSET. Append-only: add the next numbered file instead of editing this.
CREATE INDEX events_received_idx ON events (received_at DESC, id DESC);
CREATE INDEX events_name_received_idx ON events (name, received_at DESC, id DESC);
