-- The standing-check nonces stay bounded (docs/app-download.md §3): each insert deletes nonces
-- expired for a lifetime (by expires_at) and counts the card's open ones (at most 16).
CREATE INDEX card_checks_by_expiry ON card_checks (expires_at);
CREATE INDEX card_checks_by_card ON card_checks (card_id, expires_at);
