-- The issuers' delegations this provider keeps for STO-3 (docs/parties.md, "Provider"): each
-- verified when stored (chain, names this provider, pins its DPR, unexpired) and again when
-- used. card_id NULL: the delegation covers any card of its issuer. The DER is the delegation
-- as signed, embedded as is in the lone SAs made under it.
CREATE TABLE delegations (
    delegation_digest BYTEA PRIMARY KEY,
    issuer TEXT NOT NULL,
    card_id BYTEA,
    not_after BIGINT NOT NULL,
    delegation_der BYTEA NOT NULL,
    stored_at BIGINT NOT NULL
);
CREATE INDEX delegations_by_card ON delegations (card_id, not_after);
