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

/// A failed call to a peer as a server reports it: the peer refused (its status, code and
/// message), answered 2xx with something unreadable, the request could not be built (a bug on
/// the caller's side), or no answer came (`detail` says why). Servers map it to their own link
/// errors, which name the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    InvalidAnswer {
        detail: String,
    },
    Request {
        detail: String,
    },
    Unreachable {
        detail: String,
    },
}

impl ClientError {
    /// What this failure means to a server calling a peer ([`CallFailure`]).
    pub fn into_call_failure(self) -> CallFailure {
        match self {
            ClientError::Refused {
                status,
                code,
                message,
                ..
            } => CallFailure::Refused {
                status,
                code,
                message,
            },
            ClientError::InvalidResponse { detail, .. } => CallFailure::InvalidAnswer { detail },
            ClientError::InvalidRequest { detail } => CallFailure::Request { detail },
            ClientError::InvalidUrl { detail, .. } | ClientError::Transport { detail, .. } => {
                CallFailure::Unreachable { detail }
            }
        }
    }

    /// Why a client could not be made for a URL: the URL's own problem when that is it (the
    /// caller names the URL already), else the whole error.
    pub fn into_url_detail(self) -> String {
        match self {
            ClientError::InvalidUrl { detail, .. } => detail,
            other => other.to_string(),
        }
    }
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
