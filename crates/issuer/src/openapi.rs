//! The issuer's OpenAPI 3.1 document (`GET /openapi.json`), written by hand. Every route of
//! `http::routes` and server-kit's `KIT_ROUTES` is here (a test checks both directions), and
//! every 4xx lists its stable error codes under `x-error-codes`.

mod download;

use serde_json::{json, Value};
use server_kit::openapi::{error_response, internal, json_body, json_response, with_body_codes};

use download::{download_paths, download_schemas};

pub(super) fn card_param() -> Value {
    json!([{"name": "card_id", "in": "path", "required": true,
            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}}])
}

fn provider_param() -> Value {
    json!([{"name": "provider", "in": "path", "required": true,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}}])
}

pub(super) fn hex(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cardwright issuer",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The card issuer: card registry and personalisation records, registration (REG-2) and revocation of RCs with a CRL of them (REG-3), storing authorizations (STO-1 SAR, STO-2 SA, STO-3 delegations), receipts into records and a signed hash-chained ledger (STO-7, REC-1); the application DB, the standing check, download operations and the member-notification outbox (APP-1, APP-3, REC-2: docs/app-download.md). Binary values are lowercase hex; signed objects are hex of SignedObject DER. See docs/parties.md and docs/protocol.md."
        },
        "paths": merged(paths(), download_paths()),
        "components": {
            "securitySchemes": {
                "operatorToken": {"type": "http", "scheme": "bearer", "description": "Operator token cwo_<32 hex>, valid only on this issuer's database."},
                "partyRequest": {"type": "apiKey", "in": "header", "name": "Cardwright-Request", "description": "Hex DER SignedObject (purpose apiRequest) over method, target, body SHA-256, audience (this issuer's party ID), time and nonce, with the caller's chain [DPR] (docs/parties.md, Authentication)."}
            },
            "schemas": schemas()
        }
    })
}

