//! Response APDUs (ISO 7816-4 §5.1): response data followed by the status word.

use crate::{ApduError, Status};

/// A response APDU: data field (possibly empty) and trailer SW1 SW2.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Response {
    pub data: Vec<u8>,
    pub status: Status,
}

impl Response {
    /// A response carrying `data`.
    pub fn new(data: impl Into<Vec<u8>>, status: Status) -> Response {
        Response {
            data: data.into(),
            status,
        }
    }

    /// A response with no data, only a status word.
    pub fn status(status: Status) -> Response {
        Response {
            data: Vec::new(),
            status,
        }
    }

    /// `data || SW1 SW2`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.status.to_bytes());
        out
    }

    /// Splits a response into data and status word; it needs at least the two status bytes.
    pub fn parse(bytes: &[u8]) -> Result<Response, ApduError> {
        match bytes {
            [data @ .., sw1, sw2] => Ok(Response::new(data, Status::from_bytes(*sw1, *sw2))),
            _ => Err(ApduError::ResponseTooShort { len: bytes.len() }),
        }
    }
}

impl From<Status> for Response {
    fn from(status: Status) -> Response {
        Response::status(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Response::new([0x6F, 0x00], Status::SUCCESS);
        assert_eq!(r.to_bytes(), [0x6F, 0x00, 0x90, 0x00]);
        assert_eq!(Response::parse(&r.to_bytes()), Ok(r));
    }

    #[test]
    fn status_only() {
        let r = Response::status(Status::FILE_OR_APPLICATION_NOT_FOUND);
        assert_eq!(r.to_bytes(), [0x6A, 0x82]);
        assert_eq!(Response::parse(&[0x6A, 0x82]), Ok(r.clone()));
        assert_eq!(Response::from(Status::FILE_OR_APPLICATION_NOT_FOUND), r);
    }

    #[test]
    fn rejects_missing_status() {
        assert_eq!(
            Response::parse(&[]),
            Err(ApduError::ResponseTooShort { len: 0 })
        );
        assert_eq!(
            Response::parse(&[0x90]),
            Err(ApduError::ResponseTooShort { len: 1 })
        );
    }
}
