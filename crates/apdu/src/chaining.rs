//! Moving more data than one short APDU holds: command chaining (ISO 7816-4 §5.4.1) and
//! GET RESPONSE after `61xx` (ISO 7816-4 §7.6.1), on both sides of the wire.
//!
//! The card side is [`CommandAssembler`] (collects a chain into one command) and
//! [`ResponseQueue`] (hands out a long response in pieces). The host side is
//! [`split_for_chaining`] and [`transceive`], which sends a command whichever way it needs and
//! returns the whole response. All of it is sans-IO: the host's transport is a closure.

use crate::{
    ApduError, Command, Framing, Response, Status, CLA_CHAINING, MAX_EXTENDED_LE, MAX_SHORT_DATA,
    MAX_SHORT_LE,
};

/// GET RESPONSE (ISO 7816-4 §7.6.1).
pub const INS_GET_RESPONSE: u8 = 0xC0;
/// The most response data [`transceive`] collects before giving up on a card that keeps
/// answering `61xx`.
pub const MAX_RESPONSE_LEN: usize = 1 << 20;
/// The most GET RESPONSE commands [`transceive`] sends for one command: enough for
/// [`MAX_RESPONSE_LEN`] in 256-byte pieces, and a bound for a card answering `61xx` with no data.
pub const MAX_GET_RESPONSE_ROUNDS: usize = MAX_RESPONSE_LEN / MAX_SHORT_LE;

/// Card side: joins a command chain (ISO 7816-4 §5.4.1) into one command.
///
/// Feed every parsed command through [`CommandAssembler::feed`]. A command with the chaining
/// bit is buffered and the card answers it `9000`; the next one must repeat CLA (but for the
/// chaining bit), INS, P1 and P2. The last one, without the chaining bit, comes back with all
/// the data joined, the chaining bit clear and its own Le.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAssembler {
    max_len: usize,
    pending: Option<Command>,
}

impl CommandAssembler {
    /// An assembler that refuses chains of more than `max_len` data bytes in total.
    pub fn new(max_len: usize) -> CommandAssembler {
        CommandAssembler {
            max_len,
            pending: None,
        }
    }

    /// Takes the next command.
    ///
    /// `Ok(None)`: part of a chain, buffered; answer `9000`. `Ok(Some(command))`: a whole
    /// command to process. On error the buffered chain is dropped and the card answers
    /// [`ApduError::status`]: `6883` for [`ApduError::ChainBroken`] (the command that broke
    /// the chain is not processed either), `6700` for [`ApduError::ChainTooLong`].
    pub fn feed(&mut self, cmd: Command) -> Result<Option<Command>, ApduError> {
        let Some(mut joined) = self.pending.take() else {
            if !cmd.is_chained() {
                return Ok(Some(cmd));
            }
            self.check_len(cmd.data.len())?;
            self.pending = Some(Command {
                cla: cmd.cla & !CLA_CHAINING,
                ..cmd
            });
            return Ok(None);
        };

        let expected = joined.header();
        let got = [cmd.cla & !CLA_CHAINING, cmd.ins, cmd.p1, cmd.p2];
        if expected != got {
            return Err(ApduError::ChainBroken { expected, got });
        }
        self.check_len(joined.data.len().saturating_add(cmd.data.len()))?;
        joined.data.extend_from_slice(&cmd.data);
        if cmd.is_chained() {
            self.pending = Some(joined);
            Ok(None)
        } else {
            joined.le = cmd.le;
            Ok(Some(joined))
        }
    }

    /// Drops a half-received chain (on reset, SELECT, or any error).
    pub fn reset(&mut self) {
        self.pending = None;
    }

    /// True while a chain has begun and its last command has not arrived.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn check_len(&self, got: usize) -> Result<(), ApduError> {
        if got > self.max_len {
            return Err(ApduError::ChainTooLong {
                max: self.max_len,
                got,
            });
        }
        Ok(())
    }
}

/// Card side: the rest of a response too long for the command's Le, served by GET RESPONSE
/// (ISO 7816-4 §7.6.1).
///
/// Only GET RESPONSE may read the queue. The caller must [`ResponseQueue::clear`] it when any
/// other command arrives, as ISO 7816-4 drops the remaining bytes then;
/// [`ResponseQueue::respond`] does this by itself, so routing every non-GET RESPONSE answer
/// through it suffices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseQueue {
    data: Vec<u8>,
    sent: usize,
    final_status: Option<Status>,
}

