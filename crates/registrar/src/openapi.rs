//! The registrar's OpenAPI 3.1 document (`GET /openapi.json`), written by hand. Every route of
//! `http::routes` and server-kit's `KIT_ROUTES` is here (a test checks both directions), and
//! every 4xx lists its stable error codes under `x-error-codes`.

use serde_json::{json, Value};
use server_kit::openapi::{error_response, internal, json_body, json_response, with_body_codes};

/// The document.
pub fn document() -> Value {
    let unauthenticated = error_response(
        "Missing, malformed or unknown operator token (`Authorization: Bearer cwo_…`).",
        &["unauthenticated"],
    );
    let forbidden = error_response("The operator is disabled.", &["forbidden"]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cardwright registrar",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Issuer Registrar or Data Registrar (one program, two roles): certifies issuers (IRC) or providers (DPR), revokes, publishes CRLs; a data registrar also certifies its providers' data (SDCI'). Binary values are lowercase hex of DER. See docs/parties.md and docs/pki.md."
        },
        "paths": {
            "/v1/root": {"get": {
                "operationId": "getRoot",
                "summary": "The registrar's self-issued root certificate (the trust anchor).",
                "responses": {"200": json_response("The root.", "Root"), "500": internal()}
            }},
            "/v1/certificates": {
                "post": {
                    "operationId": "issueCertificate",
                    "summary": "Certify a party: an IRC (issuer registrar) or a DPR (data registrar), under a fresh serial.",
                    "security": [{"operatorToken": []}],
                    "requestBody": json_body("IssueRequest"),
                    "responses": {
                        "201": json_response("Issued.", "Certificate"),
                        "400": error_response("A field is wrong; the code names it.", &with_body_codes(&["invalid_subject", "invalid_public_key", "invalid_not_after"])),
                        "401": unauthenticated,
                        "403": forbidden,
                        "415": error_response("The body is not JSON.", &["unsupported_media_type"]),
                        "500": internal()
                    }
                },
                "get": {
                    "operationId": "listCertificates",
                    "summary": "Certificates issued here, by ascending serial; all, or those of one subject.",
                    "parameters": [{"name": "subject", "in": "query", "required": false, "schema": {"type": "string"}}],
                    "responses": {
                        "200": json_response("The certificates.", "CertificateList"),
                        "400": error_response("Bad query.", &["invalid_subject", "invalid_query"]),
                        "500": internal()
                    }
                }
            },
            "/v1/certificates/{serial}": {"get": {
                "operationId": "getCertificate",
                "summary": "One certificate issued here, with its revocation if any.",
                "parameters": [{"name": "serial", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
                "responses": {
                    "200": json_response("The certificate.", "Certificate"),
                    "400": error_response("The serial is not a positive integer.", &["invalid_serial"]),
                    "404": error_response("No such certificate was issued here.", &["unknown_certificate"]),
                    "500": internal()
                }
            }},
            "/v1/revocations": {"post": {
                "operationId": "revokeCertificate",
                "summary": "Revoke a certificate and publish a CRL listing it. Idempotent: repeating returns 200 with the original revocation.",
                "security": [{"operatorToken": []}],
                "requestBody": json_body("RevokeRequest"),
                "responses": {
                    "201": json_response("Revoked now.", "Revocation"),
                    "200": json_response("Already revoked; nothing changed.", "Revocation"),
                    "400": error_response("A field is wrong; the code names it.", &with_body_codes(&["invalid_reason"])),
                    "401": unauthenticated,
                    "403": forbidden,
                    "404": error_response("No such certificate was issued here.", &["unknown_certificate"]),
                    "415": error_response("The body is not JSON.", &["unsupported_media_type"]),
                    "500": internal()
                }
            }},
            "/v1/crl": {"get": {
                "operationId": "getCrl",
                "summary": "The current CRL over every revocation; its number increases with every change and every re-signing.",
                "responses": {"200": json_response("The CRL.", "Crl"), "500": internal()}
            }},
            "/v1/certified-data": {"post": {
                "operationId": "certifyData",
                "summary": "SDCI' (SPEC STO-5), data registrar only: certify that the data is what the SDI (a store of an item the calling provider owns) describes. The caller is a provider holding an unrevoked DPR from this registrar, authenticated by a party request. The answer is served as is: CertifiedData signed by the root key (purpose RegistrarCertifiedData, no chain).",
                "security": [{"partyRequest": []}],
                "requestBody": json_body("CertifyDataRequest"),
                "responses": {
                    "201": json_response("Certified (and recorded).", "CertifiedData"),
                    "400": error_response("A field is wrong; the code names it.", &["invalid_sdi", "invalid_data", "malformed_json", "invalid_body", "unreadable_body"]),
                    "401": error_response("The party request is missing or refused: no header, a chain not to this registrar's root (issuers cannot authenticate here), a revoked DPR, a bad signature or target, a stale time or a replayed nonce.", &["unauthenticated", "request_stale", "request_replayed"]),
                    "403": error_response("The caller may not have this certified: the item is another provider's.", &["caller_not_owner", "caller_not_provider"]),
                    "404": error_response("This is an issuer registrar.", &["not_a_data_registrar"]),
                    "413": error_response("The body exceeds 2 MiB.", &["body_too_large"]),
                    "422": error_response("The SDI is not a store, or the data's size or SHA-256 is not the SDI's.", &["sdi_mismatch"]),
                    "500": internal()
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
                "summary": "Prometheus text exposition: requests by route and status, latency histogram, certificates issued, revocations, data certified.",
                "responses": {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }}
        },
        "components": {
            "securitySchemes": {
                "operatorToken": {"type": "http", "scheme": "bearer", "description": "Operator token cwo_<32 hex>, valid only on this registrar's database."},
                "partyRequest": {"type": "apiKey", "in": "header", "name": "Cardwright-Request", "description": "Hex DER SignedObject (purpose apiRequest) over method, target, body SHA-256, audience (this registrar's party ID), time and nonce, with the caller's chain [DPR] (docs/parties.md, Authentication)."}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "description": "Stable snake_case code."},
                    "message": {"type": "string"}
                }},
                "InternalError": {"type": "object", "required": ["code", "request_id"], "properties": {
                    "code": {"const": "internal"},
                    "request_id": {"type": ["string", "null"]}
                }},
                "Health": {"type": "object", "properties": {"status": {"type": "string"}, "db": {"type": "string"}}},
                "Root": {"type": "object", "required": ["party_id", "role", "serial", "not_before", "not_after", "certificate", "pem"], "properties": {
                    "party_id": {"type": "string"},
                    "role": {"enum": ["issuer_registrar", "data_registrar"]},
                    "serial": {"type": "integer"},
                    "not_before": {"type": "integer", "description": "Unix seconds"},
                    "not_after": {"type": "integer", "description": "Unix seconds"},
                    "certificate": {"type": "string", "description": "DER, hex"},
                    "pem": {"type": "string"}
                }},
                "IssueRequest": {"type": "object", "required": ["subject", "public_key"], "additionalProperties": false, "properties": {
                    "subject": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                    "public_key": {"type": "string", "description": "P-256 public key, SEC1, hex"},
                    "not_after": {"type": "integer", "description": "Unix seconds; default three years from now, at most the root's not_after"}
                }},
                "Certificate": {"type": "object", "required": ["serial", "subject", "role", "not_before", "not_after", "issued_at", "certificate", "pem", "revocation"], "properties": {
                    "serial": {"type": "integer"},
                    "subject": {"type": "string"},
                    "role": {"enum": ["issuer", "provider"]},
                    "not_before": {"type": "integer"},
                    "not_after": {"type": "integer"},
                    "issued_at": {"type": "integer"},
                    "certificate": {"type": "string", "description": "DER, hex"},
                    "pem": {"type": "string"},
                    "revocation": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                        "reason": {"type": "string"}, "revoked_at": {"type": "integer"}
                    }}]}
                }},
                "CertificateList": {"type": "object", "required": ["certificates"], "properties": {
                    "certificates": {"type": "array", "items": {"$ref": "#/components/schemas/Certificate"}}
                }},
                "RevokeRequest": {"type": "object", "required": ["serial", "reason"], "additionalProperties": false, "properties": {
                    "serial": {"type": "integer", "minimum": 1},
                    "reason": {"enum": ["unspecified", "key_compromise", "affiliation_changed", "superseded", "cessation_of_operation"]}
                }},
                "Revocation": {"type": "object", "required": ["serial", "reason", "revoked_at", "newly_revoked", "crl_number"], "properties": {
                    "serial": {"type": "integer"},
                    "reason": {"type": "string"},
                    "revoked_at": {"type": "integer"},
                    "newly_revoked": {"type": "boolean"},
                    "crl_number": {"type": "integer"}
                }},
                "CertifyDataRequest": {"type": "object", "required": ["sdi", "data"], "additionalProperties": false, "properties": {
                    "sdi": {"type": "string", "description": "DER of the Sdi (a store), hex"},
                    "data": {"type": "string", "description": "The item's data, hex"}
                }},
                "CertifiedData": {"type": "object", "required": ["sdci"], "properties": {
                    "sdci": {"type": "string", "description": "SDCI': DER of a SignedObject (purpose RegistrarCertifiedData, signed by the root key, no chain), hex"}
                }},
                "Crl": {"type": "object", "required": ["number", "this_update", "next_update", "crl", "pem"], "properties": {
                    "number": {"type": "integer"},
                    "this_update": {"type": "integer"},
                    "next_update": {"type": "integer"},
                    "crl": {"type": "string", "description": "DER, hex"},
                    "pem": {"type": "string"}
                }}
            }
        }
    })
}
