//! A fault-injecting NVM for tear tests (design `transfer-protocol.md` §5.2 T2): it records
//! every write, and can lose power after a chosen write or tear a write at a chosen byte,
//! leaving that byte *weak* — reading alternately old and new until it is written again.
//!
//! Model (what a real EEPROM/flash cell may do, made adversarial and deterministic):
//! - writes land in program order; `sync` is a barrier that this model never needs to enforce
//!   (nothing is reordered) but that fails once power is lost;
//! - a torn write lands a prefix `[0, bytes_written)`, the byte at `bytes_written` becomes weak,
//!   the rest keeps its old contents;
//! - a weak byte answers each read that touches it with old or new alternately, starting as
//!   [`WeakByte`] says, until a write covers it;
//! - after the fault every read, write and sync fails with [`NvmError::PowerLost`] until
//!   [`FaultNvm::reboot`].
//!
//! Cheap to copy: contents live in reference-counted pages copied on write, so cloning a
//! device of a few hundred KiB costs a few microseconds, which the exhaustive harness
//! (`crate::tear`) does several times per case.

use std::cell::RefCell;
use std::rc::Rc;

use card::nvm::{check_range, Nvm, NvmError};

/// Page size of the copy-on-write contents.
const PAGE: usize = 256;

/// How a weak byte answers its first read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeakByte {
    ReadsOldFirst,
    ReadsNewFirst,
}

impl WeakByte {
    pub const BOTH: [WeakByte; 2] = [WeakByte::ReadsOldFirst, WeakByte::ReadsNewFirst];
}

/// The fault to inject, counted in writes since power-on (creation or the last reboot), from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FaultPlan {
    /// Never fail.
    #[default]
    None,
    /// Write number `index` completes (and returns `Ok`); power is lost right after it.
    CrashAfterWrite { index: usize },
    /// Write number `index` is torn: bytes `[0, bytes_written)` land, the byte at
    /// `bytes_written` (if inside the write) becomes weak, the rest stay old; the write returns
    /// `PowerLost`, and so does everything after it.
    TearInWrite {
        index: usize,
        bytes_written: usize,
        weak: WeakByte,
    },
}

/// One write as it reached the device (torn or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NvmWrite {
    pub addr: usize,
    pub len: usize,
}

/// A byte left half-programmed by a torn write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeakCell {
    pub addr: usize,
    pub old: u8,
    pub new: u8,
    /// What the next read returns.
    pub next_read: WeakByte,
}

impl WeakCell {
    fn peek(&self) -> u8 {
        match self.next_read {
            WeakByte::ReadsOldFirst => self.old,
            WeakByte::ReadsNewFirst => self.new,
        }
    }

    fn read(&mut self) -> u8 {
        let value = self.peek();
        self.next_read = match self.next_read {
            WeakByte::ReadsOldFirst => WeakByte::ReadsNewFirst,
            WeakByte::ReadsNewFirst => WeakByte::ReadsOldFirst,
        };
        value
    }
}

/// Everything that survives a power cycle, plus the plan and the trace since power-on.
#[derive(Clone)]
struct Device {
    pages: Vec<Rc<[u8; PAGE]>>,
    len: usize,
    /// Few at a time (one per fault), so a list beats a map.
    weak: Vec<WeakCell>,
    plan: FaultPlan,
    power_lost: bool,
    trace: Vec<NvmWrite>,
    syncs: usize,
}

impl Device {
    fn new(bytes: &[u8]) -> Self {
        let pages = bytes
            .chunks(PAGE)
            .map(|chunk| {
                let mut page = [0xFF; PAGE];
                page[..chunk.len()].copy_from_slice(chunk);
                Rc::new(page)
            })
            .collect();
        Device {
            pages,
            len: bytes.len(),
            weak: Vec::new(),
            plan: FaultPlan::None,
            power_lost: false,
            trace: Vec::new(),
            syncs: 0,
        }
    }

