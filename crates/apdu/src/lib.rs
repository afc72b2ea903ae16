//! ISO/IEC 7816-4 application protocol data units, without IO: command and response APDUs
//! (short and extended), status words, BER-TLV data objects, command chaining and GET RESPONSE.
//!
//! The card parses every incoming command once with [`Command::parse`] and answers with a
//! [`Response`]; the host builds a [`Command`] and sends it with [`chaining::transceive`], which
//! hides chaining, `61xx` and `6Cxx` from the caller. Nothing here knows about transports.

pub mod chaining;
mod command;
mod error;
mod response;
mod status;
pub mod tlv;

pub use command::{
    Command, Framing, CLA_CHAINING, MAX_EXTENDED_DATA, MAX_EXTENDED_LE, MAX_SHORT_DATA,
    MAX_SHORT_LE,
};
pub use error::ApduError;
pub use response::Response;
pub use status::Status;
