//! Why the card refused a command, and the one place where that becomes a status word.
//!
//! Refusals are deliberately coarse on the wire: before the holder or a signer is authenticated
//! the card says only which class of check failed (ISO 7816-4 §5.6), never which byte.

use apdu::Status;

/// A refused command. Each variant maps to exactly one ISO 7816-4 status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The instruction is not known to the selected application.
    InsNotSupported,
    /// The class byte is not one the instruction takes.
    ClaNotSupported,
    /// P1/P2 are not valid for the instruction.
    WrongP1P2,
    /// The data field is malformed or fails a check against what it must match.
    WrongData,
    /// Lc/Le or a length inside the data is wrong.
    WrongLength,
    /// The command is valid but not in this life-cycle state or sequence.
    ConditionsNotSatisfied,
    /// The holder has not verified the PIN (or an authorization did not verify).
    SecurityNotSatisfied,
    /// A signature, certificate chain, or binding (card, challenge, expiry, signer) is wrong.
    AuthorizationInvalid,
    /// The PIN is blocked.
    PinBlocked,
    /// Wrong PIN; this many tries are left.
    WrongPin { tries_left: u8 },
    /// The referenced item or data is not on the card.
    ReferencedDataNotFound,
    /// The application is not on the card.
    NotFound,
    /// Storing it would exceed the card's capacity (CARD-6).
    NotEnoughMemory,
    /// The card is terminated: it answers nothing but status (CARD-3).
    Terminated,
    /// A write to NVM failed (power loss): the command did not take effect.
    MemoryFailure,
}

impl Refusal {
    /// The status word for this refusal (ISO 7816-4 §5.6, Table 6).
    pub fn status(self) -> Status {
        match self {
            Refusal::InsNotSupported => Status::INS_NOT_SUPPORTED,
            Refusal::ClaNotSupported => Status::CLA_NOT_SUPPORTED,
            Refusal::WrongP1P2 => Status::INCORRECT_P1_P2,
            Refusal::WrongData => Status::INCORRECT_DATA,
            Refusal::WrongLength => Status::WRONG_LENGTH,
            Refusal::ConditionsNotSatisfied => Status::CONDITIONS_OF_USE_NOT_SATISFIED,
            Refusal::SecurityNotSatisfied => Status::SECURITY_STATUS_NOT_SATISFIED,
            Refusal::AuthorizationInvalid => Status::REFERENCE_DATA_NOT_USABLE,
            Refusal::PinBlocked => Status::AUTHENTICATION_METHOD_BLOCKED,
            Refusal::WrongPin { tries_left } => Status::verify_failed(tries_left),
            Refusal::ReferencedDataNotFound => Status::REFERENCED_DATA_NOT_FOUND,
            Refusal::NotFound => Status::FILE_OR_APPLICATION_NOT_FOUND,
            Refusal::NotEnoughMemory => Status::NOT_ENOUGH_MEMORY,
            Refusal::Terminated => Status::FUNCTION_NOT_SUPPORTED,
            Refusal::MemoryFailure => Status::MEMORY_FAILURE,
        }
    }
}