    /// The stored (solid) bytes, ignoring weak cells.
    fn copy_out(&self, addr: usize, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let at = addr + done;
            let (page, offset) = (at / PAGE, at % PAGE);
            let n = (PAGE - offset).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&self.pages[page][offset..offset + n]);
            done += n;
        }
    }

    fn copy_in(&mut self, addr: usize, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let at = addr + done;
            let (page, offset) = (at / PAGE, at % PAGE);
            let n = (PAGE - offset).min(data.len() - done);
            Rc::make_mut(&mut self.pages[page])[offset..offset + n]
                .copy_from_slice(&data[done..done + n]);
            done += n;
        }
        // Written bytes are solid again.
        let end = addr + data.len();
        self.weak.retain(|c| c.addr < addr || c.addr >= end);
    }

    /// What the next read of `addr` returns, without disturbing a weak cell.
    fn peek(&self, addr: usize) -> u8 {
        if let Some(cell) = self.weak.iter().find(|c| c.addr == addr) {
            return cell.peek();
        }
        let mut b = [0u8];
        self.copy_out(addr, &mut b);
        b[0]
    }

    fn read(&mut self, addr: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        if self.power_lost {
            return Err(NvmError::PowerLost);
        }
        check_range(addr, buf.len(), self.len)?;
        self.copy_out(addr, buf);
        let end = addr + buf.len();
        for cell in self.weak.iter_mut() {
            if (addr..end).contains(&cell.addr) {
                buf[cell.addr - addr] = cell.read();
            }
        }
        Ok(())
    }

    fn write(&mut self, addr: usize, data: &[u8]) -> Result<(), NvmError> {
        if self.power_lost {
            return Err(NvmError::PowerLost);
        }
        check_range(addr, data.len(), self.len)?;
        let index = self.trace.len();
        self.trace.push(NvmWrite {
            addr,
            len: data.len(),
        });
        match self.plan {
            FaultPlan::CrashAfterWrite { index: i } if i == index => {
                self.copy_in(addr, data);
                self.power_lost = true;
                Ok(())
            }
            FaultPlan::TearInWrite {
                index: i,
                bytes_written,
                weak,
            } if i == index => {
                let landed = bytes_written.min(data.len());
                let old = (landed < data.len()).then(|| self.peek(addr + landed));
                self.copy_in(addr, &data[..landed]);
                if let Some(old) = old {
                    let new = data[landed];
                    let at = addr + landed;
                    self.weak.retain(|c| c.addr != at);
                    if old != new {
                        // The solid value stays `old`; the cell overrides reads until written.
                        self.weak.push(WeakCell {
                            addr: at,
                            old,
                            new,
                            next_read: weak,
                        });
                    } else {
                        // Both states read the same: the byte is effectively solid.
                        self.copy_in(at, &[old]);
                    }
                }
                self.power_lost = true;
                Err(NvmError::PowerLost)
            }
            _ => {
                self.copy_in(addr, data);
                Ok(())
            }
        }
    }

    fn sync(&mut self) -> Result<(), NvmError> {
        if self.power_lost {
            return Err(NvmError::PowerLost);
        }
        self.syncs += 1;
        Ok(())
    }
}

/// An NVM that injects one [`FaultPlan`] and records every write.
///
/// `Clone` makes an independent copy (contents, weak cells with their read phase, plan, trace).
pub struct FaultNvm {
    device: Rc<RefCell<Device>>,
}

impl Clone for FaultNvm {
    fn clone(&self) -> Self {
        FaultNvm {
            device: Rc::new(RefCell::new(self.device.borrow().clone())),
        }
    }
}

impl std::fmt::Debug for FaultNvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.device.borrow();
        f.debug_struct("FaultNvm")
            .field("len", &d.len)
            .field("plan", &d.plan)
            .field("power_lost", &d.power_lost)
            .field("writes", &d.trace.len())
            .field("weak", &d.weak)
            .finish()
    }
}

