//! The provider's OpenAPI 3.1 document (`GET /openapi.json`), written by hand. Every route of
//! `http::routes` and server-kit's `KIT_ROUTES` is here (a test checks both directions), and
//! every 4xx lists its stable error codes under `x-error-codes`.

mod download;

use serde_json::{json, Value};
use server_kit::openapi::{error_response, internal, json_body, json_response, with_body_codes};

fn media() -> Value {
    error_response("The body is not JSON.", &["unsupported_media_type"])
}

fn string_param(name: &str, location: &str, required: bool, description: &str) -> Value {
    json!({"name": name, "in": location, "required": required, "description": description, "schema": {"type": "string"}})
}

fn version_param() -> Value {
    json!({"name": "version", "in": "query", "required": false, "description": "Default: the highest version.", "schema": {"type": "integer", "minimum": 0}})
}

fn hex(description: &str) -> Value {
    json!({"type": "string", "pattern": "^([0-9a-f]{2})*$", "description": description})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

/// The document.
pub fn document() -> Value {
    let mut doc = base_document();
    merge(&mut doc["paths"], download::paths());
    merge(&mut doc["components"]["schemas"], download::schemas());
    doc
}

/// Adds `extra`'s members to `into`, merging objects present in both (a path's operations).
fn merge(into: &mut Value, extra: Value) {
    match (into, extra) {
        (Value::Object(into), Value::Object(extra)) => {
            for (key, value) in extra {
                match into.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        into.insert(key, value);
                    }
                }
            }
        }
        (into, extra) => *into = extra,
    }
}