/// `a`'s members and `b`'s (an object each).
fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// Every route, by path and method.
fn paths() -> Value {
    let unauthenticated = || {
        error_response(
            "Missing, malformed or unknown operator token (`Authorization: Bearer cwo_…`).",
            &["unauthenticated"],
        )
    };
    let forbidden = || error_response("The operator is disabled.", &["forbidden"]);
    let media = || error_response("The body is not JSON.", &["unsupported_media_type"]);
    let revoked = || {
        error_response(
            "This issuer's IRC is revoked by a CRL of its Issuer Registrar: it signs nothing any more (reads still work).",
            &["issuer_revoked"],
        )
    };
    let unknown_card = || {
        error_response(
            "The card is not in this issuer's registry.",
            &["unknown_card"],
        )
    };
    json!({
        "/v1/issuer": {"get": {
            "operationId": "getIssuer",
            "summary": "The issuer's party ID, IRC and public key (ledger entries verify under it).",
            "responses": {"200": json_response("The issuer.", "Identity")}
        }},
        "/v1/cards": {"post": {
            "operationId": "personaliseCard",
            "summary": "Allocate a card ID, generate Sk and a PIN salt, record them (Sk wrapped) and return the personalisation record for the issuer's facility.",
            "security": [{"operatorToken": []}],
            "requestBody": json_body("PersonaliseRequest"),
            "responses": {
                "201": json_response("The personalisation record (holds Sk and the PIN).", "Personalisation"),
                "400": error_response("A field is wrong; the code names it.", &with_body_codes(&["invalid_pin", "invalid_pin_try_limit"])),
                "401": unauthenticated(),
                "403": forbidden(),
                "415": media(),
                "500": internal()
            }
        }},
        "/v1/cards/{card_id}": {"get": {
            "operationId": "getCard",
            "summary": "A card in the registry, with its registration if any.",
            "parameters": card_param(),
            "responses": {
                "200": json_response("The card.", "Card"),
                "400": error_response("Bad card ID.", &["invalid_card_id", "invalid_path"]),
                "404": unknown_card(),
                "500": internal()
            }
        }},
        "/v1/cards/{card_id}/challenge": {"post": {
            "operationId": "registrationChallenge",
            "summary": "A fresh single-use REG-2 challenge for the card (no body).",
            "parameters": card_param(),
            "responses": {
                "201": json_response("The challenge.", "Challenge"),
                "400": error_response("Bad card ID.", &["invalid_card_id", "invalid_path"]),
                "404": unknown_card(),
                "409": error_response("The card is registered already.", &["already_registered"]),
                "500": internal()
            }
        }},
        "/v1/cards/{card_id}/registration": {"post": {
            "operationId": "registerCard",
            "summary": "REG-2: the card's signed RegistrationInfo answering a challenge from this issuer; returns the RC and the IRC for REGISTER COMPLETE. The challenge is spent.",
            "parameters": card_param(),
            "requestBody": json_body("RegistrationRequest"),
            "responses": {
                "201": json_response("Registered.", "Registration"),
                "400": error_response("Unreadable input; the code names it.", &with_body_codes(&["invalid_card_id", "invalid_path", "invalid_registration"])),
                "404": error_response("The card is not in the registry, or the challenge was not issued here.", &["unknown_card", "unknown_challenge"]),
                "409": error_response("Challenge spent or expired, or the card is registered already.", &["challenge_spent", "challenge_expired", "already_registered"]),
                "415": media(),
                "422": error_response("The registration information is refused on verification (signature), is not one, or is another card's.", &["invalid_registration", "wrong_purpose", "card_mismatch"]),
                "500": internal(),
                "503": revoked()
            }
        }},
        "/v1/cards/{card_id}/contents": {"get": {
            "operationId": "getContents",
            "summary": "What the issuer believes is on the card, from the receipts it recorded.",
            "parameters": card_param(),
            "responses": {
                "200": json_response("The view.", "Contents"),
                "400": error_response("Bad card ID.", &["invalid_card_id", "invalid_path"]),
                "404": unknown_card(),
                "409": error_response("The card is not registered.", &["card_not_registered"]),
                "500": internal()
            }
        }},
        "/v1/cards/{card_id}/ledger": {"get": {
            "operationId": "getLedger",
            "summary": "The card's ledger: signed LedgerEntry objects in order, and the card's RC (protocol::verify_ledger checks them under the issuer's key).",
            "parameters": card_param(),
            "responses": {
                "200": json_response("The ledger.", "Ledger"),
                "400": error_response("Bad card ID.", &["invalid_card_id", "invalid_path"]),
                "404": unknown_card(),
                "409": error_response("The card is not registered.", &["card_not_registered"]),
                "500": internal()
            }
        }},
        "/v1/cards/{card_id}/reconcile": {"post": {
            "operationId": "reconcile",
            "summary": "REC-1: compare the issuer's view with the card's signed listing (verified under the card's RC, answering the nonce). Reports drift; changes nothing.",
            "parameters": card_param(),
            "requestBody": json_body("ReconcileRequest"),
            "responses": {
                "200": json_response("The comparison.", "Reconciliation"),
                "400": error_response("Unreadable input; the code names it.", &with_body_codes(&["invalid_card_id", "invalid_path", "invalid_listing", "invalid_nonce"])),
                "404": unknown_card(),
                "409": error_response("The card is not registered.", &["card_not_registered"]),
                "415": media(),
                "422": error_response("The listing is refused on verification under the card's RC (signature, card, nonce), or is not a listing.", &["invalid_listing", "wrong_purpose"]),
                "500": internal()
            }
        }},
        "/v1/cards/{card_id}/revocation": {"post": {
            "operationId": "revokeCard",
            "summary": "REG-3: revoke the card's RC (a lost or stolen card) and publish a CRL listing its serial (GET /v1/crl), signed with the issuer's key; from then on the issuer signs nothing for the card (409 registration_revoked). Idempotent: repeating returns 200 with the original revocation.",
            "security": [{"operatorToken": []}],
            "parameters": card_param(),
            "requestBody": json_body("RevokeCardRequest"),
            "responses": {
                "201": json_response("Revoked now.", "CardRevocation"),
                "200": json_response("Revoked before; nothing changed.", "CardRevocation"),
                "400": error_response("A field is wrong; the code names it.", &with_body_codes(&["invalid_card_id", "invalid_path", "invalid_reason"])),
                "401": unauthenticated(),
                "403": forbidden(),
                "404": unknown_card(),
                "409": error_response("The card has no RC to revoke.", &["card_not_registered"]),
                "415": media(),
                "500": internal(),
                "503": revoked()
            }
        }},
        "/v1/crl": {"get": {
            "operationId": "getCrl",
            "summary": "REG-3: the current CRL of the RCs this issuer revoked, signed with its key (verify it under its IRC, GET /v1/issuer). Its number increases with every revocation and every re-signing (once half its validity has passed); instances on one database never reuse a number.",
            "responses": {
                "200": json_response("The CRL.", "Crl"),
                "500": internal(),
                "503": revoked()
            }
        }},
        "/v1/providers/{provider}": {
            "put": {
                "operationId": "putProvider",
                "summary": "Set (replace) the issuer's policy for a provider: allowed or blocked, its per-card quota in bytes, and its server's base URL (STO-1 requests are forwarded there; https needs the issuer's provider TLS roots).",
                "security": [{"operatorToken": []}],
                "parameters": provider_param(),
                "requestBody": json_body("ProviderRequest"),
                "responses": {
                    "200": json_response("The policy now.", "Provider"),
                    "400": error_response("A field is wrong.", &with_body_codes(&["invalid_provider", "invalid_status", "invalid_url", "invalid_path"])),
                    "401": unauthenticated(),
                    "403": forbidden(),
                    "415": media(),
                    "500": internal()
                }
            },
            "get": {
                "operationId": "getProvider",
                "summary": "The policy for a provider (unknown providers are blocked, quota 0).",
                "parameters": provider_param(),
                "responses": {
                    "200": json_response("The policy.", "Provider"),
                    "400": error_response("Bad provider ID.", &["invalid_provider", "invalid_path"]),
                    "500": internal()
                }
            }
        },
        "/v1/authorizations/grant": {"post": {
            "operationId": "grantAuthorization",
            "summary": "STO-2: the issuer's SA over a provider's SAR, asked for by that provider in a party request (verified: DPR chain to the Data Registrar root, the caller is the SAR's signer, the card registered here and its RC bound, the provider allowed and within quota). Each SAR is granted once.",
            "security": [{"partyRequest": []}],
            "requestBody": json_body("GrantRequest"),
            "responses": {
                "201": json_response("The SA.", "Grant"),
                "400": error_response("The body or the SAR cannot be read.", &["invalid_sar", "malformed_json", "invalid_body", "unreadable_body"]),
                "401": error_response("Missing or refused party request (chain, signature, method, target, body, audience), outside the ±300 s window, or its nonce used before.", &["unauthenticated", "request_stale", "request_replayed"]),
                "403": error_response("The caller is not the provider that signed the SAR, or the issuer's policy does not allow it.", &["caller_not_requester", "provider_not_allowed"]),
                "404": unknown_card(),
                "409": error_response("Replayed SAR, card not registered, its RC expired or revoked (REG-3), or quota exceeded.", &["authorization_replayed", "card_not_registered", "registration_expired", "registration_revoked", "quota_exceeded"]),
                "413": error_response("The body is larger than a party request may carry (2 MiB).", &["body_too_large"]),
                "422": error_response("The SAR is refused on verification: its signer's chain or signature (untrusted_signer), not a SAR (wrong_purpose), expired, bound to another RC, or not a provider's request for its own item (invalid_sar).", &["untrusted_signer", "wrong_purpose", "authorization_expired", "rc_mismatch", "invalid_sar"]),
                "500": internal(),
                "503": revoked()
            }
        }},
        "/v1/authorizations/request": {"post": {
            "operationId": "requestAuthorization",
            "summary": "STO-1: the issuer signs its SAR for an SDI on its registered card over the card's challenge, sends it to the item's provider (POST {url}/v1/authorizations/grant as a party request, url from the provider's policy), verifies the provider's SA as the card will (DPR chain to the Data Registrar root, CRLs, signed by the item's provider, over exactly this SAR, unexpired) and answers both.",
            "requestBody": json_body("RequestRequest"),
            "responses": {
                "201": json_response("The SAR and the provider's SA: give the SA to the card.", "Request"),
                "400": error_response("A field is wrong.", &with_body_codes(&["invalid_card_id", "invalid_sdi", "invalid_challenge", "card_mismatch"])),
                "403": error_response("The issuer's policy does not allow the item's provider.", &["provider_not_allowed"]),
                "404": unknown_card(),
                "409": error_response("Card not registered, its RC expired or revoked (REG-3), quota exceeded, the same SAR again, or no url set for the provider.", &["card_not_registered", "registration_expired", "registration_revoked", "quota_exceeded", "authorization_replayed", "provider_unreachable"]),
                "415": media(),
                "500": internal(),
                "502": error_response("The provider could not be reached, refused (the message names it, its status, code and message), or answered with an SA the issuer does not accept.", &["provider_unreachable", "provider_refused"]),
                "503": revoked()
            }
        }},
        "/v1/delegations": {"post": {
            "operationId": "delegate",
            "summary": "STO-3: an issuer-signed delegation letting one provider (pinned to its DPR) authorize alone within a scope.",
            "security": [{"operatorToken": []}],
            "requestBody": json_body("DelegationRequest"),
            "responses": {
                "201": json_response("The delegation.", "Delegation"),
                "400": error_response("A field is wrong.", &with_body_codes(&["invalid_provider", "invalid_provider_certificate", "invalid_operations", "invalid_item_prefix", "invalid_card_id", "invalid_not_after"])),
                "401": unauthenticated(),
                "403": error_response("Disabled operator, or a provider the policy does not allow.", &["forbidden", "provider_not_allowed"]),
                "404": unknown_card(),
                "409": error_response("The card named is not registered, or its RC expired or was revoked (REG-3).", &["card_not_registered", "registration_expired", "registration_revoked"]),
                "415": media(),
                "422": error_response("The provider's certificate does not verify under the Data Registrar root now (untrusted_signer: chain, expired, revoked) or is another party's.", &["untrusted_signer", "invalid_provider_certificate"]),
                "500": internal(),
                "503": revoked()
            }
        }},
        "/v1/receipts": {"post": {
            "operationId": "postReceipt",
            "summary": "STO-7: a card's receipt (verified under its RC). Counters must follow on exactly; the view and the ledger change in one transaction (and, when its SA is a download attempt's, the operation becomes installed and its member notification is queued in the same one). Idempotent: the same receipt again returns 200 with the first entry.",
            "requestBody": json_body("ReceiptRequest"),
            "responses": {
                "201": json_response("Recorded.", "ReceiptRecorded"),
                "200": json_response("Recorded before; nothing changed.", "ReceiptRecorded"),
                "400": error_response("Unreadable input; the code names it.", &with_body_codes(&["invalid_receipt", "invalid_sdi"])),
                "404": error_response("The card is not in the registry, or the receipt's SDI is unknown here (send it along).", &["unknown_card", "unknown_sdi"]),
                "409": error_response("A receipt is missing (reconcile with the card's listing), out of order, or the card is not registered.", &["receipt_gap", "receipt_out_of_order", "card_not_registered"]),
                "415": media(),
                "422": error_response("The receipt is refused on verification under the card's RC, is not a receipt, or the SDI sent does not match it.", &["invalid_receipt", "wrong_purpose", "sdi_mismatch"]),
                "500": internal()
            }
        }},
        "/v1/crls": {"get": {
            "operationId": "getCrls",
            "summary": "The registrars' CRLs in force at this issuer (from its files and fetched from the registrars it follows), and whether one revokes its own IRC.",
            "responses": {"200": json_response("The CRLs held.", "Crls")}
        }},
        "/v1/crls/refresh": {"post": {
            "operationId": "refreshCrls",
            "summary": "Fetch the CRLs of the registrars this issuer follows now (each verified under that registrar's root; an older CRL never replaces a newer one) instead of waiting for the periodic refresh, e.g. right after a revocation. No body. A registrar that fails keeps its last CRL in force; the others' are taken all the same.",
            "security": [{"operatorToken": []}],
            "responses": {
                "200": json_response("Every registrar answered; the CRLs held now.", "Crls"),
                "401": unauthenticated(),
                "403": forbidden(),
                "409": error_response("No registrar URLs are configured: the issuer holds only the CRLs of its files.", &["no_registrars"]),
                "500": internal(),
                "502": error_response("A registrar could not be reached, refused, or answered with something that is not a CRL under its root (the message names it).", &["registrar_unreachable", "registrar_refused"])
            }
        }},
        "/openapi.json": {"get": {
            "operationId": "getOpenApi",
            "summary": "This document.",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}
        }},
        "/health": {"get": {
            "operationId": "getHealth",
            "summary": "Liveness and database reachability.",
            "responses": {
                "200": json_response("Healthy.", "Health"),
                "503": json_response("The database does not answer.", "Health")
            }
        }},
        "/metrics": {"get": {
            "operationId": "getMetrics",
            "summary": "Prometheus text exposition: requests by route and status, latency histogram, cards personalised, registered and revoked, authorizations signed, receipts ingested.",
            "responses": {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}
        }}
    })
}