impl ResponseQueue {
    /// An empty queue.
    pub fn new() -> ResponseQueue {
        ResponseQueue::default()
    }

    /// Answers a command with `resp`: whole if its data fits in Ne, otherwise the first Ne
    /// bytes with `61xx`, keeping the rest and the final status for GET RESPONSE.
    ///
    /// Ne is `le`, or when absent 256 for a short command and 65 536 for an extended one
    /// (`framing` as [`Command::parse_with_framing`] reports it); a short command gets at most
    /// 256 bytes at once. Anything queued before is dropped.
    pub fn respond(&mut self, resp: Response, le: Option<usize>, framing: Framing) -> Response {
        self.clear();
        let max = match framing {
            Framing::Short => MAX_SHORT_LE,
            Framing::Extended => MAX_EXTENDED_LE,
        };
        let ne = le.filter(|&n| n > 0).unwrap_or(max).min(max);
        if resp.data.len() <= ne {
            return resp;
        }
        self.data = resp.data;
        self.final_status = Some(resp.status);
        self.next_chunk(ne)
    }

    /// Serves GET RESPONSE with Le `le` (absent means 256): the next piece, with `61xx` while
    /// more remains and the final status with the last piece. With nothing queued, `6985`.
    pub fn get_response(&mut self, le: Option<usize>) -> Response {
        if self.final_status.is_none() {
            return Response::status(Status::CONDITIONS_OF_USE_NOT_SATISFIED);
        }
        let ne = le
            .filter(|&n| n > 0)
            .unwrap_or(MAX_SHORT_LE)
            .min(MAX_EXTENDED_LE);
        self.next_chunk(ne)
    }

    /// Drops whatever is queued.
    pub fn clear(&mut self) {
        self.data = Vec::new();
        self.sent = 0;
        self.final_status = None;
    }

    /// True while GET RESPONSE has something to serve.
    pub fn is_pending(&self) -> bool {
        self.final_status.is_some()
    }

    fn next_chunk(&mut self, ne: usize) -> Response {
        let end = self.sent.saturating_add(ne).min(self.data.len());
        let chunk = self.data[self.sent..end].to_vec();
        self.sent = end;
        let remaining = self.data.len() - end;
        if remaining > 0 {
            return Response::new(chunk, Status::bytes_remaining(remaining));
        }
        let status = self.final_status.unwrap_or(Status::SUCCESS);
        self.clear();
        Response::new(chunk, status)
    }
}

/// Host side: `cmd` as a chain of short commands with at most `max_chunk` data bytes each
/// (clamped to 1..=255). All but the last carry the chaining bit and no Le; the last carries
/// `cmd`'s Le, limited to 256 (the rest comes by GET RESPONSE). A command with no more data
/// than one chunk comes back as one command.
pub fn split_for_chaining(cmd: &Command, max_chunk: usize) -> Vec<Command> {
    let chunk = max_chunk.clamp(1, MAX_SHORT_DATA);
    let cla = cmd.cla & !CLA_CHAINING;
    let le = cmd.le.map(|n| n.min(MAX_SHORT_LE));
    let last = |data: &[u8]| Command {
        cla,
        ins: cmd.ins,
        p1: cmd.p1,
        p2: cmd.p2,
        data: data.to_vec(),
        le,
    };
    if cmd.data.is_empty() {
        return vec![last(&[])];
    }
    let count = cmd.data.len().div_ceil(chunk);
    cmd.data
        .chunks(chunk)
        .enumerate()
        .map(|(i, data)| {
            if i + 1 == count {
                last(data)
            } else {
                Command::new(cla | CLA_CHAINING, cmd.ins, cmd.p1, cmd.p2, data)
            }
        })
        .collect()
}

/// The host's transport as [`transceive`] sees it: command bytes in, response bytes out.
pub type Exchange<'a, E> = dyn FnMut(&[u8]) -> Result<Vec<u8>, E> + 'a;

