//! The OpenAPI paths and schemas of the issuer's issue-4 routes (docs/app-download.md §3): the
//! application DB, the standing check, download operations, the operators' registry,
//! operations and outbox.

use serde_json::{json, Value};
use server_kit::openapi::{error_response, internal, json_body, json_response, with_body_codes};

use super::{card_param, hex};

fn operation_param() -> Value {
    json!([{"name": "operation_id", "in": "path", "required": true,
            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}}])
}

fn state_param(states: &[&str]) -> Value {
    json!([{"name": "state", "in": "query", "required": false,
            "schema": {"enum": states}}])
}

fn unauthenticated() -> Value {
    error_response(
        "Missing, malformed or unknown operator token (`Authorization: Bearer cwo_…`).",
        &["unauthenticated"],
    )
}

fn forbidden() -> Value {
    error_response("The operator is disabled.", &["forbidden"])
}

fn media() -> Value {
    error_response("The body is not JSON.", &["unsupported_media_type"])
}

fn bad_operation() -> Value {
    error_response(
        "Bad operation ID (32 hex characters).",
        &["invalid_operation_id", "invalid_path"],
    )
}

fn unknown_operation() -> Value {
    error_response("No operation with this ID here.", &["unknown_operation"])
}

/// Issue 4's routes, by path and method.
pub(super) fn download_paths() -> Value {
    let mut paths = json!({
        "/v1/applications": {
            "post": {
                "operationId": "addApplication",
                "summary": "APP-1: add one version of an application to the application DB (its code kept for every download; size and SHA-256 computed here). Versions are immutable: the same again answers 200.",
                "security": [{"operatorToken": []}],
                "requestBody": json_body("ApplicationRequest"),
                "responses": {
                    "201": json_response("Added.", "Application"),
                    "200": json_response("The same application was added before; nothing changed.", "Application"),
                    "400": error_response("A field is wrong; the code names it (AID 5..=16 bytes, code 1 byte..1 MiB, known policy bits without certified-data-required, a name).", &with_body_codes(&["invalid_aid", "invalid_code", "invalid_policy", "invalid_provider", "invalid_name", "invalid_description"])),
                    "401": unauthenticated(),
                    "403": forbidden(),
                    "409": error_response("This AID and version exist with other content.", &["application_version_exists"]),
                    "415": media(),
                    "422": error_response("The provider has no policy at this issuer.", &["unknown_provider"]),
                    "500": internal()
                }
            },
            "get": {
                "operationId": "getApplications",
                "summary": "The application DB without code, by AID then version.",
                "responses": {"200": json_response("The applications.", "Applications"), "500": internal()}
            }
        },
        "/v1/applications/{aid}": {"get": {
            "operationId": "getApplication",
            "summary": "One application version (the highest without ?version=), without code: what a provider pins a service to.",
            "parameters": [
                {"name": "aid", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^([0-9a-fA-F]{2}){1,16}$"}},
                {"name": "version", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}}
            ],
            "responses": {
                "200": json_response("The application.", "Application"),
                "400": error_response("Bad AID or query.", &["invalid_aid", "invalid_path", "invalid_query"]),
                "404": error_response("No such application (version).", &["unknown_application"]),
                "500": internal()
            }
        }},
        "/v1/cards/{card_id}/checks": {"post": {
            "operationId": "checkCard",
            "summary": "S1: a single-use nonce (16 bytes, 300 s) for the card's signed listing (GET STATUS). No body. At most 16 per card unanswered and unexpired; nonces expired for 300 s more are deleted.",
            "parameters": card_param(),
            "responses": {
                "201": json_response("The nonce.", "Check"),
                "400": error_response("Bad card ID.", &["invalid_card_id", "invalid_path"]),
                "404": error_response("The card is not in this issuer's registry.", &["unknown_card"]),
                "429": error_response("The card has 16 nonces not answered yet and unexpired: answer one, or ask again when the first expires (the message says when).", &["too_many_checks"]),
                "500": internal()
            }
        }},
        "/v1/cards/{card_id}/checks/{nonce}": {"post": {
            "operationId": "cardStanding",
            "summary": "S2–S3: the card's signed listing answering the nonce, verified under the card's RC (in force), compared with the registry; the card's standing: holder, capacity and free bytes (the card's), applications, in_sync, open operations. Spends the nonce.",
            "parameters": [
                card_param()[0].clone(),
                {"name": "nonce", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^([0-9a-fA-F]{2}){0,32}$"}}
            ],
            "requestBody": json_body("StandingRequest"),
            "responses": {
                "200": json_response("The standing.", "Standing"),
                "400": error_response("Unreadable input; the code names it.", &with_body_codes(&["invalid_card_id", "invalid_path", "invalid_nonce", "invalid_listing"])),
                "404": error_response("The nonce was not issued here for this card.", &["unknown_nonce"]),
                "409": error_response("The nonce was used or expired (ask for another), or the card is not registered, its RC revoked or expired.", &["nonce_spent", "nonce_expired", "card_not_registered", "registration_revoked", "registration_expired"]),
                "415": media(),
                "422": error_response("The listing is refused on verification under the card's RC (signature, card, nonce), or is not a listing.", &["invalid_listing", "wrong_purpose"]),
                "500": internal()
            }
        }},
        "/v1/cards/{card_id}/registry": {"get": {
            "operationId": "getRegistry",
            "summary": "APP-1: the card's personal information (holder's user ID, name and e-mail), capacity and free bytes by the registry, applications, items and download operations.",
            "security": [{"operatorToken": []}],
            "parameters": card_param(),
            "responses": {
                "200": json_response("The registry entry.", "Registry"),
                "400": error_response("Bad card ID.", &["invalid_card_id", "invalid_path"]),
                "401": unauthenticated(),
                "403": forbidden(),
                "404": error_response("The card is not in this issuer's registry.", &["unknown_card"]),
                "500": internal()
            }
        }}
    });
    let downloads = json!({
        "/v1/downloads": {
            "post": {
                "operationId": "openDownload",
                "summary": "S8–S10: the card-signed DownloadApplication with the card's RC (the registry's): verified (purpose, signature, card, this issuer, unexpired), the application picked from the application DB (size, digest, provider as signed), provider allowed, within quota (its items on the card and its other downloads in progress there: open, or with an SA still valid), not installed, no other open operation for the card and AID (one whose download application expired is marked expired, in the transaction that opens this one), the card's counter the registry's, the size within the smaller of the registry's and the card's free bytes; the operation is opened with its SDI (owner = the provider). The same request again (counter and free may differ) answers 200.",
                "requestBody": json_body("OpenDownloadRequest"),
                "responses": {
                    "201": json_response("Opened.", "DownloadOpened"),
                    "200": json_response("Opened before by the same request.", "DownloadOpened"),
                    "400": error_response("Unreadable input; the code names it.", &with_body_codes(&["invalid_download_application", "invalid_rc"])),
                    "403": error_response("The issuer's policy does not allow the application's provider.", &["provider_not_allowed"]),
                    "404": error_response("The RC's card is not in the registry, or the application (version) is not in the application DB.", &["unknown_card", "unknown_application"]),
                    "409": error_response("The card's state: not registered, RC revoked or expired, registry out of sync with the card's counter, already installed, another operation open (the message names it), not enough room (the message gives both numbers), quota exceeded.", &["card_not_registered", "registration_revoked", "registration_expired", "registry_out_of_sync", "already_installed", "download_in_progress", "insufficient_capacity", "quota_exceeded"]),
                    "415": media(),
                    "422": error_response("The application is refused: not this card's signature, not a download application, another card's, RC not the registry's, another issuer's, expired, not matching the application DB, or the operation ID taken by another request.", &["invalid_download_application", "wrong_purpose", "card_mismatch", "rc_mismatch", "wrong_issuer", "application_expired", "application_mismatch", "operation_conflict"]),
                    "500": internal()
                }
            },
            "get": {
                "operationId": "getDownloads",
                "summary": "Download operations (all, or in one state), oldest first, with their attempts and member notifications.",
                "security": [{"operatorToken": []}],
                "parameters": state_param(&["opened", "installed", "expired"]),
                "responses": {
                    "200": json_response("The operations.", "Downloads"),
                    "400": error_response("Bad state or query.", &["invalid_state", "invalid_query"]),
                    "401": unauthenticated(),
                    "403": forbidden(),
                    "500": internal()
                }
            }
        },
        "/v1/downloads/{operation_id}": {"get": {
            "operationId": "getDownload",
            "summary": "Where an operation stands: state (opened, installed, or expired: its download application expired before a receipt installed it), attempts (SA digests), the installing receipt's counter, the member notification.",
            "parameters": operation_param(),
            "responses": {
                "200": json_response("The operation.", "Download"),
                "400": bad_operation(),
                "404": unknown_operation(),
                "500": internal()
            }
        }},
        "/v1/downloads/{operation_id}/authorizations": {"post": {
            "operationId": "authorizeDownload",
            "summary": "S11: for the card's challenge, the issuer signs its SAR over the operation's SDI (recorded first), asks the provider's download grant (POST {url}/v1/downloads/{op}/grant as a party request, with the card's application and RC), verifies the SA as the card will and answers both. The same challenge again answers 200 with the same attempt (the recorded SAR is sent again if its SA is missing). At most 8 attempts the provider answered with its SA (and 32 it did not answer: those burn none of the 8). Refused without an attempt once the operation's download application expired (its notAfter passed). The provider's policy is read again before each new SAR: allowed, and within quota counting its other operations on the card that have an attempt.",
            "parameters": operation_param(),
            "requestBody": json_body("DownloadAuthorizationRequest"),
            "responses": {
                "201": json_response("A new attempt.", "DownloadAuthorization"),
                "200": json_response("This challenge's attempt.", "DownloadAuthorization"),
                "400": error_response("Unreadable input; the code names it.", &with_body_codes(&["invalid_operation_id", "invalid_path", "invalid_challenge"])),
                "403": error_response("The issuer's policy no longer allows the provider.", &["provider_not_allowed"]),
                "404": unknown_operation(),
                "409": error_response("Installed already, too many attempts, the download application expired (the card signs a new one for a new operation), the provider's quota on the card exceeded (with its other authorized downloads), the card's RC revoked or expired, or no url set for the provider.", &["already_installed", "too_many_attempts", "application_expired", "quota_exceeded", "card_not_registered", "registration_revoked", "registration_expired", "provider_unreachable"]),
                "415": media(),
                "500": internal(),
                "502": error_response("The provider could not be reached, refused (the message names it, its status, code and message), or answered with an SA the issuer does not accept.", &["provider_unreachable", "provider_refused"]),
                "503": error_response("This issuer's IRC is revoked: it signs nothing any more.", &["issuer_revoked"])
            }
        }},
        "/v1/downloads/{operation_id}/package": {"get": {
            "operationId": "getPackage",
            "summary": "The operation's code package (the application DB's, immutable per version): LOAD it after INSTALL with the attempt's SA.",
            "parameters": operation_param(),
            "responses": {
                "200": json_response("The package.", "Package"),
                "400": bad_operation(),
                "404": unknown_operation(),
                "500": internal()
            }
        }},
        "/v1/downloads/{operation_id}/receipt": {"post": {
            "operationId": "postDownloadReceipt",
            "summary": "S13–S14: the card's receipt for one of the operation's attempts, recorded as by POST /v1/receipts: view, ledger entry, operation installed and member notification queued in one transaction. Idempotent: the same receipt answers 200 with the first entry.",
            "parameters": operation_param(),
            "requestBody": json_body("DownloadReceiptRequest"),
            "responses": {
                "201": json_response("Recorded.", "DownloadReceipt"),
                "200": json_response("Recorded before; nothing changed.", "DownloadReceipt"),
                "400": error_response("Unreadable input; the code names it.", &with_body_codes(&["invalid_operation_id", "invalid_path", "invalid_receipt"])),
                "404": error_response("Unknown operation or card.", &["unknown_operation", "unknown_card", "unknown_sdi"]),
                "409": error_response("A receipt is missing (reconcile), out of order, or the card is not registered.", &["receipt_gap", "receipt_out_of_order", "card_not_registered"]),
                "415": media(),
                "422": error_response("The receipt's SA is none of the operation's attempts', or the receipt is refused on verification under the card's RC.", &["receipt_not_for_operation", "invalid_receipt", "wrong_purpose", "sdi_mismatch"]),
                "500": internal()
            }
        }},
        "/v1/notifications": {"get": {
            "operationId": "getNotifications",
            "summary": "The member-notification outbox (all, or in one state), oldest first: attempts, next attempt, last error.",
            "security": [{"operatorToken": []}],
            "parameters": state_param(&["pending", "delivered", "stuck"]),
            "responses": {
                "200": json_response("The outbox.", "Notifications"),
                "400": error_response("Bad state or query.", &["invalid_state", "invalid_query"]),
                "401": unauthenticated(),
                "403": forbidden(),
                "500": internal()
            }
        }},
        "/v1/notifications/{operation_id}/retry": {"post": {
            "operationId": "retryNotification",
            "summary": "Make an undelivered member notification due now (a stuck one included) and wake the notifier. No body.",
            "security": [{"operatorToken": []}],
            "parameters": operation_param(),
            "responses": {
                "200": json_response("The row, due now.", "NotificationRow"),
                "400": bad_operation(),
                "401": unauthenticated(),
                "403": forbidden(),
                "404": error_response("The operation has no member notification (not installed, or unknown).", &["unknown_notification"]),
                "409": error_response("It was delivered.", &["already_delivered"]),
                "500": internal()
            }
        }}
    });
    if let (Some(paths), Value::Object(more)) = (paths.as_object_mut(), downloads) {
        paths.extend(more);
    }
    paths
}

/// Issue 4's request and response bodies.
pub(super) fn download_schemas() -> Value {
    let int = || json!({"type": "integer"});
    let text = || json!({"type": "string"});
    let notification =
        json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/NotificationSummary"}]});
    let mut schemas = json!({
        "ApplicationRequest": {"type": "object", "required": ["aid", "version", "provider", "name", "code"], "additionalProperties": false, "properties": {
            "aid": hex("AID, 5..=16 bytes"), "version": int(), "provider": text(), "name": text(),
            "description": text(), "code": hex("the code package, 1 byte..1 MiB"),
            "policy": {"type": "integer", "description": "item policy bits (default 0)"}
        }},
        "Application": {"type": "object", "required": ["aid", "version", "size", "digest", "provider", "name", "description", "policy", "added_at"], "properties": {
            "aid": hex("AID"), "version": int(), "size": int(), "digest": hex("SHA-256 of the code"),
            "provider": text(), "name": text(), "description": text(), "policy": int(), "added_at": int()
        }},
        "Applications": {"type": "object", "required": ["applications"], "properties": {
            "applications": {"type": "array", "items": {"$ref": "#/components/schemas/Application"}}
        }},
        "Check": {"type": "object", "required": ["card_id", "nonce", "expires_at"], "properties": {
            "card_id": hex("16 bytes"), "nonce": hex("16 bytes: for the card's GET STATUS"), "expires_at": int()
        }},
        "StandingRequest": {"type": "object", "required": ["listing"], "additionalProperties": false, "properties": {
            "listing": hex("SignedObject DER (Listing) answering the nonce")
        }},
        "InstalledApplication": {"type": "object", "required": ["aid", "version", "name", "provider", "size"], "properties": {
            "aid": hex("AID"), "version": int(), "name": text(), "provider": text(), "size": int()
        }},
        "Standing": {"type": "object", "required": ["card_id", "status", "holder", "capacity", "free", "card_counter", "issuer_counter", "in_sync", "applications", "open_downloads"], "properties": {
            "card_id": hex("16 bytes"), "status": {"const": "registered"},
            "holder": {"type": "object", "required": ["user_id", "name"], "properties": {"user_id": text(), "name": text()}},
            "capacity": {"type": "integer", "description": "the card's, from its signed listing"},
            "free": {"type": "integer", "description": "the card's, from its signed listing"},
            "card_counter": int(), "issuer_counter": int(), "in_sync": {"type": "boolean"},
            "applications": {"type": "array", "items": {"$ref": "#/components/schemas/InstalledApplication"}},
            "open_downloads": {"type": "array", "description": "Open operations whose download application has not expired (a terminal continues one).", "items": hex("operation ID")}
        }},
        "OpenDownloadRequest": {"type": "object", "required": ["download_application", "rc"], "additionalProperties": false, "properties": {
            "download_application": hex("SignedObject DER (DownloadApplication), the card's"),
            "rc": hex("the card's RC, DER")
        }},
        "DownloadOpened": {"type": "object", "required": ["operation_id", "state", "application", "sdi", "free"], "properties": {
            "operation_id": hex("16 bytes"), "state": {"enum": ["opened", "installed"]},
            "application": {"$ref": "#/components/schemas/Application"},
            "sdi": hex("Sdi DER, owner = the provider"),
            "free": {"type": "integer", "description": "the smaller of the registry's and the card's free bytes"}
        }},
        "DownloadAuthorizationRequest": {"type": "object", "required": ["challenge"], "additionalProperties": false, "properties": {
            "challenge": hex("the card's 16-byte challenge")
        }},
        "DownloadAuthorization": {"type": "object", "required": ["attempt", "sar", "sa", "not_after"], "properties": {
            "attempt": int(), "sar": hex("SignedObject DER (Sar), the issuer's"),
            "sa": hex("SignedObject DER (Sa), the provider's: give it to INSTALL"),
            "not_after": {"type": "integer", "description": "the SA's"}
        }},
        "Package": {"type": "object", "required": ["aid", "version", "size", "digest", "code"], "properties": {
            "aid": hex("AID"), "version": int(), "size": int(), "digest": hex("SHA-256 of the code"), "code": hex("the code")
        }},
        "DownloadReceiptRequest": {"type": "object", "required": ["receipt"], "additionalProperties": false, "properties": {
            "receipt": hex("SignedObject DER (Receipt)")
        }}
    });
    let more = json!({
        "NotificationSummary": {"type": "object", "required": ["state", "attempts", "last_error", "delivered_at"], "properties": {
            "state": {"enum": ["pending", "delivered", "stuck"]}, "attempts": int(),
            "last_error": {"type": ["string", "null"]}, "delivered_at": {"type": ["integer", "null"]}
        }},
        "DownloadReceipt": {"type": "object", "required": ["card_id", "seq", "counter", "entry", "newly_recorded", "in_sync", "operation"], "properties": {
            "card_id": hex("16 bytes"), "seq": int(), "counter": int(),
            "entry": hex("SignedObject DER (LedgerEntry)"), "newly_recorded": {"type": "boolean"}, "in_sync": {"type": "boolean"},
            "operation": {"type": "object", "required": ["state", "notification"], "properties": {
                "state": {"enum": ["opened", "installed"]}, "notification": notification.clone()
            }}
        }},
        "Download": {"type": "object", "required": ["operation_id", "card_id", "provider", "service_id", "aid", "version", "state", "opened_at", "installed_at", "attempts", "receipt_counter", "notification"], "properties": {
            "operation_id": hex("16 bytes"), "card_id": hex("16 bytes"), "provider": text(), "service_id": text(),
            "aid": hex("AID"), "version": int(), "state": {"enum": ["opened", "installed", "expired"]},
            "opened_at": int(), "installed_at": {"type": ["integer", "null"]},
            "attempts": {"type": "array", "items": {"type": "object", "required": ["attempt", "sa_digest", "issued_at"], "properties": {
                "attempt": int(), "sa_digest": {"type": ["string", "null"]}, "issued_at": int()
            }}},
            "receipt_counter": {"type": ["integer", "null"]}, "notification": notification
        }},
        "Downloads": {"type": "object", "required": ["downloads"], "properties": {
            "downloads": {"type": "array", "items": {"$ref": "#/components/schemas/Download"}}
        }},
        "NotificationRow": {"type": "object", "required": ["operation_id", "provider", "state", "attempts", "next_attempt_at", "lease_until", "last_error", "created_at", "delivered_at"], "properties": {
            "operation_id": hex("16 bytes"), "provider": text(), "state": {"enum": ["pending", "delivered", "stuck"]},
            "attempts": int(), "next_attempt_at": int(), "lease_until": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]}, "created_at": int(), "delivered_at": {"type": ["integer", "null"]}
        }},
        "Notifications": {"type": "object", "required": ["notifications"], "properties": {
            "notifications": {"type": "array", "items": {"$ref": "#/components/schemas/NotificationRow"}}
        }},
        "Registry": {"type": "object", "required": ["card_id", "status", "holder", "capacity", "free", "last_counter", "applications", "items", "downloads"], "properties": {
            "card_id": hex("16 bytes"), "status": {"enum": ["personalised", "registered", "revoked"]},
            "holder": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["user_id", "name", "email"], "properties": {
                "user_id": text(), "name": text(), "email": text()
            }}]},
            "capacity": int(), "free": {"type": "integer", "description": "by the registry's view"}, "last_counter": int(),
            "applications": {"type": "array", "items": {"$ref": "#/components/schemas/InstalledApplication"}},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
            "downloads": {"type": "array", "items": {"$ref": "#/components/schemas/Download"}}
        }}
    });
    if let (Some(schemas), Value::Object(more)) = (schemas.as_object_mut(), more) {
        schemas.extend(more);
    }
    schemas
}
