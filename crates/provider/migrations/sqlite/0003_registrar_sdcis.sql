-- The Data Registrar's SDCI's this provider obtained (SPEC STO-5, docs/parties.md, "Provider"),
-- one per SDI digest, so serving the same certified data again does not ask the registrar
-- again. Each is verified when obtained and again when served; one that no longer verifies (a
-- new registrar root) is replaced by a fresh one.
CREATE TABLE registrar_sdcis (
    sdi_digest BLOB PRIMARY KEY,
    registrar TEXT NOT NULL,
    sdci_der BLOB NOT NULL,
    obtained_at BIGINT NOT NULL
);