/// Why [`transceive`] returned no response.
#[derive(Debug, thiserror::Error)]
pub enum TransceiveError<E> {
    /// The exchange function failed.
    #[error("transport failed: {0}")]
    Transport(E),
    /// The command cannot be put on the wire in the requested framing.
    #[error("command cannot be sent: {0}")]
    InvalidCommand(ApduError),
    /// The card answered with fewer than two bytes.
    #[error("card sent a malformed response: {0}")]
    InvalidResponse(ApduError),
    /// The card kept answering `61xx` past [`MAX_RESPONSE_LEN`].
    #[error("response exceeds {limit} bytes")]
    ResponseTooLong { limit: usize },
    /// The card kept answering `61xx` past [`MAX_GET_RESPONSE_ROUNDS`] GET RESPONSE commands.
    #[error("card asked for more than {limit} GET RESPONSE commands")]
    TooManyGetResponses { limit: usize },
}

/// Host side: sends `cmd` and returns the card's whole response.
///
/// With [`Framing::Short`], data over 255 bytes goes as a command chain (ISO 7816-4 §5.4.1)
/// and Le is limited to 256; with [`Framing::Extended`] the command goes as one APDU, extended
/// when it needs to be. Then `61xx` is followed by GET RESPONSE (`00 C0 00 00 xx`) until the
/// final status and the data pieces are joined; `6Cxx` is answered once by resending the
/// command with Le = xx (ISO 7816-4 §5.6). If the card refuses a command in the middle of a
/// chain, that refusal is the response. A status that is not success is a response too, not an
/// error: errors are for a failed transport, a malformed answer, or a card that never stops.
pub fn transceive<E>(
    cmd: &Command,
    framing: Framing,
    exchange: &mut Exchange<'_, E>,
) -> Result<Response, TransceiveError<E>> {
    if let Some(le) = cmd.le.filter(|&n| n == 0 || n > MAX_EXTENDED_LE) {
        return Err(TransceiveError::InvalidCommand(ApduError::InvalidLe { le }));
    }
    let mut pieces = match framing {
        Framing::Short => split_for_chaining(cmd, MAX_SHORT_DATA),
        Framing::Extended => {
            cmd.check().map_err(TransceiveError::InvalidCommand)?;
            vec![cmd.clone()]
        }
    };

    let mut data = Vec::new();
    let mut rounds = 0;
    let mut resent = false;
    loop {
        let resp = match send_chain(&pieces, exchange)? {
            Chain::Refused(resp) => return Ok(resp),
            Chain::Answered(resp) => resp,
        };
        if let Some(le) = resp.status.correct_le().filter(|_| !resent) {
            if let Some(last) = pieces.last_mut() {
                last.le = Some(le);
            }
            resent = true;
            continue;
        }
        resent = false;

        if data.len().saturating_add(resp.data.len()) > MAX_RESPONSE_LEN {
            return Err(TransceiveError::ResponseTooLong {
                limit: MAX_RESPONSE_LEN,
            });
        }
        data.extend_from_slice(&resp.data);
        let Some(remaining) = resp.status.remaining() else {
            return Ok(Response::new(data, resp.status));
        };
        rounds += 1;
        if rounds > MAX_GET_RESPONSE_ROUNDS {
            return Err(TransceiveError::TooManyGetResponses {
                limit: MAX_GET_RESPONSE_ROUNDS,
            });
        }
        pieces = vec![Command::new(0x00, INS_GET_RESPONSE, 0x00, 0x00, []).with_le(remaining)];
    }
}

/// How a chain of commands ended.
enum Chain {
    /// The card accepted every piece; this is its answer to the last.
    Answered(Response),
    /// The card answered a piece before the last with something other than `9000`.
    Refused(Response),
}

