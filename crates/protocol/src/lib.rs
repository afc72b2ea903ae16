//! Every signed object exchanged between the card and the parties for registration (REG-2) and
//! dual-consent storing (STO-1…7, REC-1), and between the parties themselves (SEC-3 request
//! authentication, REC-1 ledgers), its DER codec (docs/protocol.asn), and the verification the
//! card runs on them (and the servers reuse). Sans-IO: time enters as a [`UnixTime`] value,
//! keys as arguments.

mod api_request;
mod codec;
mod command;
mod consent;
mod download;
mod error;
mod field;
mod ledger;
mod record;
mod registration;
mod signed;
mod storing;

pub use api_request::{verify_api_request, ApiRequest, ExpectedRequest, HttpMethod, RequestPath};
pub use codec::DerCodec;
pub use command::{IssuerAction, IssuerCommand};
pub use consent::{
    verify_certified_data, verify_issuer_command, verify_listing, verify_receipt,
    verify_storing_authorization, Authorized, CardContext, CertifiedBy, ConsentPath,
};
pub use download::{
    verify_download_application, DownloadApplication, DownloadError, DownloadRequest,
    ExpectedDownload, OperationId, ServiceId,
};
pub use error::{ConsentError, LedgerBreak, ProtocolError};
pub use field::{Challenge, ItemId, ItemPrefix, Nonce, Operation, OperationSet, Policy};
pub use ledger::{verify_ledger, LedgerEntry, LedgerSummary};
pub use record::{listing_digest, ListedItem, Listing, ListingBody, Receipt, ReceiptResult};
pub use registration::{verify_registration_info, RegistrationInfo, UserInfo};
pub use signed::{
    Purpose, Signed, SignedObject, ECDSA_WITH_SHA256, MAX_CERTIFICATE_LEN, MAX_CHAIN_LEN,
    MAX_SIGNATURE_LEN,
};
pub use storing::{CertifiedData, Delegation, PartyRole, Sa, SaBasis, Sar, Sdi};

pub use crypto::Digest;
pub use pki::{CardId, PartyId, Role, UnixTime};