/// The document of the routes before issue 4.
fn base_document() -> Value {
    let item_id = string_param("id", "path", true, "Item ID, 1..=16 bytes, hex.");
    let card_id = string_param("id", "path", true, "Card ID, 16 bytes, hex.");
    let item_schema = object(
        &[
            "item_id",
            "version",
            "size",
            "data_digest",
            "policy",
            "published_at",
        ],
        json!({
            "item_id": hex("1..=16 bytes."),
            "version": {"type": "integer"},
            "size": {"type": "integer"},
            "data_digest": hex("SHA-256 of the data."),
            "policy": {"type": "integer", "description": "Policy bits: 1 certified data required, 2 not deletable, 4 delete when disabled."},
            "published_at": {"type": "integer"}
        }),
    );
    let crl_schema = object(
        &[
            "issuer",
            "number",
            "this_update",
            "next_update",
            "revoked",
            "source",
        ],
        json!({
            "issuer": {"type": "string", "description": "The registrar or issuer that signed it (party ID)."},
            "number": {"type": "integer", "description": "Its cRLNumber."},
            "this_update": {"type": "integer"},
            "next_update": {"type": "integer"},
            "revoked": {"type": "integer", "description": "How many certificates it revokes."},
            "source": {"type": "string", "description": "The base URL of the registrar or issuer it was fetched from, `file` or `other`."}
        }),
    );
    let crls_schema = object(
        &["crls"],
        json!({"crls": {"type": "array", "items": crl_schema}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cardwright provider",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A data provider certified by the Data Registrar: catalog, storing authorizations (STO-1 grant, STO-2 request, STO-3 alone), data plain or certified (SDCI, or the Data Registrar's SDCI'), receipts into per-card records and a signed ledger, the registrars' CRLs it follows; membership terms, services, application downloads and members (docs/app-download.md). Binary values (DER objects, digests, IDs, data) are lowercase hex. See docs/parties.md."
        },
        "paths": {
            "/v1/provider": {"get": {
                "operationId": "getProvider",
                "summary": "Who this provider is: party ID, DPR, and the public key its SAs, SDCIs and ledger entries verify under.",
                "responses": {"200": json_response("The provider.", "Provider"), "500": internal()}
            }},
            "/v1/items": {
                "post": {
                    "operationId": "publishItem",
                    "summary": "Publish an item version; size and SHA-256 are computed here. Repeating identical content returns 200.",
                    "security": [{"operatorToken": []}],
                    "requestBody": json_body("PublishRequest"),
                    "responses": {
                        "201": json_response("Published.", "Item"),
                        "200": json_response("Already published with this content.", "Item"),
                        "400": error_response("A field is wrong; the code names it.", &with_body_codes(&["invalid_item_id", "invalid_data", "invalid_policy"])),
                        "401": error_response("Missing, malformed or unknown operator token.", &["unauthenticated"]),
                        "403": error_response("The operator is disabled.", &["forbidden"]),
                        "409": error_response("This item version exists with other content.", &["item_version_exists"]),
                        "415": media(),
                        "500": internal()
                    }
                },
                "get": {
                    "operationId": "listItems",
                    "summary": "Every item version, by item ID then version.",
                    "responses": {"200": json_response("The catalog.", "ItemList"), "500": internal()}
                }
            },
            "/v1/items/{id}": {"get": {
                "operationId": "getItem",
                "summary": "One item version (the highest unless `version` is given).",
                "parameters": [item_id.clone(), version_param()],
                "responses": {
                    "200": json_response("The item.", "Item"),
                    "400": error_response("Bad item ID or query.", &["invalid_item_id", "invalid_query"]),
                    "404": error_response("Not in the catalog.", &["unknown_item"]),
                    "500": internal()
                }
            }},
            "/v1/items/{id}/data": {"get": {
                "operationId": "getItemData",
                "summary": "The item's data, for a card this provider consented to store it on.",
                "parameters": [item_id.clone(), string_param("card", "query", true, "Card ID, hex."), version_param()],
                "responses": {
                    "200": json_response("The data.", "Data"),
                    "400": error_response("Bad item ID, card ID or query.", &["invalid_item_id", "invalid_card_id", "invalid_query"]),
                    "403": error_response("No consent of this provider for this card and item version.", &["card_not_authorized"]),
                    "404": error_response("Not in the catalog.", &["unknown_item"]),
                    "500": internal()
                }
            }},
            "/v1/items/{id}/certified": {"get": {
                "operationId": "getCertifiedItemData",
                "summary": "The data with an SDCI over the given SDI, which must name the card, this item and provider, be a store and match the catalog: signed by this provider (STO-4), or with `by=data-registrar` the Data Registrar's SDCI' (STO-5), obtained once per SDI and served as is.",
                "parameters": [item_id, string_param("card", "query", true, "Card ID, hex."), string_param("sdi", "query", true, "The SDI's DER, hex."), string_param("by", "query", false, "Who certifies: `provider` (default, this provider's SDCI, STO-4) or `data-registrar` (the Data Registrar's SDCI', STO-5, served as is).")],
                "responses": {
                    "200": json_response("The data and its SDCI.", "Data"),
                    "400": error_response("Bad item ID, card ID, SDI or query.", &["invalid_item_id", "invalid_card_id", "invalid_sdi", "invalid_query"]),
                    "403": error_response("No consent of this provider for this card and item version.", &["card_not_authorized"]),
                    "409": error_response("`by=data-registrar` but this provider has no data registrar.", &["no_data_registrar"]),
                    "422": error_response("The SDI does not match the card, item or catalog.", &["sdi_mismatch"]),
                    "500": internal(),
                    "502": error_response("`by=data-registrar`: the data registrar refused (the message names it, its status, code and message), answered with an SDCI' that does not verify under its root for this SDI, or could not be reached.", &["registrar_refused", "registrar_unreachable"])
                }
            }},
            "/v1/authorizations/grant": {"post": {
                "operationId": "grantAuthorization",
                "summary": "STO-1: sign the SA over an issuer's SAR for one of this provider's items, for the issuer that signed it (a party request). Single-use per SAR.",
                "security": [{"partyRequest": []}],
                "requestBody": json_body("GrantRequest"),
                "responses": {
                    "201": json_response("The SA.", "Sa"),
                    "400": error_response("A field cannot be read.", &["invalid_sar", "malformed_json", "invalid_body", "unreadable_body"]),
                    "401": error_response("The party request header is missing or refused, stale, or replayed.", &["unauthenticated", "request_stale", "request_replayed"]),
                    "403": error_response("The caller is not the issuer that signed the SAR.", &["caller_not_requester"]),
                    "409": error_response("This SAR was granted before.", &["authorization_replayed"]),
                    "413": error_response("The body exceeds 2 MiB.", &["body_too_large"]),
                    "422": error_response("The SAR is refused: the code says why (invalid_sar: a provider's SAR).", &["untrusted_signer", "wrong_purpose", "invalid_sar", "authorization_expired", "sdi_mismatch"]),
                    "500": internal()
                }
            }},
            "/v1/authorizations/request": {"post": {
                "operationId": "requestAuthorization",
                "summary": "STO-2: this provider's SAR for an SDI on a card, answering the card's challenge, sent to the card's issuer (a party request) for its SA, which is verified as the card will verify it. Answers both consents.",
                "requestBody": json_body("RequestRequest"),
                "responses": {
                    "201": json_response("The SAR and the issuer's SA over it.", "Consents"),
                    "400": error_response("A field cannot be read.", &with_body_codes(&["invalid_card_id", "invalid_rc_digest", "invalid_sdi", "invalid_challenge", "invalid_issuer"])),
                    "415": media(),
                    "422": error_response("Refused: the SDI does not match the card or the catalog, or the issuer is not one this provider works with.", &["sdi_mismatch", "unknown_issuer"]),
                    "500": internal(),
                    "502": error_response("The issuer refused (the message names it, its status, code and message), answered with an SA that does not verify, or could not be reached.", &["issuer_refused", "issuer_unreachable"])
                }
            }},
            "/v1/authorizations/alone": {"post": {
                "operationId": "authorizeAlone",
                "summary": "STO-3: the lone SA under an issuer's delegation covering this provider, its DPR, the operation, item prefix, size, card and time: the one given, or else a kept one (POST /v1/delegations) that covers the SDI, naming the card first, then the longest-lived.",
                "requestBody": json_body("AloneRequest"),
                "responses": {
                    "201": json_response("The SA.", "Sa"),
                    "400": error_response("A field cannot be read.", &with_body_codes(&["invalid_delegation", "invalid_sdi", "invalid_challenge"])),
                    "403": error_response("No delegation was given and none kept covers the SDI now.", &["no_delegation"]),
                    "415": media(),
                    "422": error_response("Refused: the code says why.", &["untrusted_signer", "wrong_purpose", "delegation_refused", "authorization_expired", "sdi_mismatch"]),
                    "500": internal()
                }
            }},
            "/v1/delegations": {
                "post": {
                    "operationId": "addDelegation",
                    "summary": "STO-3 set-up: keep an issuer's delegation for this provider, after checking it (chain to the Issuer Registrar root with the CRLs held, names this provider, pins its DPR, unexpired). Repeating it returns 200.",
                    "security": [{"operatorToken": []}],
                    "requestBody": json_body("AddDelegationRequest"),
                    "responses": {
                        "201": json_response("Kept.", "Delegation"),
                        "200": json_response("Kept before.", "Delegation"),
                        "400": error_response("A field cannot be read.", &with_body_codes(&["invalid_delegation"])),
                        "401": error_response("Missing, malformed or unknown operator token.", &["unauthenticated"]),
                        "403": error_response("The operator is disabled.", &["forbidden"]),
                        "415": media(),
                        "422": error_response("Refused: the code says why.", &["untrusted_signer", "wrong_purpose", "delegation_refused", "authorization_expired"]),
                        "500": internal()
                    }
                },
                "get": {
                    "operationId": "listDelegations",
                    "summary": "The delegations kept, by the time they were stored (expired ones too).",
                    "responses": {"200": json_response("The delegations.", "DelegationList"), "500": internal()}
                }
            },
            "/v1/receipts": {"post": {
                "operationId": "recordReceipt",
                "summary": "STO-7, REC-1: a card receipt with the card's RC and its issuer's IRC; verified, matched to a consent of this provider, recorded with a signed ledger entry. Repeating returns 200 with the original entry.",
                "requestBody": json_body("ReceiptRequest"),
                "responses": {
                    "201": json_response("Recorded.", "Receipt"),
                    "200": json_response("Recorded before; nothing changed.", "Receipt"),
                    "400": error_response("A field cannot be read.", &with_body_codes(&["invalid_receipt", "invalid_rc", "invalid_irc"])),
                    "404": error_response("This provider consented to no such SDI for the card.", &["unknown_authorization"]),
                    "409": error_response("The counter is not above the last recorded.", &["counter_not_increasing"]),
                    "415": media(),
                    "422": error_response("Refused: the code says why (untrusted_signer: the RC does not chain through the IRC to the Issuer Registrar root now, or is revoked by the CRLs held, the issuer's own CRL of RCs included; rc_mismatch: the card's receipts are recorded under another RC).", &["untrusted_signer", "wrong_purpose", "invalid_receipt", "rc_mismatch"]),
                    "500": internal()
                }
            }},
            "/v1/cards/{id}/contents": {"get": {
                "operationId": "getCardContents",
                "summary": "This provider's view of its items on the card.",
                "parameters": [card_id.clone()],
                "responses": {
                    "200": json_response("The view.", "Contents"),
                    "400": error_response("Bad card ID.", &["invalid_card_id"]),
                    "404": error_response("No receipt of this card was recorded here.", &["unknown_card"]),
                    "500": internal()
                }
            }},
            "/v1/cards/{id}/ledger": {"get": {
                "operationId": "getCardLedger",
                "summary": "The card's hash-chained ledger (protocol::verify_ledger under this provider's key and the RC).",
                "parameters": [card_id],
                "responses": {
                    "200": json_response("The ledger.", "Ledger"),
                    "400": error_response("Bad card ID.", &["invalid_card_id"]),
                    "404": error_response("No receipt of this card was recorded here.", &["unknown_card"]),
                    "500": internal()
                }
            }},
            "/v1/members": {"get": {
                "operationId": "listMembers",
                "summary": "Cards holding an item (any version) in this provider's view.",
                "parameters": [string_param("item", "query", true, "Item ID, hex.")],
                "responses": {
                    "200": json_response("The cards.", "Members"),
                    "400": error_response("Bad item ID or query.", &["invalid_item_id", "invalid_query"]),
                    "500": internal()
                }
            }},
            "/v1/crls": {"get": {
                "operationId": "listCrls",
                "summary": "The CRLs in force here (REG-3): those of the configured files and the newest fetched from each followed registrar (Issuer Registrar URL, data registrar) and from each configured issuer (the RCs it revoked, verified under its IRC), with where each came from.",
                "responses": {"200": json_response("The CRLs.", "Crls"), "500": internal()}
            }},
            "/v1/crls/refresh": {"post": {
                "operationId": "refreshCrls",
                "summary": "Fetch the followed registrars' and issuers' CRLs now (a registrar's verified under its root; an issuer's under the IRC it presents at GET /v1/issuer, which must be its own and chain to the Issuer Registrar root with the CRLs held; a newer one replaces the one held) instead of waiting for the periodic refresh, and answer the CRLs then in force.",
                "security": [{"operatorToken": []}],
                "responses": {
                    "200": json_response("Fetched; the CRLs in force.", "Crls"),
                    "401": error_response("Missing, malformed or unknown operator token.", &["unauthenticated"]),
                    "403": error_response("The operator is disabled.", &["forbidden"]),
                    "409": error_response("No registrar URL and no issuer is configured: only the CRL files are in force.", &["no_registrars"]),
                    "500": internal(),
                    "502": error_response("A registrar or an issuer failed (the message names each, and why); the others' CRLs were taken. A failing registrar decides the code: registrar_refused when every failing one answered (a refusal, or no CRL under its root), registrar_unreachable when one did not answer; otherwise issuer_refused (a refusal, an IRC not trusted, or a CRL not under it) or issuer_unreachable.", &["registrar_refused", "registrar_unreachable", "issuer_refused", "issuer_unreachable"])
                }
            }},
            "/openapi.json": {"get": {
                "operationId": "getOpenApi",
                "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {}}}}
            }},
            "/health": {"get": {
                "operationId": "getHealth",
                "summary": "Liveness and database reachability.",
                "responses": {
                    "200": json_response("Healthy.", "Health"),
                    "503": json_response("The database is unreachable.", "Health")
                }
            }},
            "/metrics": {"get": {
                "operationId": "getMetrics",
                "summary": "Prometheus text: requests by route and status, latency, provider_authorizations_signed_total, provider_receipts_recorded_total, provider_member_notifications_total{outcome=new|repeat}.",
                "responses": {"200": {"description": "Prometheus text format.", "content": {"text/plain": {}}}}
            }}
        },
        "components": {
            "securitySchemes": {
                "operatorToken": {"type": "http", "scheme": "bearer", "description": "cwo_<32 hex>, from `cardwright provider operator add`."},
                "partyRequest": {"type": "apiKey", "in": "header", "name": "Cardwright-Request", "description": "Hex DER SignedObject (purpose apiRequest) over method, path and query, body SHA-256, audience (this provider), issued_at (±300 s) and a single-use nonce, signed with the caller's IRC or DPR key (docs/parties.md, \"Authentication\")."}
            },
            "schemas": {
                "Error": object(&["code", "message"], json!({"code": {"type": "string"}, "message": {"type": "string"}})),
                "InternalError": object(&["code", "request_id"], json!({"code": {"const": "internal"}, "request_id": {"type": "string"}})),
                "Health": object(&["status", "db"], json!({"status": {"type": "string"}, "db": {"type": "string"}})),
                "Provider": object(&["party_id", "dpr", "public_key"], json!({
                    "party_id": {"type": "string"},
                    "dpr": hex("The provider's DPR, DER."),
                    "public_key": hex("Its public key, SEC1.")
                })),
                "PublishRequest": object(&["item_id", "version", "data"], json!({
                    "item_id": hex("1..=16 bytes."),
                    "version": {"type": "integer", "minimum": 0},
                    "data": hex("The item's bytes."),
                    "policy": {"type": "integer", "default": 0}
                })),
                "Item": item_schema,
                "ItemList": object(&["items"], json!({"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}})),
                "Data": {"allOf": [{"$ref": "#/components/schemas/Item"}, object(&["data"], json!({"data": hex("The item's bytes."), "sdci": hex("SDCI, DER SignedObject (certified only): the provider's, or the Data Registrar's SDCI' with `by=data-registrar`.")}))]},
                "GrantRequest": object(&["sar"], json!({"sar": hex("The issuer's SAR, DER SignedObject.")})),
                "RequestRequest": object(&["card_id", "rc_digest", "sdi", "challenge", "issuer"], json!({
                    "card_id": hex("16 bytes."), "rc_digest": hex("SHA-256 of the card's RC DER."),
                    "sdi": hex("DER."), "challenge": hex("The card's 16-byte challenge."),
                    "issuer": {"type": "string", "description": "The card's issuer (party ID): one this provider works with."}
                })),
                "AloneRequest": object(&["sdi", "challenge"], json!({
                    "delegation": hex("The issuer's delegation, DER SignedObject. Absent: a kept one that covers the SDI."),
                    "sdi": hex("DER."), "challenge": hex("The card's 16-byte challenge.")
                })),
                "Sa": object(&["sa", "not_after"], json!({"sa": hex("The SA, DER SignedObject."), "not_after": {"type": "integer", "description": "The SA's last valid second."}})),
                "Consents": object(&["sar", "sa", "not_after"], json!({"sar": hex("This provider's SAR, DER SignedObject."), "sa": hex("The issuer's SA over it, DER SignedObject: for the card."), "not_after": {"type": "integer", "description": "The SA's last valid second."}})),
                "AddDelegationRequest": object(&["delegation"], json!({"delegation": hex("The issuer's delegation, DER SignedObject.")})),
                "Delegation": object(&["digest", "issuer", "issued_at", "not_after", "operations", "item_prefix", "max_item_size", "stored_at"], json!({
                    "digest": hex("SHA-256 of the signed delegation's DER."),
                    "issuer": {"type": "string", "description": "The issuer that signed it."},
                    "issued_at": {"type": "integer"}, "not_after": {"type": "integer"},
                    "operations": {"type": "array", "items": {"enum": ["store", "delete"]}},
                    "item_prefix": hex("Covered item IDs start with it (empty: all)."),
                    "max_item_size": {"type": "integer"},
                    "card_id": hex("The card it is limited to; absent: any card of the issuer."),
                    "stored_at": {"type": "integer"}
                })),
                "DelegationList": object(&["delegations"], json!({"delegations": {"type": "array", "items": {"$ref": "#/components/schemas/Delegation"}}})),
                "ReceiptRequest": object(&["receipt", "rc", "irc"], json!({
                    "receipt": hex("The card's receipt, DER SignedObject."),
                    "rc": hex("The card's RC, DER."), "irc": hex("The RC issuer's IRC, DER.")
                })),
                "Receipt": object(&["card_id", "seq", "counter", "entry", "newly_recorded"], json!({
                    "card_id": hex("16 bytes."), "seq": {"type": "integer"}, "counter": {"type": "integer"},
                    "entry": hex("The ledger entry, DER SignedObject."), "newly_recorded": {"type": "boolean"}
                })),
                "ViewItem": object(&["item_id", "version", "size", "data_digest", "policy"], json!({
                    "item_id": hex("1..=16 bytes."), "version": {"type": "integer"}, "size": {"type": "integer"},
                    "data_digest": hex("SHA-256."), "policy": {"type": "integer"}
                })),
                "Contents": object(&["card_id", "items"], json!({"card_id": hex("16 bytes."), "items": {"type": "array", "items": {"$ref": "#/components/schemas/ViewItem"}}})),
                "Ledger": object(&["card_id", "rc", "entries"], json!({
                    "card_id": hex("16 bytes."), "rc": hex("The card's RC, DER."),
                    "entries": {"type": "array", "items": object(&["seq", "counter", "entry"], json!({"seq": {"type": "integer"}, "counter": {"type": "integer"}, "entry": hex("DER SignedObject (LedgerEntry).")}))}
                })),
                "Crls": crls_schema,
                "Members": object(&["item_id", "cards"], json!({
                    "item_id": hex("1..=16 bytes."),
                    "cards": {"type": "array", "items": object(&["card_id", "version"], json!({"card_id": hex("16 bytes."), "version": {"type": "integer"}}))}
                }))
            }
        }
    })
}
