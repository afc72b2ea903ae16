//! One typed method per card command of `docs/card-os.md`.

use apdu::chaining::{transceive, TransceiveError};
use apdu::{tlv, Command, Framing, Status};
use card::wire::*;
use pki::{CardId, Certificate, Crl};
use protocol::{Digest, DownloadRequest, SignedObject, UserInfo};

use crate::channel::{CardChannel, ChannelError};
use crate::personalisation::dgi;
use crate::Personalisation;

pub use card::wire::CardStatus;

/// A command did not get the answer it needed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{command}: card refused with status {status} ({meaning})")]
    Refused {
        command: &'static str,
        status: Status,
        meaning: &'static str,
    },
    #[error("{command}: {source}")]
    Transport {
        command: &'static str,
        source: TransceiveError<ChannelError>,
    },
    #[error("{command}: card answered something malformed: {detail}")]
    Malformed {
        command: &'static str,
        detail: String,
    },
}

impl ClientError {
    /// The status word of a refusal, if this is one.
    pub fn status(&self) -> Option<Status> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What an issuer command asks the card to do (SET STATUS P2 / RESET RETRY COUNTER).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerCommandKind {
    Lock,
    Unlock,
    Terminate,
}

/// The largest LOAD block the client sends.
pub(crate) const LOAD_BLOCK: usize = 240;

/// Speaks to a card's card manager over any [`CardChannel`].
pub struct CardClient<C: CardChannel> {
    channel: C,
    framing: Framing,
}

impl<C: CardChannel> CardClient<C> {
    /// A client that sends short APDUs (chaining long data, GET RESPONSE for long answers), the
    /// form every reader supports.
    pub fn new(channel: C) -> Self {
        CardClient {
            channel,
            framing: Framing::Short,
        }
    }

    /// A client that sends extended APDUs when a command needs them.
    pub fn extended(channel: C) -> Self {
        CardClient {
            channel,
            framing: Framing::Extended,
        }
    }

    pub fn channel(&mut self) -> &mut C {
        &mut self.channel
    }

    pub fn into_channel(self) -> C {
        self.channel
    }

    /// Sends `cmd` and returns the response data, or the refusal as an error.
    pub fn send(&mut self, command: &'static str, cmd: Command) -> Result<Vec<u8>, ClientError> {
        let channel = &mut self.channel;
        // `transceive` refuses an answer shorter than a status word (`InvalidResponse`).
        let resp = transceive(&cmd, self.framing, &mut |bytes: &[u8]| {
            channel.transmit(bytes)
        })
        .map_err(|source| ClientError::Transport { command, source })?;
        if resp.status == Status::SUCCESS {
            Ok(resp.data)
        } else {
            Err(ClientError::Refused {
                command,
                status: resp.status,
                meaning: meaning(resp.status),
            })
        }
    }

    pub fn select_card_manager(&mut self) -> Result<Vec<u8>, ClientError> {
        self.send(
            "SELECT",
            Command::new(0x00, INS_SELECT, 0x04, 0x00, card::ISD_AID).with_le(256),
        )
    }

    /// GET DATA: the value of `tag` (without its TLV header).
    pub fn get_data(&mut self, tag: u16) -> Result<Vec<u8>, ClientError> {
        let [p1, p2] = tag.to_be_bytes();
        let resp = self.send(
            "GET DATA",
            Command::new(0x80, INS_GET_DATA, p1, p2, []).with_le(256),
        )?;
        let t = tlv::parse_single(&resp).map_err(|e| ClientError::Malformed {
            command: "GET DATA",
            detail: e.to_string(),
        })?;
        Ok(t.value)
    }

    pub fn card_id(&mut self) -> Result<CardId, ClientError> {
        let v = self.get_data(TAG_CARD_ID)?;
        CardId::from_slice(&v).ok_or(ClientError::Malformed {
            command: "GET DATA",
            detail: format!("card ID of {} bytes", v.len()),
        })
    }

    pub fn status(&mut self) -> Result<CardStatus, ClientError> {
        let v = self.get_data(TAG_CARD_STATUS)?;
        CardStatus::parse(&v).ok_or(ClientError::Malformed {
            command: "GET DATA",
            detail: format!("card status of {} bytes", v.len()),
        })
    }

    pub fn get_challenge(&mut self) -> Result<[u8; 16], ClientError> {
        let v = self.send(
            "GET CHALLENGE",
            Command::new(0x00, INS_GET_CHALLENGE, 0, 0, []).with_le(16),
        )?;
        v.as_slice().try_into().map_err(|_| ClientError::Malformed {
            command: "GET CHALLENGE",
            detail: format!("challenge of {} bytes", v.len()),
        })
    }

    pub fn verify_pin(&mut self, pin: &str) -> Result<(), ClientError> {
        self.send(
            "VERIFY",
            Command::new(0x00, INS_VERIFY, 0x00, 0x80, pin.as_bytes()),
        )
        .map(drop)
    }