/// The request and response bodies.
fn schemas() -> Value {
    let mut schemas = json!({
        "Error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "description": "Stable snake_case code."},
            "message": {"type": "string"}
        }},
        "InternalError": {"type": "object", "required": ["code", "request_id"], "properties": {
            "code": {"const": "internal"},
            "request_id": {"type": ["string", "null"]}
        }},
        "Health": {"type": "object", "properties": {"status": {"type": "string"}, "db": {"type": "string"}}},
        "Identity": {"type": "object", "required": ["party_id", "irc", "public_key"], "properties": {
            "party_id": {"type": "string"}, "irc": hex("IRC DER"), "public_key": hex("SEC1")
        }},
        "PersonaliseRequest": {"type": "object", "required": ["pin"], "additionalProperties": false, "properties": {
            "pin": {"type": "string", "pattern": "^[0-9]{4,12}$"},
            "pin_try_limit": {"type": "integer", "minimum": 1, "maximum": 15, "default": 3},
            "capacity": {"type": "integer", "minimum": 0, "default": 32768}
        }},
        "Personalisation": {"type": "object", "required": ["card_id", "sk", "sk_version", "issuer_anchor", "data_anchor", "issuer", "pin", "pin_salt", "pin_try_limit", "issuer_authenticator", "capacity", "time_floor"], "properties": {
            "card_id": hex("16 bytes"), "sk": hex("32 bytes: the card's Sk"), "sk_version": {"type": "integer"},
            "issuer_anchor": hex("Issuer Registrar root DER"), "data_anchor": hex("Data Registrar root DER"),
            "issuer": {"type": "string"}, "pin": {"type": "string"}, "pin_salt": hex("16 bytes"),
            "pin_try_limit": {"type": "integer"}, "issuer_authenticator": hex("bytes"),
            "capacity": {"type": "integer"}, "time_floor": {"type": "integer", "description": "Unix seconds"}
        }},
        "Card": {"type": "object", "required": ["card_id", "status", "capacity", "personalised_at", "registration"], "properties": {
            "card_id": hex("16 bytes"), "status": {"enum": ["personalised", "registered"]},
            "capacity": {"type": "integer"}, "personalised_at": {"type": "integer"},
            "registration": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["serial", "user_id", "registered_at", "rc", "not_after", "revocation"], "properties": {
                "serial": {"type": "integer"}, "user_id": {"type": "string"},
                "registered_at": {"type": "integer"}, "rc": hex("RC DER"),
                "not_after": {"type": "integer", "description": "The RC's end: from then on the issuer signs nothing for the card."},
                "revocation": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["reason", "revoked_at"], "properties": {
                    "reason": {"$ref": "#/components/schemas/RevocationReason"}, "revoked_at": {"type": "integer"}
                }}]}
            }}]}
        }},
        "Challenge": {"type": "object", "required": ["card_id", "challenge", "expires_at"], "properties": {
            "card_id": hex("16 bytes"), "challenge": hex("16 bytes"), "expires_at": {"type": "integer"}
        }},
        "RegistrationRequest": {"type": "object", "required": ["registration"], "additionalProperties": false, "properties": {
            "registration": hex("SignedObject DER (RegistrationInfo)")
        }},
        "Registration": {"type": "object", "required": ["rc", "irc", "serial", "not_before", "not_after"], "properties": {
            "rc": hex("RC DER"), "irc": hex("IRC DER"), "serial": {"type": "integer"},
            "not_before": {"type": "integer"}, "not_after": {"type": "integer"}
        }},
        "Item": {"type": "object", "properties": {
            "item_id": hex("1..=16 bytes"), "version": {"type": "integer"}, "size": {"type": "integer"},
            "data_digest": hex("SHA-256"), "owner": {"type": "string"}, "policy": {"type": "integer"}
        }},
        "Contents": {"type": "object", "required": ["card_id", "last_counter", "capacity", "free", "items", "view_digest"], "properties": {
            "card_id": hex("16 bytes"), "last_counter": {"type": "integer"}, "capacity": {"type": "integer"},
            "free": {"type": "integer"}, "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
            "view_digest": hex("ListingBody SHA-256")
        }},
        "Ledger": {"type": "object", "required": ["card_id", "rc", "entries"], "properties": {
            "card_id": hex("16 bytes"), "rc": hex("RC DER"),
            "entries": {"type": "array", "items": hex("SignedObject DER (LedgerEntry)")}
        }},
        "ReconcileRequest": {"type": "object", "required": ["listing", "nonce"], "additionalProperties": false, "properties": {
            "listing": hex("SignedObject DER (Listing)"), "nonce": hex("0..=32 bytes")
        }},
        "Reconciliation": {"type": "object", "required": ["card_id", "in_sync", "card_counter", "issuer_counter", "only_on_card", "only_in_view", "differing"], "properties": {
            "card_id": hex("16 bytes"), "in_sync": {"type": "boolean"},
            "card_counter": {"type": "integer"}, "issuer_counter": {"type": "integer"},
            "only_on_card": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
            "only_in_view": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
            "differing": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}
        }},
        "ProviderRequest": {"type": "object", "required": ["status", "quota_bytes"], "additionalProperties": false, "properties": {
            "status": {"enum": ["allowed", "blocked"]}, "quota_bytes": {"type": "integer", "minimum": 0},
            "url": {"type": ["string", "null"], "description": "The provider server's base URL, http:// or https://, no query; absent: none."}
        }},
        "Provider": {"type": "object", "required": ["provider", "status", "quota_bytes", "updated_at", "url"], "properties": {
            "provider": {"type": "string"}, "status": {"enum": ["allowed", "blocked"]},
            "quota_bytes": {"type": "integer"}, "updated_at": {"type": "integer"},
            "url": {"type": ["string", "null"]}
        }},
        "GrantRequest": {"type": "object", "required": ["sar"], "additionalProperties": false, "properties": {
            "sar": hex("SignedObject DER (Sar, signed by the provider with [DPR])")
        }},
        "Grant": {"type": "object", "required": ["sa", "not_after"], "properties": {
            "sa": hex("SignedObject DER (Sa)"), "not_after": {"type": "integer"}
        }},
        "RequestRequest": {"type": "object", "required": ["card_id", "sdi", "challenge"], "additionalProperties": false, "properties": {
            "card_id": hex("16 bytes"), "sdi": hex("Sdi DER"), "challenge": hex("the card's 16-byte challenge")
        }},
        "Request": {"type": "object", "required": ["sar", "sa", "not_after"], "properties": {
            "sar": hex("SignedObject DER (Sar), the issuer's"),
            "sa": hex("SignedObject DER (Sa), the item's provider's, over that SAR"),
            "not_after": {"type": "integer", "description": "The SA's"}
        }},
        "DelegationRequest": {"type": "object", "required": ["provider", "provider_certificate", "operations", "max_item_size"], "additionalProperties": false, "properties": {
            "provider": {"type": "string"}, "provider_certificate": hex("DPR DER"),
            "operations": {"type": "array", "items": {"enum": ["store", "delete"]}, "minItems": 1},
            "item_prefix": hex("0..=16 bytes"), "max_item_size": {"type": "integer"},
            "card_id": hex("16 bytes; absent: every card"), "not_after": {"type": "integer"}
        }},
        "Delegation": {"type": "object", "required": ["delegation", "not_after"], "properties": {
            "delegation": hex("SignedObject DER (Delegation)"), "not_after": {"type": "integer"}
        }},
        "ReceiptRequest": {"type": "object", "required": ["receipt"], "additionalProperties": false, "properties": {
            "receipt": hex("SignedObject DER (Receipt)"),
            "sdi": hex("Sdi DER; needed when this issuer signed no authorization for it (STO-3)")
        }},
        "ReceiptRecorded": {"type": "object", "required": ["card_id", "seq", "counter", "entry", "newly_recorded", "in_sync"], "properties": {
            "card_id": hex("16 bytes"), "seq": {"type": "integer"}, "counter": {"type": "integer"},
            "entry": hex("SignedObject DER (LedgerEntry)"), "newly_recorded": {"type": "boolean"},
            "in_sync": {"type": "boolean"}
        }}
    });
    // A second literal: one would exceed `json!`'s recursion limit.
    schemas["Crls"] = crls_schema();
    let mut schemas = merged(schemas, download_schemas());
    for (name, schema) in revocation_schemas() {
        schemas[name] = schema;
    }
    schemas
}

