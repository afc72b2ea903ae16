//! The card's non-volatile memory as a trait: a flat byte array that can be read, written and
//! synced. The card core does no IO (STYLE "Architecture rules" 1), so every persistent byte goes
//! through [`Nvm`]; hosts provide a file NVM, tests a fault-injecting one (`testkit::fault`).
//!
//! [`MemNvm`] is the plain in-memory implementation.

/// Why an NVM access failed. Carries addresses and sizes only, never stored bytes: NVM holds
/// keys and PIN state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NvmError {
    /// The access `[addr, addr + len)` does not fit in an NVM of `size` bytes.
    #[error("NVM access of {len} bytes at {addr:#x} is outside the {size}-byte NVM")]
    OutOfRange {
        addr: usize,
        len: usize,
        size: usize,
    },
    /// Power was lost (or the tear model says so): no further access succeeds until reboot.
    #[error("power lost")]
    PowerLost,
    /// The host's backing store failed (for example a file NVM's fsync).
    #[error("NVM input/output failed: {detail}")]
    Io { detail: String },
}

/// A flat, byte-addressed non-volatile memory.
///
/// Semantics the store relies on:
/// - `write` may be torn by power loss: any prefix of it may land, and the byte where it stopped
///   may be left *weak* (reading differently on successive reads) until written again;
/// - writes issued before a `sync` are persistent before any write issued after it (`sync` is an
///   ordering barrier; a file NVM fsyncs there);
/// - `read` takes `&mut self` because a weak cell may change its answer between reads.
pub trait Nvm {
    /// Size in bytes; fixed for the lifetime of the NVM.
    fn len(&self) -> usize;

    /// Whether the NVM has no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `buf.len()` bytes starting at `addr`.
    fn read(&mut self, addr: usize, buf: &mut [u8]) -> Result<(), NvmError>;

    /// Writes `data` starting at `addr`. Not atomic: see the trait documentation.
    fn write(&mut self, addr: usize, data: &[u8]) -> Result<(), NvmError>;

    /// Ordering barrier: every earlier write is persistent before any later one starts.
    fn sync(&mut self) -> Result<(), NvmError>;
}

impl<T: Nvm + ?Sized> Nvm for &mut T {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn read(&mut self, addr: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        (**self).read(addr, buf)
    }
    fn write(&mut self, addr: usize, data: &[u8]) -> Result<(), NvmError> {
        (**self).write(addr, data)
    }
    fn sync(&mut self) -> Result<(), NvmError> {
        (**self).sync()
    }
}

impl<T: Nvm + ?Sized> Nvm for Box<T> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn read(&mut self, addr: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        (**self).read(addr, buf)
    }
    fn write(&mut self, addr: usize, data: &[u8]) -> Result<(), NvmError> {
        (**self).write(addr, data)
    }
    fn sync(&mut self) -> Result<(), NvmError> {
        (**self).sync()
    }
}

/// Checks that `[addr, addr + len)` lies within `size` bytes; shared by every implementation so
/// they all report the same error.
pub fn check_range(addr: usize, len: usize, size: usize) -> Result<(), NvmError> {
    match addr.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(NvmError::OutOfRange { addr, len, size }),
    }
}

/// An NVM held in memory. Never tears and never loses power; for tests, tools and hosts that
/// persist the bytes themselves.
#[derive(Clone, PartialEq, Eq)]
pub struct MemNvm(Vec<u8>);

impl MemNvm {
    /// An erased NVM of `size` bytes: every byte 0xFF, like erased EEPROM or flash.
    pub fn new(size: usize) -> Self {
        MemNvm(vec![0xFF; size])
    }

    /// An NVM holding exactly `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        MemNvm(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl std::fmt::Debug for MemNvm {
    // The contents may hold keys: show the size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemNvm({} bytes)", self.0.len())
    }
}

impl Nvm for MemNvm {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn read(&mut self, addr: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        check_range(addr, buf.len(), self.0.len())?;
        buf.copy_from_slice(&self.0[addr..addr + buf.len()]);
        Ok(())
    }

    fn write(&mut self, addr: usize, data: &[u8]) -> Result<(), NvmError> {
        check_range(addr, data.len(), self.0.len())?;
        self.0[addr..addr + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), NvmError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_nvm_is_erased() {
        let mut nvm = MemNvm::new(8);
        let mut buf = [0u8; 8];
        nvm.read(0, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 8]);
        assert_eq!(nvm.len(), 8);
        assert!(!nvm.is_empty());
        assert!(MemNvm::new(0).is_empty());
    }

    #[test]
    fn write_then_read_round_trips() {
        let mut nvm = MemNvm::new(16);
        nvm.write(3, b"abc").unwrap();
        nvm.sync().unwrap();
        let mut buf = [0u8; 5];
        nvm.read(2, &mut buf).unwrap();
        assert_eq!(&buf, b"\xFFabc\xFF");
        assert_eq!(&nvm.clone().into_bytes()[3..6], b"abc");
        assert_eq!(MemNvm::from_bytes(b"xy".to_vec()).as_bytes(), b"xy");
    }

    #[test]
    fn out_of_range_is_an_error_with_the_values() {
        let mut nvm = MemNvm::new(4);
        assert_eq!(
            nvm.write(3, b"ab"),
            Err(NvmError::OutOfRange {
                addr: 3,
                len: 2,
                size: 4
            })
        );
        let mut buf = [0u8; 1];
        assert_eq!(
            nvm.read(usize::MAX, &mut buf),
            Err(NvmError::OutOfRange {
                addr: usize::MAX,
                len: 1,
                size: 4
            })
        );
        // A zero-length access at the very end is in range.
        assert_eq!(nvm.write(4, b""), Ok(()));
    }

    #[test]
    fn works_through_references_and_boxes() {
        fn write_z(mut nvm: impl Nvm) -> usize {
            nvm.write(0, b"z").unwrap();
            nvm.len()
        }
        let mut nvm = MemNvm::new(4);
        assert_eq!(write_z(&mut nvm), 4);
        let mut boxed: Box<dyn Nvm> = Box::new(nvm);
        let mut buf = [0u8; 1];
        boxed.read(0, &mut buf).unwrap();
        assert_eq!(&buf, b"z");
    }
}
