//! The DER plumbing every object shares. Each object has a private *wire* struct that mirrors its
//! ASN.1 definition in docs/protocol.asn field for field (derived with `der`, so the bytes are
//! canonical DER and the decoder refuses trailing bytes, non-minimal lengths and integers, and
//! unknown enumeration values) and a domain struct with checked value types; `from_wire` applies
//! the constraints ASN.1 states but `der` does not check (sizes, character sets, orders).

use crate::error::ProtocolError;
use crypto::Digest;

/// An object with one canonical DER encoding (docs/protocol.asn).
pub trait DerCodec: Sized {
    /// The ASN.1 type name in docs/protocol.asn.
    const NAME: &'static str;

    /// The DER encoding. Infallible: every field is bounded far below DER's 256 MiB limit.
    fn to_der(&self) -> Vec<u8>;

    /// Decodes canonical DER, refusing trailing bytes and out-of-range values.
    fn from_der(bytes: &[u8]) -> Result<Self, ProtocolError>;

    /// SHA-256 of [`DerCodec::to_der`] — how objects refer to each other.
    fn digest(&self) -> Digest {
        crypto::sha256(&self.to_der())
    }
}

pub(crate) fn encode<W: der::Encode>(wire: der::Result<W>) -> Vec<u8> {
    match wire.and_then(|w| w.to_der()) {
        Ok(der) => der,
        // Invariant: `der` fails to encode only when a length exceeds der::Length::MAX
        // (256 MiB); our objects are bounded by their value types, or by the DER they were
        // decoded from, far below that.
        Err(e) => unreachable!("DER encoding of a bounded object failed: {e}"),
    }
}

pub(crate) fn decode<'a, W: der::Decode<'a>>(
    object: &'static str,
    bytes: &'a [u8],
) -> Result<W, ProtocolError> {
    W::from_der(bytes).map_err(|e| ProtocolError::Malformed {
        object,
        detail: e.to_string(),
    })
}

/// Implements [`DerCodec`] (and the same three methods inherently, so callers need no import)
/// for a type with `to_wire(&self) -> der::Result<Wire<'_>>` and
/// `from_wire(Wire<'_>) -> Result<Self, ProtocolError>`.
macro_rules! der_codec {
    ($ty:ident, $wire:ident, $name:literal) => {
        impl $crate::codec::DerCodec for $ty {
            const NAME: &'static str = $name;

            fn to_der(&self) -> Vec<u8> {
                $crate::codec::encode(self.to_wire())
            }

            fn from_der(bytes: &[u8]) -> Result<Self, $crate::error::ProtocolError> {
                Self::from_wire($crate::codec::decode::<$wire<'_>>($name, bytes)?)
            }
        }

        impl $ty {
            /// The canonical DER encoding (docs/protocol.asn).
            pub fn to_der(&self) -> Vec<u8> {
                <Self as $crate::codec::DerCodec>::to_der(self)
            }

            /// Decodes canonical DER, refusing trailing bytes and out-of-range values.
            pub fn from_der(bytes: &[u8]) -> Result<Self, $crate::error::ProtocolError> {
                <Self as $crate::codec::DerCodec>::from_der(bytes)
            }

            /// SHA-256 of the DER encoding.
            pub fn digest(&self) -> crypto::Digest {
                <Self as $crate::codec::DerCodec>::digest(self)
            }
        }
    };
}
pub(crate) use der_codec;