fn send_chain<E>(
    pieces: &[Command],
    exchange: &mut Exchange<'_, E>,
) -> Result<Chain, TransceiveError<E>> {
    let mut answer = Response::status(Status::SUCCESS);
    for (i, piece) in pieces.iter().enumerate() {
        let raw = exchange(&piece.to_bytes()).map_err(TransceiveError::Transport)?;
        answer = Response::parse(&raw).map_err(TransceiveError::InvalidResponse)?;
        if i + 1 < pieces.len() && answer.status != Status::SUCCESS {
            return Ok(Chain::Refused(answer));
        }
    }
    Ok(Chain::Answered(answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A minimal card: assembles chains, echoes the command data `repeat` times, serves GET
    /// RESPONSE. Records every command it saw.
    struct EchoCard {
        assembler: CommandAssembler,
        queue: ResponseQueue,
        repeat: usize,
        seen: Vec<Vec<u8>>,
    }

    impl EchoCard {
        fn new(repeat: usize) -> EchoCard {
            EchoCard {
                assembler: CommandAssembler::new(4096),
                queue: ResponseQueue::new(),
                repeat,
                seen: Vec::new(),
            }
        }

        fn exchange(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Infallible> {
            self.seen.push(bytes.to_vec());
            let resp = match Command::parse_with_framing(bytes) {
                Err(e) => Response::status(e.status()),
                Ok((cmd, framing)) => match self.assembler.feed(cmd) {
                    Err(e) => Response::status(e.status()),
                    Ok(None) => Response::status(Status::SUCCESS),
                    Ok(Some(cmd)) if cmd.ins == INS_GET_RESPONSE => self.queue.get_response(cmd.le),
                    Ok(Some(cmd)) => {
                        let data = cmd.data.repeat(self.repeat);
                        self.queue
                            .respond(Response::new(data, Status::SUCCESS), cmd.le, framing)
                    }
                },
            };
            Ok(resp.to_bytes())
        }
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn assembler_joins_chain() {
        let mut a = CommandAssembler::new(10);
        assert_eq!(a.feed(Command::new(0x10, 0xDB, 1, 2, [1, 2])), Ok(None));
        assert!(a.is_pending());
        assert_eq!(a.feed(Command::new(0x10, 0xDB, 1, 2, [3])), Ok(None));
        let whole = a.feed(Command::new(0x00, 0xDB, 1, 2, [4]).with_le(5));
        assert_eq!(
            whole,
            Ok(Some(
                Command::new(0x00, 0xDB, 1, 2, [1, 2, 3, 4]).with_le(5)
            ))
        );
        assert!(!a.is_pending());
    }

    #[test]
    fn assembler_passes_unchained_commands() {
        let mut a = CommandAssembler::new(0);
        let cmd = Command::new(0x00, 0xA4, 4, 0, [0xA0, 0]);
        assert_eq!(a.feed(cmd.clone()), Ok(Some(cmd)));
    }

    #[test]
    fn assembler_refuses_broken_chain() {
        let mut a = CommandAssembler::new(10);
        assert_eq!(a.feed(Command::new(0x10, 0xDB, 1, 2, [1])), Ok(None));
        let err = a.feed(Command::new(0x00, 0xDB, 1, 3, [2])).unwrap_err();
        assert_eq!(
            err,
            ApduError::ChainBroken {
                expected: [0x00, 0xDB, 1, 2],
                got: [0x00, 0xDB, 1, 3]
            }
        );
        assert_eq!(err.status(), Status::LAST_COMMAND_EXPECTED);
        assert!(!a.is_pending());
        // A CLA that differs beyond the chaining bit breaks the chain too.
        assert_eq!(a.feed(Command::new(0x10, 0xDB, 1, 2, [1])), Ok(None));
        assert!(matches!(
            a.feed(Command::new(0x84, 0xDB, 1, 2, [2])),
            Err(ApduError::ChainBroken { .. })
        ));
    }

    #[test]
    fn assembler_refuses_long_chain() {
        let mut a = CommandAssembler::new(3);
        assert_eq!(
            a.feed(Command::new(0x10, 0xDB, 0, 0, [0; 4])),
            Err(ApduError::ChainTooLong { max: 3, got: 4 })
        );
        assert_eq!(a.feed(Command::new(0x10, 0xDB, 0, 0, [0; 2])), Ok(None));
        assert_eq!(
            a.feed(Command::new(0x00, 0xDB, 0, 0, [0; 2])),
            Err(ApduError::ChainTooLong { max: 3, got: 4 })
        );
        assert!(!a.is_pending());
    }

    #[test]
    fn assembler_reset() {
        let mut a = CommandAssembler::new(3);
        assert_eq!(a.feed(Command::new(0x10, 0xDB, 0, 0, [1])), Ok(None));
        a.reset();
        assert!(!a.is_pending());
        let cmd = Command::new(0x00, 0xA4, 0, 0, []);
        assert_eq!(a.feed(cmd.clone()), Ok(Some(cmd)));
    }

    #[test]
    fn queue_passes_short_response() {
        let mut q = ResponseQueue::new();
        let resp = Response::new(vec![7; 256], Status::SUCCESS);
        assert_eq!(q.respond(resp.clone(), None, Framing::Short), resp);
        assert!(!q.is_pending());
        let resp = Response::new(vec![7; 1000], Status::SUCCESS);
        assert_eq!(q.respond(resp.clone(), None, Framing::Extended), resp);
    }

    #[test]
    fn queue_serves_get_response() {
        let mut q = ResponseQueue::new();
        let data: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        let first = q.respond(
            Response::new(data.clone(), Status::WARNING_NVM_UNCHANGED),
            Some(256),
            Framing::Short,
        );
        assert_eq!(first.data, data[..256]);
        assert_eq!(first.status, Status(0x6100)); // 344 left: 256 or more
        assert!(q.is_pending());

        let second = q.get_response(Some(256));
        assert_eq!(second.data, data[256..512]);
        assert_eq!(second.status, Status(0x6158)); // 88 left

        let last = q.get_response(Some(0x58));
        assert_eq!(last.data, data[512..]);
        assert_eq!(last.status, Status::WARNING_NVM_UNCHANGED);
        assert!(!q.is_pending());

        assert_eq!(
            q.get_response(None),
            Response::status(Status::CONDITIONS_OF_USE_NOT_SATISFIED)
        );
    }

    #[test]
    fn queue_honours_small_le_and_clear() {
        let mut q = ResponseQueue::new();
        let first = q.respond(
            Response::new([1, 2, 3, 4], Status::SUCCESS),
            Some(1),
            Framing::Short,
        );
        assert_eq!(first, Response::new([1], Status(0x6103)));
        q.clear();
        assert!(!q.is_pending());
        assert_eq!(q.get_response(None).status, Status(0x6985));
    }

    #[test]
    fn split_short_commands() {
        let cmd = Command::new(0x00, 0xDA, 1, 2, vec![9; 600]).with_le(1000);
        let pieces = split_for_chaining(&cmd, 255);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0], Command::new(0x10, 0xDA, 1, 2, vec![9; 255]));
        assert_eq!(pieces[1], Command::new(0x10, 0xDA, 1, 2, vec![9; 255]));
        assert_eq!(
            pieces[2],
            Command::new(0x00, 0xDA, 1, 2, vec![9; 90]).with_le(256)
        );
        assert!(pieces.iter().all(|p| p.framing() == Framing::Short));

        let single = Command::new(0x00, 0xCA, 0, 0x66, []).with_le(5);
        assert_eq!(split_for_chaining(&single, 0), vec![single.clone()]);
        assert_eq!(
            split_for_chaining(&Command::new(0, 1, 2, 3, [1, 2, 3]), 0).len(),
            3
        );
    }

    #[test]
    fn transceive_chains_and_collects() {
        let mut card = EchoCard::new(2);
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let cmd = Command::new(0x80, 0xE2, 0, 0, data.clone()).with_le(256);
        let resp = transceive(&cmd, Framing::Short, &mut |b| card.exchange(b)).unwrap();
        assert_eq!(resp, Response::new(data.repeat(2), Status::SUCCESS));
        // Two chained pieces, then GET RESPONSE for 344 more: 256, then 88.
        assert_eq!(card.seen.len(), 4);
        assert_eq!(card.seen[0][..5], h("90 E2 00 00 FF"));
        assert_eq!(card.seen[1][..5], h("80 E2 00 00 2D"));
        assert_eq!(card.seen[2], h("00 C0 00 00 00"));
        assert_eq!(card.seen[3], h("00 C0 00 00 58"));
    }

    #[test]
    fn transceive_extended_sends_one_apdu() {
        let mut card = EchoCard::new(1);
        let cmd = Command::new(0x00, 0xDA, 0, 0, vec![5; 1000]).with_le(65_536);
        let resp = transceive(&cmd, Framing::Extended, &mut |b| card.exchange(b)).unwrap();
        assert_eq!(resp, Response::new(vec![5; 1000], Status::SUCCESS));
        assert_eq!(card.seen.len(), 1);
        assert_eq!(card.seen[0][..7], h("00 DA 00 00 00 03E8"));
    }

    #[test]
    fn transceive_resends_after_6cxx() {
        // T=0 style: a case 2 command with the wrong Le is answered 6Cxx.
        let mut seen = Vec::new();
        let mut exchange = |b: &[u8]| -> Result<Vec<u8>, Infallible> {
            seen.push(b.to_vec());
            Ok(match b {
                [0x00, 0xCA, 0x00, 0x66, 0x08] => h("0102030405060708 9000"),
                _ => h("6C08"),
            })
        };
        let cmd = Command::new(0x00, 0xCA, 0x00, 0x66, []).with_le(256);
        let resp = transceive(&cmd, Framing::Short, &mut exchange).unwrap();
        assert_eq!(resp, Response::new(h("0102030405060708"), Status::SUCCESS));
        assert_eq!(seen, vec![h("00 CA 00 66 00"), h("00 CA 00 66 08")]);
    }

    #[test]
    fn transceive_follows_6cxx_only_once() {
        let mut count = 0;
        let mut exchange = |_: &[u8]| -> Result<Vec<u8>, Infallible> {
            count += 1;
            Ok(h("6C08"))
        };
        let cmd = Command::new(0x00, 0xCA, 0x00, 0x66, []).with_le(256);
        let resp = transceive(&cmd, Framing::Short, &mut exchange).unwrap();
        assert_eq!(resp, Response::status(Status::wrong_le(8)));
        assert_eq!(count, 2);
    }

    #[test]
    fn transceive_stops_on_refused_chain() {
        let mut count = 0;
        let mut exchange = |_: &[u8]| -> Result<Vec<u8>, Infallible> {
            count += 1;
            Ok(Status::CHAINING_NOT_SUPPORTED.to_bytes().to_vec())
        };
        let cmd = Command::new(0x00, 0xDA, 0, 0, vec![0; 600]);
        let resp = transceive(&cmd, Framing::Short, &mut exchange).unwrap();
        assert_eq!(resp, Response::status(Status::CHAINING_NOT_SUPPORTED));
        assert_eq!(count, 1);
    }

    #[test]
    fn transceive_bounds_endless_61xx() {
        let mut exchange = |_: &[u8]| -> Result<Vec<u8>, Infallible> {
            let mut r = vec![0xEE; 256];
            r.extend(h("6100"));
            Ok(r)
        };
        let cmd = Command::new(0x00, 0xB0, 0, 0, []).with_le(256);
        assert!(matches!(
            transceive(&cmd, Framing::Short, &mut exchange),
            Err(TransceiveError::ResponseTooLong {
                limit: MAX_RESPONSE_LEN
            })
        ));

        let mut empty = |_: &[u8]| -> Result<Vec<u8>, Infallible> { Ok(h("6100")) };
        assert!(matches!(
            transceive(&cmd, Framing::Short, &mut empty),
            Err(TransceiveError::TooManyGetResponses {
                limit: MAX_GET_RESPONSE_ROUNDS
            })
        ));
    }

    #[test]
    fn transceive_reports_transport_and_malformed_answers() {
        let cmd = Command::new(0x00, 0xA4, 4, 0, [0xA0]);
        let mut failing = |_: &[u8]| -> Result<Vec<u8>, &'static str> { Err("reader removed") };
        let err = transceive(&cmd, Framing::Short, &mut failing).unwrap_err();
        assert_eq!(err.to_string(), "transport failed: reader removed");

        let mut short = |_: &[u8]| -> Result<Vec<u8>, &'static str> { Ok(vec![0x90]) };
        assert!(matches!(
            transceive(&cmd, Framing::Short, &mut short),
            Err(TransceiveError::InvalidResponse(
                ApduError::ResponseTooShort { len: 1 }
            ))
        ));
    }

    #[test]
    fn transceive_refuses_unencodable_commands() {
        let mut never = |_: &[u8]| -> Result<Vec<u8>, Infallible> { unreachable!() };
        let cmd = Command::new(0x00, 0xB0, 0, 0, []).with_le(0);
        assert!(matches!(
            transceive(&cmd, Framing::Short, &mut never),
            Err(TransceiveError::InvalidCommand(ApduError::InvalidLe {
                le: 0
            }))
        ));
        let cmd = Command::new(0x00, 0xDA, 0, 0, vec![0; 65_536]);
        assert!(matches!(
            transceive(&cmd, Framing::Extended, &mut never),
            Err(TransceiveError::InvalidCommand(
                ApduError::DataTooLong { .. }
            ))
        ));
    }
}
