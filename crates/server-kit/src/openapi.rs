//! Pieces every server's hand-written OpenAPI 3.1 document is built from: responses carrying
//! the kit's error shapes ([`ApiError`](crate::ApiError)'s `Error`, the opaque `InternalError`)
//! with their stable codes under `x-error-codes`, JSON bodies by schema name, and the codes the
//! kit's JSON extractor answers with. Each server keeps its own paths and schemas.

use serde_json::{json, Value};

/// A 4xx response with the `Error` schema, listing its stable `codes`.
pub fn error_response(description: &str, codes: &[&str]) -> Value {
    json!({
        "description": description,
        "x-error-codes": codes,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// A JSON response whose body is the component schema `schema`.
pub fn json_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

/// A required JSON request body with the component schema `schema`.
pub fn json_body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

/// The opaque 5xx response (`InternalError` schema).
pub fn internal() -> Value {
    json!({
        "description": "Internal error; the cause is logged under the request id.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InternalError"}}}
    })
}

/// The codes [`ApiJson`](crate::ApiJson) refuses a request body with.
pub const BODY_CODES: [&str; 4] = [
    "unsupported_media_type",
    "malformed_json",
    "invalid_body",
    "unreadable_body",
];

/// `codes` followed by [`BODY_CODES`], for routes that take a JSON body.
pub fn with_body_codes(codes: &[&'static str]) -> Vec<&'static str> {
    codes.iter().copied().chain(BODY_CODES).collect()
}