    /// Writes the issuer's personalisation record (STORE DATA blocks, the last one flagged).
    pub fn personalise(&mut self, p: &Personalisation) -> Result<(), ClientError> {
        let blocks = p.blocks();
        let n = blocks.len();
        for (i, block) in blocks.into_iter().enumerate() {
            let p1 = if i + 1 == n { 0x80 } else { 0x00 };
            self.send(
                "STORE DATA",
                Command::new(0x80, INS_STORE_DATA, p1, i as u8, block),
            )?;
        }
        Ok(())
    }

    /// Gives the card a newer revocation list (STORE DATA, DGI 0201).
    pub fn load_crl(&mut self, crl: &Crl) -> Result<(), ClientError> {
        self.send(
            "STORE DATA",
            Command::new(0x80, INS_STORE_DATA, 0x80, 0x00, dgi(DGI_CRL, crl.der())),
        )
        .map(drop)
    }

    /// GENERATE KEY PAIR: returns the new public key (SEC1).
    pub fn generate_key_pair(&mut self) -> Result<Vec<u8>, ClientError> {
        let v = self.send(
            "GENERATE KEY PAIR",
            Command::new(0x00, INS_GENERATE_KEY_PAIR, 0x00, 0x00, []).with_le(256),
        )?;
        let outer = tlv::parse_single(&v).map_err(|e| ClientError::Malformed {
            command: "GENERATE KEY PAIR",
            detail: e.to_string(),
        })?;
        let inner = tlv::parse_single(&outer.value).map_err(|e| ClientError::Malformed {
            command: "GENERATE KEY PAIR",
            detail: e.to_string(),
        })?;
        Ok(inner.value)
    }

    /// REGISTER: the card's signed registration information for this user and issuer challenge.
    pub fn register(
        &mut self,
        user: &UserInfo,
        issuer_challenge: &[u8; 16],
    ) -> Result<SignedObject, ClientError> {
        let mut data = tlv::encode(TAG_USER_INFO, &user.to_der());
        data.extend(tlv::encode(TAG_ISSUER_CHALLENGE, issuer_challenge));
        let v = self.send(
            "REGISTER",
            Command::new(0x80, INS_REGISTER, 0, 0, data).with_le(256),
        )?;
        SignedObject::from_der(&v).map_err(|e| ClientError::Malformed {
            command: "REGISTER",
            detail: e.to_string(),
        })
    }

    /// REGISTER COMPLETE: hands the card its RC and the issuer's IRC.
    pub fn register_complete(
        &mut self,
        rc: &Certificate,
        irc: &Certificate,
    ) -> Result<(), ClientError> {
        let mut data = tlv::encode(TAG_RC_DER, rc.der());
        data.extend(tlv::encode(TAG_IRC_DER, irc.der()));
        self.send(
            "REGISTER COMPLETE",
            Command::new(0x80, INS_REGISTER_COMPLETE, 0, 0, data),
        )
        .map(drop)
    }

    /// INSTALL [for load] with the SA (and the certified-data object, if any).
    pub fn install_for_load(
        &mut self,
        sa: &SignedObject,
        certified: Option<&SignedObject>,
    ) -> Result<(), ClientError> {
        let mut data = tlv::encode(TAG_AUTHORIZATION, &sa.to_der());
        if let Some(c) = certified {
            data.extend(tlv::encode(TAG_CERTIFIED_DATA, &c.to_der()));
        }
        self.send("INSTALL", Command::new(0x80, INS_INSTALL, 0x02, 0x00, data))
            .map(drop)
    }

    /// LOAD blocks of `data`; returns the card's signed receipt from the last block.
    pub fn load(&mut self, data: &[u8]) -> Result<SignedObject, ClientError> {
        let blocks: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(LOAD_BLOCK).collect()
        };
        let n = blocks.len();
        let mut last = Vec::new();
        for (i, block) in blocks.into_iter().enumerate() {
            let is_last = i + 1 == n;
            let mut cmd = Command::new(
                0x80,
                INS_LOAD,
                if is_last { 0x80 } else { 0x00 },
                i as u8,
                block,
            );
            if is_last {
                cmd = cmd.with_le(256);
            }
            last = self.send("LOAD", cmd)?;
        }
        SignedObject::from_der(&last).map_err(|e| ClientError::Malformed {
            command: "LOAD",
            detail: e.to_string(),
        })
    }

    /// INSTALL + LOAD: stores `data` under `sa`; returns the card's receipt.
    pub fn store(
        &mut self,
        sa: &SignedObject,
        certified: Option<&SignedObject>,
        data: &[u8],
    ) -> Result<SignedObject, ClientError> {
        self.install_for_load(sa, certified)?;
        self.load(data)
    }

    /// DELETE under `sa`; returns the card's receipt.
    pub fn delete(&mut self, sa: &SignedObject) -> Result<SignedObject, ClientError> {
        let v = self.send(
            "DELETE",
            Command::new(
                0x80,
                INS_DELETE,
                0,
                0,
                tlv::encode(TAG_AUTHORIZATION, &sa.to_der()),
            )
            .with_le(256),
        )?;
        SignedObject::from_der(&v).map_err(|e| ClientError::Malformed {
            command: "DELETE",
            detail: e.to_string(),
        })
    }