impl FaultNvm {
    /// A device holding `bytes`, with no fault planned.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        FaultNvm {
            device: Rc::new(RefCell::new(Device::new(bytes))),
        }
    }

    /// An erased device (every byte 0xFF) of `size` bytes.
    pub fn erased(size: usize) -> Self {
        Self::from_bytes(&vec![0xFF; size])
    }

    /// A power cycle: contents and weak cells stay (weak cells keep their read phase), power
    /// comes back, the write trace restarts, and `plan` governs the writes from now on.
    pub fn reboot(self, plan: FaultPlan) -> FaultNvm {
        {
            let mut d = self.device.borrow_mut();
            d.plan = plan;
            d.power_lost = false;
            d.trace.clear();
            d.syncs = 0;
        }
        self
    }

    /// A second handle on the *same* device, so the tear harness can inspect a device after
    /// handing ownership of it to a closure.
    pub(crate) fn share(&self) -> FaultNvm {
        FaultNvm {
            device: Rc::clone(&self.device),
        }
    }

    pub fn plan(&self) -> FaultPlan {
        self.device.borrow().plan
    }

    /// A handle on this same device that outlives handing the device to a card, so a test can
    /// [`FaultNvm::arm`] its plan after setting the card up.
    pub fn handle(&self) -> FaultNvm {
        self.share()
    }

    /// Restarts the write count here and installs `plan`: writes before this call (a test's
    /// setup, such as verifying the PIN before the command under test) are neither counted nor
    /// faulted.
    pub fn arm(&self, plan: FaultPlan) {
        let mut d = self.device.borrow_mut();
        d.plan = plan;
        d.trace.clear();
        d.syncs = 0;
    }

    /// Every write since power-on, in order, including a torn one; not the ones refused after
    /// the power was lost.
    pub fn writes(&self) -> Vec<NvmWrite> {
        self.device.borrow().trace.clone()
    }

    pub fn write_count(&self) -> usize {
        self.device.borrow().trace.len()
    }

    /// Successful syncs since power-on.
    pub fn sync_count(&self) -> usize {
        self.device.borrow().syncs
    }

    pub fn power_lost(&self) -> bool {
        self.device.borrow().power_lost
    }

    pub fn weak_cells(&self) -> Vec<WeakCell> {
        self.device.borrow().weak.clone()
    }

    /// The contents, each weak byte showing what its next read would return (not disturbing
    /// it).
    pub fn snapshot(&self) -> Vec<u8> {
        let d = self.device.borrow();
        let mut bytes = vec![0u8; d.len];
        d.copy_out(0, &mut bytes);
        for cell in &d.weak {
            bytes[cell.addr] = cell.peek();
        }
        bytes
    }

    /// The contents with every weak byte settled at its old value.
    pub fn snapshot_solid_old(&self) -> Vec<u8> {
        let d = self.device.borrow();
        let mut bytes = vec![0u8; d.len];
        d.copy_out(0, &mut bytes);
        for cell in &d.weak {
            bytes[cell.addr] = cell.old;
        }
        bytes
    }
}

impl Nvm for FaultNvm {
    fn len(&self) -> usize {
        self.device.borrow().len
    }

    fn read(&mut self, addr: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        self.device.borrow_mut().read(addr, buf)
    }

    fn write(&mut self, addr: usize, data: &[u8]) -> Result<(), NvmError> {
        self.device.borrow_mut().write(addr, data)
    }

