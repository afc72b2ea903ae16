//! The OpenAPI paths and schemas of the provider's routes for adding an application over the
//! Internet (docs/app-download.md §3 "Provider"), merged into the document by `openapi.rs`.

use serde_json::{json, Value};
use server_kit::openapi::{error_response, internal, json_body, json_response, with_body_codes};

use super::{hex, media, object, string_param, version_param};

fn operator_refusals() -> (Value, Value) {
    (
        error_response(
            "Missing, malformed or unknown operator token.",
            &["unauthenticated"],
        ),
        error_response("The operator is disabled.", &["forbidden"]),
    )
}

fn party_refusals() -> (Value, Value) {
    (
        error_response(
            "The party request header is missing or refused, stale, or replayed.",
            &["unauthenticated", "request_stale", "request_replayed"],
        ),
        error_response("The body exceeds 2 MiB.", &["body_too_large"]),
    )
}

/// The paths (`/v1/members` holds only the POST: the document merges it with the GET).
pub(super) fn paths() -> Value {
    let (op401, op403) = operator_refusals();
    let (party401, party413) = party_refusals();
    let operation = string_param("op", "path", true, "Operation ID, 16 bytes, hex.");
    let service = string_param(
        "id",
        "path",
        true,
        "Service ID, 1..=64 of A-Z a-z 0-9 . _ -.",
    );
    json!({
        "/v1/terms": {
            "put": {
                "operationId": "publishTerms",
                "summary": "Publish the next version of the membership terms (older versions are kept: a download application binds one by digest). The latest version's text again returns 200.",
                "security": [{"operatorToken": []}],
                "requestBody": json_body("PublishTermsRequest"),
                "responses": {
                    "201": json_response("Published.", "Terms"),
                    "200": json_response("The latest version has this text already.", "Terms"),
                    "400": error_response("The text is empty or longer than 64 KiB, or the body cannot be read.", &with_body_codes(&["invalid_terms"])),
                    "401": op401.clone(),
                    "403": op403.clone(),
                    "415": media(),
                    "500": internal()
                }
            },
            "get": {
                "operationId": "getTerms",
                "summary": "The latest membership terms, or the version asked for.",
                "parameters": [version_param()],
                "responses": {
                    "200": json_response("The terms.", "Terms"),
                    "400": error_response("Bad query.", &["invalid_query"]),
                    "404": error_response("No terms published yet, or no such version.", &["unknown_terms"]),
                    "500": internal()
                }
            }
        },
        "/v1/services": {
            "post": {
                "operationId": "addService",
                "summary": "APP-2: add a service offering one application of an issuer's application DB; the provider fetches GET {issuer}/v1/applications/{aid}?version= and pins its size, digest and policy (the application must belong to this provider). The same service again returns 200 without asking the issuer.",
                "security": [{"operatorToken": []}],
                "requestBody": json_body("AddServiceRequest"),
                "responses": {
                    "201": json_response("Added.", "Service"),
                    "200": json_response("Added before with this content.", "Service"),
                    "400": error_response("A field is wrong; the code names it.", &with_body_codes(&["invalid_service_id", "invalid_aid", "invalid_issuer"])),
                    "401": op401.clone(),
                    "403": op403.clone(),
                    "409": error_response("A service with this ID exists with other content.", &["service_exists"]),
                    "415": media(),
                    "422": error_response("The issuer is not one this provider works with, or it has no such application for this provider.", &["unknown_issuer", "unknown_application"]),
                    "500": internal(),
                    "502": error_response("The issuer refused (the message names it, its status, code and message), answered something unreadable, or could not be reached.", &["issuer_refused", "issuer_unreachable"])
                }
            },
            "get": {
                "operationId": "listServices",
                "summary": "The catalog (S4), by service ID.",
                "responses": {"200": json_response("The services.", "ServiceList"), "500": internal()}
            }
        },
        "/v1/services/{id}": {"get": {
            "operationId": "getService",
            "summary": "One service.",
            "parameters": [service.clone()],
            "responses": {
                "200": json_response("The service.", "Service"),
                "400": error_response("Bad service ID.", &["invalid_service_id"]),
                "404": error_response("No such service.", &["unknown_service"]),
                "500": internal()
            }
        }},
        "/v1/services/{id}/members": {"get": {
            "operationId": "listServiceMembers",
            "summary": "The members of a service with their personal information (operators only), by membership time.",
            "security": [{"operatorToken": []}],
            "parameters": [service],
            "responses": {
                "200": json_response("The members.", "ServiceMembers"),
                "400": error_response("Bad service ID.", &["invalid_service_id"]),
                "401": op401,
                "403": op403,
                "404": error_response("No such service.", &["unknown_service"]),
                "500": internal()
            }
        }},
        "/v1/downloads/{op}": {
            "put": {
                "operationId": "openDownload",
                "summary": "S5–S6: the user's service choice for a card of the service's issuer under the terms accepted; answers the DownloadRequest (DER) for the card to sign, valid 30 minutes. The same body again returns 200 with the operation as it is.",
                "parameters": [operation.clone()],
                "requestBody": json_body("OpenDownloadRequest"),
                "responses": {
                    "201": json_response("Requested.", "DownloadOpened"),
                    "200": json_response("Requested before with this body.", "DownloadOpened"),
                    "400": error_response("A field cannot be read.", &with_body_codes(&["invalid_operation_id", "invalid_card_id", "invalid_issuer", "invalid_service_id", "invalid_terms_digest"])),
                    "404": error_response("No such service.", &["unknown_service"]),
                    "409": error_response("The operation exists with another body, or the card is a member of the service already.", &["operation_conflict", "already_member"]),
                    "415": media(),
                    "422": error_response("The issuer is not one this provider works with, the service installs another issuer's application, or the terms accepted are not the latest.", &["unknown_issuer", "issuer_mismatch", "terms_outdated"]),
                    "500": internal()
                }
            },
            "get": {
                "operationId": "getDownload",
                "summary": "Where the operation stands: requested, granted, member (with member_since).",
                "parameters": [operation.clone()],
                "responses": {
                    "200": json_response("The state.", "DownloadState"),
                    "400": error_response("Bad operation ID.", &["invalid_operation_id"]),
                    "404": error_response("No such operation.", &["unknown_operation"]),
                    "500": internal()
                }
            }
        },
        "/v1/downloads/{op}/grant": {"post": {
            "operationId": "grantDownload",
            "summary": "S11, a party request of the card's issuer: this provider's SA over the issuer's SAR. The card-signed download application must verify under the RC sent (which chains through the SAR signer's IRC to the Issuer Registrar root with the CRLs held, and is the RC the SAR names) and hold exactly this operation's request; the SAR's SDI must be the service's pinned application for the card, owned by this provider, and the operation's issuer the one the service's application was pinned from. The same SAR again returns 200 with the SA recorded for it.",
            "security": [{"partyRequest": []}],
            "parameters": [operation],
            "requestBody": json_body("DownloadGrantRequest"),
            "responses": {
                "201": json_response("Granted.", "Sa"),
                "200": json_response("Granted before for this SAR.", "Sa"),
                "400": error_response("A field cannot be read.", &["invalid_operation_id", "invalid_sar", "invalid_download_application", "invalid_rc", "malformed_json", "invalid_body", "unreadable_body"]),
                "401": party401.clone(),
                "403": error_response("The caller is not the issuer the operation names, or did not sign the SAR.", &["caller_not_card_issuer", "caller_not_requester"]),
                "404": error_response("No such operation.", &["unknown_operation"]),
                "409": error_response("The operation expired or its member is recorded; or the SAR was granted on STO-1.", &["operation_closed", "authorization_replayed"]),
                "413": party413.clone(),
                "422": error_response("Refused: the code says why (issuer_mismatch: the service installs another issuer's application).", &["untrusted_signer", "wrong_purpose", "authorization_expired", "invalid_sar", "invalid_download_application", "operation_mismatch", "sdi_mismatch", "issuer_mismatch", "rc_mismatch"]),
                "500": internal()
            }
        }},
        "/v1/members": {"post": {
            "operationId": "notifyMember",
            "summary": "S15–S16, a party request of the card's issuer: the new member with the card's signed application and receipt, its RC and the issuer's IRC. The RC must chain through the IRC to the Issuer Registrar root with the CRLs held; the application must verify under it and hold the operation's request; the receipt must verify under it and name an SA granted here for the operation. The receipt goes into the card's ledger and the member is recorded active in one transaction keyed by the operation ID; a repeat is acknowledged with 200 and changes nothing.",
            "security": [{"partyRequest": []}],
            "requestBody": json_body("MemberNotification"),
            "responses": {
                "201": json_response("Recorded.", "MemberAcknowledgement"),
                "200": json_response("Recorded before; nothing changed.", "MemberAcknowledgement"),
                "400": error_response("A field cannot be read.", &["invalid_operation_id", "invalid_card_id", "invalid_service_id", "invalid_download_application", "invalid_receipt", "invalid_rc", "invalid_irc", "malformed_json", "invalid_body", "unreadable_body"]),
                "401": party401,
                "403": error_response("The caller is not the issuer the operation names.", &["caller_not_card_issuer"]),
                "404": error_response("No such operation.", &["unknown_operation"]),
                "409": error_response("The card's receipts recorded here have a higher counter.", &["counter_not_increasing"]),
                "413": party413,
                "422": error_response("Refused: the code says why.", &["untrusted_signer", "wrong_purpose", "invalid_download_application", "invalid_receipt", "receipt_not_for_operation", "operation_mismatch", "rc_mismatch"]),
                "500": internal()
            }
        }}
    })
}