fn revocation_schemas() -> [(&'static str, Value); 4] {
    [
        (
            "RevocationReason",
            json!({"enum": ["unspecified", "key_compromise", "affiliation_changed", "superseded", "cessation_of_operation"],
                   "description": "RFC 5280 reasons, the registrars' names; a lost or stolen card is key_compromise."}),
        ),
        (
            "RevokeCardRequest",
            json!({"type": "object", "required": ["reason"], "additionalProperties": false, "properties": {
                "reason": {"$ref": "#/components/schemas/RevocationReason"}
            }}),
        ),
        (
            "CardRevocation",
            json!({"type": "object", "required": ["card_id", "serial", "reason", "revoked_at", "crl_number", "newly_revoked"], "properties": {
                "card_id": hex("16 bytes"), "serial": {"type": "integer", "description": "The RC's serial, listed by the CRL."},
                "reason": {"$ref": "#/components/schemas/RevocationReason"}, "revoked_at": {"type": "integer"},
                "crl_number": {"type": "integer", "description": "A CRL number that lists the RC (the current one when repeated)."},
                "newly_revoked": {"type": "boolean", "description": "False: it was revoked before (the original reason and time)."}
            }}),
        ),
        (
            "Crl",
            json!({"type": "object", "required": ["number", "this_update", "next_update", "crl", "pem"], "properties": {
                "number": {"type": "integer", "description": "cRLNumber"},
                "this_update": {"type": "integer"}, "next_update": {"type": "integer"},
                "crl": hex("CRL DER, signed with the issuer's key (its IRC's subject and key identifier)"),
                "pem": {"type": "string", "description": "The same CRL, PEM X509 CRL"}
            }}),
        ),
    ]
}

fn crls_schema() -> Value {
    json!({"type": "object", "required": ["crls", "irc_revoked"], "properties": {
        "crls": {"type": "array", "items": {"type": "object", "required": ["issuer", "number", "this_update", "next_update", "revoked", "source"], "properties": {
            "issuer": {"type": "string", "description": "The registrar that signed it."},
            "number": {"type": "integer", "description": "cRLNumber"},
            "this_update": {"type": "integer"}, "next_update": {"type": "integer"},
            "revoked": {"type": "integer", "description": "How many certificates it revokes."},
            "source": {"type": "string", "description": "The registrar's base URL it was fetched from, `file`, or `other`."}
        }}},
        "irc_revoked": {"type": "boolean", "description": "One of them revokes this issuer's IRC: it signs nothing (503 issuer_revoked)."}
    }})
}