    /// GET STATUS with a nonce: the card's signed listing.
    pub fn listing(&mut self, nonce: &[u8]) -> Result<SignedObject, ClientError> {
        let v = self.send(
            "GET STATUS",
            Command::new(
                0x80,
                INS_GET_STATUS,
                0x40,
                0x00,
                tlv::encode(TAG_NONCE, nonce),
            )
            .with_le(256),
        )?;
        SignedObject::from_der(&v).map_err(|e| ClientError::Malformed {
            command: "GET STATUS",
            detail: e.to_string(),
        })
    }

    /// SIGN DOWNLOAD APPLICATION (APP-3): the card's signed `DownloadApplication` for the
    /// provider's `request` (the holder's PIN verified first). The card writes nothing, and
    /// signs the same request at the same receipt counter to the same bytes.
    pub fn sign_download_application(
        &mut self,
        request: &DownloadRequest,
    ) -> Result<SignedObject, ClientError> {
        const COMMAND: &str = "SIGN DOWNLOAD APPLICATION";
        let v = self.send(
            COMMAND,
            Command::new(
                0x80,
                INS_SIGN_DOWNLOAD_APPLICATION,
                0,
                0,
                tlv::encode(TAG_DOWNLOAD_REQUEST, &request.to_der()),
            )
            .with_le(256),
        )?;
        SignedObject::from_der(&v).map_err(|e| ClientError::Malformed {
            command: COMMAND,
            detail: e.to_string(),
        })
    }

    /// GET RECEIPT (REC-2): the card's receipt for the operation authorized by the SA whose
    /// DER hashes to `authorization_digest`, signed again (byte-identical to the answer the
    /// operation gave). Refused with 6A88 when the card keeps no such receipt (the operation
    /// did not take effect, or is older than the card's last 8).
    pub fn get_receipt(
        &mut self,
        authorization_digest: &Digest,
    ) -> Result<SignedObject, ClientError> {
        const COMMAND: &str = "GET RECEIPT";
        let v = self.send(
            COMMAND,
            Command::new(
                0x80,
                INS_GET_RECEIPT,
                0,
                0,
                tlv::encode(TAG_AUTHORIZATION_DIGEST, &authorization_digest.0),
            )
            .with_le(256),
        )?;
        SignedObject::from_der(&v).map_err(|e| ClientError::Malformed {
            command: COMMAND,
            detail: e.to_string(),
        })
    }

    /// SET STATUS with an issuer command (lock, unlock, terminate).
    pub fn set_status(
        &mut self,
        kind: IssuerCommandKind,
        command: &SignedObject,
    ) -> Result<(), ClientError> {
        let p2 = match kind {
            IssuerCommandKind::Lock => 0x7F,
            IssuerCommandKind::Unlock => 0x0F,
            IssuerCommandKind::Terminate => 0xFF,
        };
        self.send(
            "SET STATUS",
            Command::new(
                0x80,
                INS_SET_STATUS,
                0x80,
                p2,
                tlv::encode(TAG_ISSUER_COMMAND, &command.to_der()),
            ),
        )
        .map(drop)
    }

    /// RESET RETRY COUNTER with an issuer command (unblock PIN).
    pub fn reset_retry_counter(&mut self, command: &SignedObject) -> Result<(), ClientError> {
        self.send(
            "RESET RETRY COUNTER",
            Command::new(
                0x00,
                INS_RESET_RETRY_COUNTER,
                0x03,
                0x80,
                tlv::encode(TAG_ISSUER_COMMAND, &command.to_der()),
            ),
        )
        .map(drop)
    }

    /// The tamper signal: the card erases its keys and terminates.
    pub fn tamper(&mut self) -> Result<(), ClientError> {
        self.send("TAMPER", Command::new(0x80, INS_TAMPER, 0, 0, []))
            .map(drop)
    }
}

/// A short human meaning of the status words the card uses (`docs/card-os.md`).
pub fn meaning(status: Status) -> &'static str {
    match status.0 {
        0x9000 => "success",
        0x6581 => "memory failure: the command did not take effect",
        0x6700 => "wrong length",
        0x6881 => "logical channels not supported",
        0x6882 => "secure messaging not supported",
        0x6883 => "last command of the chain expected",
        0x6982 => "security status not satisfied (PIN not verified or certified data missing)",
        0x6983 => "PIN blocked",
        0x6984 => "authorization refused (signature, signer, card, challenge or expiry)",
        0x6985 => "conditions of use not satisfied (life cycle or sequence)",
        0x6A80 => "incorrect data",
        0x6A81 => "card terminated",
        0x6A82 => "application not found",
        0x6A84 => "not enough memory on the card",
        0x6A86 => "incorrect P1/P2",
        0x6A88 => "referenced data not found",
        0x6D00 => "instruction not supported",
        0x6E00 => "class not supported",
        s if s & 0xFFF0 == 0x63C0 => "wrong PIN",
        s if s & 0xFF00 == 0x6100 => "more response data: send GET RESPONSE",
        s if s & 0xFF00 == 0x6C00 => "wrong Le: resend with the Le in SW2",
        _ => "unknown status",
    }
}