    fn sync(&mut self) -> Result<(), NvmError> {
        self.device.borrow_mut().sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(nvm: &mut FaultNvm, addr: usize, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        nvm.read(addr, &mut buf).unwrap();
        buf
    }

    #[test]
    fn without_a_plan_it_is_a_plain_nvm_that_records_writes() {
        let mut nvm = FaultNvm::erased(600);
        assert_eq!(nvm.len(), 600);
        // Across a page boundary.
        nvm.write(250, b"0123456789").unwrap();
        nvm.sync().unwrap();
        nvm.write(0, b"").unwrap();
        assert_eq!(read(&mut nvm, 249, 12), b"\xFF0123456789\xFF");
        assert_eq!(
            nvm.writes(),
            vec![
                NvmWrite { addr: 250, len: 10 },
                NvmWrite { addr: 0, len: 0 }
            ]
        );
        assert_eq!((nvm.write_count(), nvm.sync_count()), (2, 1));
        assert_eq!(
            nvm.write(599, b"ab"),
            Err(NvmError::OutOfRange {
                addr: 599,
                len: 2,
                size: 600
            })
        );
        assert_eq!(nvm.write_count(), 2, "refused writes are not in the trace");
    }

    #[test]
    fn crash_after_write_completes_it_then_loses_power() {
        let mut nvm = FaultNvm::from_bytes(&[0; 8]).reboot(FaultPlan::CrashAfterWrite { index: 1 });
        nvm.write(0, b"a").unwrap();
        nvm.write(1, b"b").unwrap();
        assert!(nvm.power_lost());
        assert_eq!(nvm.write(2, b"c"), Err(NvmError::PowerLost));
        assert_eq!(nvm.sync(), Err(NvmError::PowerLost));
        let mut buf = [0u8; 1];
        assert_eq!(nvm.read(0, &mut buf), Err(NvmError::PowerLost));
        let mut nvm = nvm.reboot(FaultPlan::None);
        assert_eq!(read(&mut nvm, 0, 3), b"ab\0");
        assert_eq!(nvm.write_count(), 0, "the trace restarts at power-on");
    }

    #[test]
    fn a_torn_write_lands_a_prefix_and_leaves_one_weak_byte() {
        let mut nvm = FaultNvm::from_bytes(b"oooooo").reboot(FaultPlan::TearInWrite {
            index: 0,
            bytes_written: 2,
            weak: WeakByte::ReadsNewFirst,
        });
        assert_eq!(nvm.write(1, b"NNNN"), Err(NvmError::PowerLost));
        assert_eq!(nvm.writes(), vec![NvmWrite { addr: 1, len: 4 }]);
        let mut nvm = nvm.reboot(FaultPlan::None);
        assert_eq!(nvm.snapshot(), b"oNNNoo");
        assert_eq!(nvm.snapshot_solid_old(), b"oNNooo");
        // The weak byte alternates on every read that touches it, starting with new.
        assert_eq!(read(&mut nvm, 0, 6), b"oNNNoo");
        assert_eq!(read(&mut nvm, 3, 1), b"o");
        assert_eq!(read(&mut nvm, 2, 2), b"NN");
        // Reads that miss it leave it alone.
        assert_eq!(read(&mut nvm, 0, 3), b"oNN");
        assert_eq!(read(&mut nvm, 3, 1), b"o");
        // The weak state survives a reboot (and a copy), phase included.
        let mut copy = nvm.clone().reboot(FaultPlan::None);
        assert_eq!(read(&mut copy, 3, 1), b"N");
        assert_eq!(read(&mut nvm, 3, 1), b"N");
        // A write covering it makes it solid.
        nvm.write(2, b"xy").unwrap();
        assert!(nvm.weak_cells().is_empty());
        assert_eq!(read(&mut nvm, 3, 1), b"y");
        assert_eq!(read(&mut nvm, 3, 1), b"y");
    }

    #[test]
    fn weak_old_first_and_degenerate_tears() {
        let mut nvm = FaultNvm::from_bytes(b"abc").reboot(FaultPlan::TearInWrite {
            index: 0,
            bytes_written: 0,
            weak: WeakByte::ReadsOldFirst,
        });
        assert!(nvm.write(0, b"xyz").is_err());
        let mut nvm = nvm.reboot(FaultPlan::None);
        assert_eq!(read(&mut nvm, 0, 3), b"abc");
        assert_eq!(read(&mut nvm, 0, 3), b"xbc");
        // A weak byte whose old and new values agree is solid.
        let mut nvm = FaultNvm::from_bytes(b"abc").reboot(FaultPlan::TearInWrite {
            index: 0,
            bytes_written: 1,
            weak: WeakByte::ReadsOldFirst,
        });
        assert!(nvm.write(0, b"xbz").is_err());
        assert!(nvm.weak_cells().is_empty());
        // Tearing "at" the end is a complete write followed by power loss.
        let mut nvm = FaultNvm::from_bytes(b"abc").reboot(FaultPlan::TearInWrite {
            index: 0,
            bytes_written: 9,
            weak: WeakByte::ReadsOldFirst,
        });
        assert_eq!(nvm.write(0, b"xyz"), Err(NvmError::PowerLost));
        assert_eq!(nvm.snapshot(), b"xyz");
    }

    #[test]
    fn tearing_over_a_weak_byte_keeps_it_weak_from_its_next_value() {
        let mut nvm = FaultNvm::from_bytes(b"ab").reboot(FaultPlan::TearInWrite {
            index: 0,
            bytes_written: 0,
            weak: WeakByte::ReadsNewFirst,
        });
        assert!(nvm.write(0, b"X").is_err());
        let mut nvm = nvm.reboot(FaultPlan::TearInWrite {
            index: 0,
            bytes_written: 0,
            weak: WeakByte::ReadsOldFirst,
        });
        assert!(nvm.write(0, b"Y").is_err());
        let cells = nvm.weak_cells();
        assert_eq!(cells.len(), 1);
        assert_eq!((cells[0].old, cells[0].new), (b'X', b'Y'));
    }

    #[test]
    fn clones_are_independent_and_shares_are_not() {
        let mut a = FaultNvm::from_bytes(&[0; 1000]);
        let mut b = a.clone();
        let shared = a.share();
        a.write(700, b"a").unwrap();
        b.write(700, b"b").unwrap();
        assert_eq!(shared.snapshot()[700], b'a');
        assert_eq!(b.snapshot()[700], b'b');
        assert_eq!(shared.write_count(), 1);
    }
}