pub(super) fn schemas() -> Value {
    let user = object(
        &["user_id", "name", "email"],
        json!({"user_id": {"type": "string"}, "name": {"type": "string"}, "email": {"type": "string"}}),
    );
    let application = object(
        &["aid", "version", "size", "name", "digest", "policy"],
        json!({
            "aid": hex("The application's AID, 5..=16 bytes."),
            "version": {"type": "integer"},
            "size": {"type": "integer", "description": "Bytes of the code package."},
            "name": {"type": "string", "description": "The application's name in the issuer's DB."},
            "digest": hex("SHA-256 of the code."),
            "policy": {"type": "integer", "description": "Policy bits."}
        }),
    );
    json!({
        "PublishTermsRequest": object(&["text"], json!({"text": {"type": "string", "description": "The terms as the user reads them."}})),
        "Terms": object(&["version", "text", "digest", "published_at"], json!({
            "version": {"type": "integer"}, "text": {"type": "string"},
            "digest": hex("SHA-256 of the text's UTF-8 bytes: what a download binds."),
            "published_at": {"type": "integer"}
        })),
        "AddServiceRequest": object(&["service_id", "name", "aid", "version", "issuer"], json!({
            "service_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
            "name": {"type": "string"}, "description": {"type": "string", "default": ""},
            "aid": hex("The application's AID, 5..=16 bytes."),
            "version": {"type": "integer", "minimum": 0},
            "issuer": {"type": "string", "description": "The issuer whose application DB holds it."}
        })),
        "Service": object(&["service_id", "name", "description", "issuer", "application", "created_at"], json!({
            "service_id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
            "issuer": {"type": "string"}, "application": application, "created_at": {"type": "integer"}
        })),
        "ServiceList": object(&["services"], json!({"services": {"type": "array", "items": {"$ref": "#/components/schemas/Service"}}})),
        "ServiceMembers": object(&["service_id", "members"], json!({
            "service_id": {"type": "string"},
            "members": {"type": "array", "items": object(&["card_id", "user", "member_since", "operation_id"], json!({
                "card_id": hex("16 bytes."), "user": user.clone(), "member_since": {"type": "integer"},
                "operation_id": hex("16 bytes.")
            }))}
        })),
        "OpenDownloadRequest": object(&["card_id", "issuer", "service_id", "terms_digest"], json!({
            "card_id": hex("16 bytes."), "issuer": {"type": "string", "description": "The card's issuer."},
            "service_id": {"type": "string"}, "terms_digest": hex("SHA-256 of the terms text accepted.")
        })),
        "DownloadOpened": object(&["operation_id", "request", "not_after", "state"], json!({
            "operation_id": hex("16 bytes."), "request": hex("The DownloadRequest, DER: for the card to sign."),
            "not_after": {"type": "integer"}, "state": {"enum": ["requested", "granted", "member"]}
        })),
        "DownloadState": object(&["operation_id", "state"], json!({
            "operation_id": hex("16 bytes."), "state": {"enum": ["requested", "granted", "member"]},
            "member_since": {"type": "integer"}
        })),
        "DownloadGrantRequest": object(&["sar", "download_application", "rc"], json!({
            "sar": hex("The issuer's SAR, DER SignedObject."),
            "download_application": hex("The card-signed DownloadApplication, DER SignedObject."),
            "rc": hex("The card's RC, DER.")
        })),
        "MemberNotification": object(&["operation_id", "card_id", "service_id", "user", "download_application", "receipt", "rc", "irc"], json!({
            "operation_id": hex("16 bytes."), "card_id": hex("16 bytes."), "service_id": {"type": "string"},
            "user": user,
            "download_application": hex("The card-signed DownloadApplication, DER SignedObject."),
            "receipt": hex("The card's receipt of the install, DER SignedObject."),
            "rc": hex("The card's RC, DER."), "irc": hex("The RC issuer's IRC, DER.")
        })),
        "MemberAcknowledgement": object(&["operation_id", "member_since", "newly_recorded"], json!({
            "operation_id": hex("16 bytes."), "member_since": {"type": "integer"}, "newly_recorded": {"type": "boolean"}
        }))
    })
}
