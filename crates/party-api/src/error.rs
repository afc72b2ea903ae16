//! What a call to a party's server can end in besides its answer.

/// A failed call. `Refused` is the server's own 4xx/5xx answer with its stable code; the other
/// variants mean no usable answer arrived.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {detail}")]
    InvalidUrl { url: String, detail: String },

    #[error("cannot reach {url}: {detail}")]
    Transport { url: String, detail: String },

    #[error("{method} {url} answered {status} {code}: {message}")]
    Refused {
        method: String,
        url: String,
        status: u16,
        code: String,
        message: String,
    },

    #[error(
        "{method} {url} answered {status} with a body that is not what the API promises: {detail}"
    )]
    InvalidResponse {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },

    #[error("cannot build the request: {detail}")]
    InvalidRequest { detail: String },
}

impl ClientError {
    /// The server's stable error code, when it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } | ClientError::InvalidResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}
