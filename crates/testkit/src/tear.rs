//! The exhaustive tear harness (design `transfer-protocol.md` §5.2 T2, invariants 7–8): for a
//! command that writes W times, it injects a power loss after every write and a tear inside
//! every write at every byte boundary (with the boundary byte weak, both ways round), then a
//! second fault at every write and byte boundary of the recovery, and checks that every boot
//! afterwards observes exactly the pre- or the post-command state, twice in a row.
//!
//! The harness knows nothing about cards or stores: `run` boots something on a [`FaultNvm`]
//! and executes the command, `observe` boots (running recovery) and returns the logical state.
//! Both must be deterministic functions of the NVM contents, since the harness replays them
//! and counts writes from a clean run.

use std::fmt::{self, Debug, Display};

use crate::fault::{FaultNvm, FaultPlan, NvmWrite, WeakByte};

/// How many second faults (faults during recovery) to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DoubleFaults {
    /// Every write and byte boundary of every recovery.
    #[default]
    All,
    /// Only byte boundaries that are multiples of `n`, plus the crash after each write. For
    /// handlers too expensive to exhaust; the harness prints that it sampled.
    EveryNthBoundary(usize),
}

/// What to do at the first case that observes something wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Return it at once.
    #[default]
    Stop,
    /// Run every case anyway and report how many failed (for ablation studies).
    CountAll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TearOptions {
    pub double_faults: DoubleFaults,
    pub on_failure: OnFailure,
}

/// What an exhaustive run covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TearReport {
    /// Writes of the command's clean run (W).
    pub command_writes: usize,
    /// The most writes any single recovery made.
    pub max_recovery_writes: usize,
    /// `single_fault_cases + double_fault_cases`.
    pub cases: u64,
    /// One fault in the command, then clean recovery.
    pub single_fault_cases: u64,
    /// One fault in the command, a second in its recovery, then clean recovery.
    pub double_fault_cases: u64,
    /// Second faults skipped by [`DoubleFaults::EveryNthBoundary`].
    pub double_fault_cases_skipped: u64,
    /// Cases whose observation was the pre-command state (counted as post if pre == post).
    pub pre_outcomes: u64,
    pub post_outcomes: u64,
}

impl Display for TearReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cases ({} single-fault, {} double-fault{}) over {} command writes \
             (recovery ≤ {} writes): {} pre, {} post",
            self.cases,
            self.single_fault_cases,
            self.double_fault_cases,
            if self.double_fault_cases_skipped > 0 {
                format!(", {} sampled out", self.double_fault_cases_skipped)
            } else {
                String::new()
            },
            self.command_writes,
            self.max_recovery_writes,
            self.pre_outcomes,
            self.post_outcomes,
        )
    }
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Index of the faulted write since power-on.
    pub write: usize,
    /// Where that write went.
    pub target: NvmWrite,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    CrashAfterWrite,
    Tear {
        bytes_written: usize,
        weak: WeakByte,
    },
}

impl Fault {
    fn plan(&self) -> FaultPlan {
        match self.kind {
            FaultKind::CrashAfterWrite => FaultPlan::CrashAfterWrite { index: self.write },
            FaultKind::Tear {
                bytes_written,
                weak,
            } => FaultPlan::TearInWrite {
                index: self.write,
                bytes_written,
                weak,
            },
        }
    }

    /// Every fault of write `write`: a tear at each byte boundary inside it with each weak
    /// mode, then the crash after it. `every_nth` thins the tear boundaries.
    fn all_for(write: usize, target: NvmWrite, every_nth: usize) -> impl Iterator<Item = Fault> {
        let tears = (0..target.len)
            .filter(move |b| b % every_nth == 0)
            .flat_map(move |bytes_written| {
                WeakByte::BOTH.into_iter().map(move |weak| Fault {
                    write,
                    target,
                    kind: FaultKind::Tear {
                        bytes_written,
                        weak,
                    },
                })
            });
        tears.chain(std::iter::once(Fault {
            write,
            target,
            kind: FaultKind::CrashAfterWrite,
        }))
    }

    fn count_for(target: NvmWrite) -> u64 {
        2 * target.len as u64 + 1
    }
}

impl Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let NvmWrite { addr, len } = self.target;
        write!(f, "write #{} ({len} bytes at {addr:#x}) ", self.write)?;
        match self.kind {
            FaultKind::CrashAfterWrite => write!(f, "completed, then power lost"),
            FaultKind::Tear {
                bytes_written,
                weak,
            } => write!(
                f,
                "torn after {bytes_written} bytes, next byte weak ({weak:?})"
            ),
        }
    }
}

/// Which case failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TearCase {
    /// Booting the initial NVM (no fault).
    CleanBoot,
    /// The command's run without a fault.
    CleanRun,
    /// A fault in the command and, if `second` is set, one in the recovery after it.
    Faulted { first: Fault, second: Option<Fault> },
}

impl Display for TearCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TearCase::CleanBoot => write!(f, "clean boot of the initial NVM"),
            TearCase::CleanRun => write!(f, "clean run of the command"),
            TearCase::Faulted { first, second } => {
                write!(f, "command {first}")?;
                if let Some(second) = second {
                    write!(f, "; recovery {second}")?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TearProblem {
    /// An observation was neither the pre- nor the post-command state (invariant 7).
    NeitherPreNorPost,
    /// Two boots in a row observed different states (invariant 8).
    Unstable,
    /// A faulted run did not repeat the clean run's writes up to the fault: `run` or `observe`
    /// is not deterministic, so the enumeration would not be exhaustive.
    Nondeterministic,
}

/// The first failing case (or, with [`OnFailure::CountAll`], the first of several), with what
/// was observed as `Debug` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TearFailure {
    pub case: TearCase,
    pub problem: TearProblem,
    pub first_observation: String,
    pub second_observation: String,
    pub pre: String,
    pub post: String,
    /// Cases that failed / cases run (1 / cases-so-far unless `OnFailure::CountAll`).
    pub failed_cases: u64,
    pub report: TearReport,
}

impl Display for TearFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} in case [{}]: observed {} then {}; pre = {}, post = {} ({} failing of {} cases)",
            self.problem,
            self.case,
            self.first_observation,
            self.second_observation,
            self.pre,
            self.post,
            self.failed_cases,
            self.report.cases,
        )
    }
}

impl std::error::Error for TearFailure {}

/// Runs every single- and double-fault case of one command; see the module documentation.
///
/// `initial` is the NVM before the command; `run` boots on the NVM it is given and executes the
/// command, ignoring errors; `observe` boots (running recovery) and returns the logical state.
/// Each case must observe `pre` or `post`, and the same twice in a row.
// A large error by value: it ends a test, once, so its size costs nothing.
#[allow(clippy::result_large_err)]
pub fn exhaust<S: PartialEq + Debug>(
    initial: &[u8],
    run: impl Fn(FaultNvm),
    observe: impl Fn(FaultNvm) -> S,
    pre: &S,
    post: &S,
    opts: TearOptions,
) -> Result<TearReport, TearFailure> {
    exhaust_boxed(initial, run, observe, pre, post, opts).map_err(|failure| *failure)
}

fn exhaust_boxed<S: PartialEq + Debug>(
    initial: &[u8],
    run: impl Fn(FaultNvm),
    observe: impl Fn(FaultNvm) -> S,
    pre: &S,
    post: &S,
    opts: TearOptions,
) -> Result<TearReport, Box<TearFailure>> {
    let mut h = Harness {
        observe: &observe,
        pre,
        post,
        opts,
        report: TearReport::default(),
        first_failure: None,
        failed: 0,
    };
    let start = FaultNvm::from_bytes(initial);

    h.check_two_boots(TearCase::CleanBoot, start.clone())?;
    let clean = start.clone();
    let device = clean.share();
    run(clean);
    let command_writes = device.writes();
    h.report.command_writes = command_writes.len();
    h.check_two_boots(TearCase::CleanRun, device.reboot(FaultPlan::None))?;

    let every_nth = match opts.double_faults {
        DoubleFaults::All => 1,
        DoubleFaults::EveryNthBoundary(n) => n.max(1),
    };
    for (k, &target) in command_writes.iter().enumerate() {
        for first in Fault::all_for(k, target, 1) {
            let faulted = start.clone().reboot(first.plan());
            let torn = faulted.share();
            run(faulted);
            if torn.writes().get(..=k) != Some(&command_writes[..=k]) {
                h.fail(
                    TearCase::Faulted {
                        first,
                        second: None,
                    },
                    TearProblem::Nondeterministic,
                    &format!("{:?}", torn.writes()),
                    &format!("{command_writes:?}"),
                )?;
                continue;
            }

            // Single fault: clean recovery. Its trace is the recovery's writes.
            let recovery = torn.clone().reboot(FaultPlan::None);
            let recovery_writes = h.check_two_boots_counting(
                TearCase::Faulted {
                    first,
                    second: None,
                },
                recovery,
            )?;
            h.report.single_fault_cases += 1;
            h.report.max_recovery_writes = h.report.max_recovery_writes.max(recovery_writes.len());

            // Double fault: every fault of that recovery, then clean recovery.
            for (j, &rtarget) in recovery_writes.iter().enumerate() {
                let mut run_here = 0;
                for second in Fault::all_for(j, rtarget, every_nth) {
                    run_here += 1;
                    let faulted = torn.clone().reboot(second.plan());
                    let again = faulted.share();
                    // The observation of a faulted boot means nothing: power was lost in it.
                    let _ = observe(faulted);
                    let case = TearCase::Faulted {
                        first,
                        second: Some(second),
                    };
                    if again.writes().get(..=j) != Some(&recovery_writes[..=j]) {
                        h.fail(
                            case,
                            TearProblem::Nondeterministic,
                            &format!("{:?}", again.writes()),
                            &format!("{recovery_writes:?}"),
                        )?;
                        continue;
                    }
                    h.check_two_boots(case, again.reboot(FaultPlan::None))?;
                    h.report.double_fault_cases += 1;
                }
                h.report.double_fault_cases_skipped += Fault::count_for(rtarget) - run_here;
            }
        }
    }
    h.report.cases = h.report.single_fault_cases + h.report.double_fault_cases;
    if h.report.double_fault_cases_skipped > 0 {
        println!(
            "tear: double faults sampled at every {every_nth}th byte boundary: {} run, {} skipped",
            h.report.double_fault_cases, h.report.double_fault_cases_skipped
        );
    }
    match h.first_failure.take() {
        None => Ok(h.report),
        Some(mut failure) => {
            failure.failed_cases = h.failed;
            failure.report = h.report;
            Err(failure)
        }
    }
}

struct Harness<'a, S, O> {
    observe: &'a O,
    pre: &'a S,
    post: &'a S,
    opts: TearOptions,
    report: TearReport,
    first_failure: Option<Box<TearFailure>>,
    failed: u64,
}

impl<S: PartialEq + Debug, O: Fn(FaultNvm) -> S> Harness<'_, S, O> {
    fn check_two_boots(&mut self, case: TearCase, nvm: FaultNvm) -> Result<(), Box<TearFailure>> {
        self.check_two_boots_counting(case, nvm).map(|_| ())
    }

    /// Boots `nvm` twice in a row (the second on what the first left), checks both
    /// observations, and returns the first boot's writes.
    fn check_two_boots_counting(
        &mut self,
        case: TearCase,
        nvm: FaultNvm,
    ) -> Result<Vec<NvmWrite>, Box<TearFailure>> {
        let device = nvm.share();
        let first = (self.observe)(nvm);
        let writes = device.writes();
        let second = (self.observe)(device.reboot(FaultPlan::None));
        let problem = if first != *self.pre && first != *self.post {
            Some(TearProblem::NeitherPreNorPost)
        } else if first != second {
            Some(TearProblem::Unstable)
        } else {
            None
        };
        match problem {
            Some(problem) => {
                self.fail(case, problem, &format!("{first:?}"), &format!("{second:?}"))?
            }
            None if !matches!(case, TearCase::Faulted { .. }) => {}
            None if first == *self.post => self.report.post_outcomes += 1,
            None => self.report.pre_outcomes += 1,
        }
        Ok(writes)
    }

    /// Records a failure; returns it as an error unless every case is to be counted.
    fn fail(
        &mut self,
        case: TearCase,
        problem: TearProblem,
        first: &str,
        second: &str,
    ) -> Result<(), Box<TearFailure>> {
        self.failed += 1;
        let failure = TearFailure {
            case,
            problem,
            first_observation: first.to_string(),
            second_observation: second.to_string(),
            pre: format!("{:?}", self.pre),
            post: format!("{:?}", self.post),
            failed_cases: self.failed,
            report: TearReport {
                cases: self.report.single_fault_cases + self.report.double_fault_cases,
                ..self.report
            },
        };
        match self.opts.on_failure {
            OnFailure::Stop => Err(Box::new(failure)),
            OnFailure::CountAll => {
                self.first_failure.get_or_insert(Box::new(failure));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use card::nvm::Nvm;
    use std::cell::Cell;

    /// A toy two-slot store: byte 0 selects slot 0 or 1 (any other value means 0), each slot is
    /// `N` bytes. A command writes the inactive slot, then flips the selector.
    const N: usize = 4;

    fn slot(nvm: &mut FaultNvm, selector: u8) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; N];
        nvm.read(1 + usize::from(selector == 1) * N, &mut buf)
            .map_err(|e| e.to_string())?;
        Ok(buf)
    }

    fn selector(nvm: &mut FaultNvm) -> Result<u8, String> {
        let mut s = [0u8];
        nvm.read(0, &mut s).map_err(|e| e.to_string())?;
        Ok(s[0])
    }

    fn two_slot_command(mut nvm: FaultNvm, new: &[u8]) {
        let Ok(s) = selector(&mut nvm) else { return };
        let other = u8::from(s != 1);
        if nvm.write(1 + usize::from(other) * N, new).is_ok() && nvm.sync().is_ok() {
            let _ = nvm.write(0, &[other]);
        }
    }

    /// Boot without stabilising: reads the selector and the slot it names.
    fn naive_observe(mut nvm: FaultNvm) -> Result<Vec<u8>, String> {
        let s = selector(&mut nvm)?;
        slot(&mut nvm, s)
    }

    /// Boot that stabilises the selector (re-writes it as read) before trusting it.
    fn stabilising_observe(mut nvm: FaultNvm) -> Result<Vec<u8>, String> {
        let s = selector(&mut nvm)?;
        nvm.write(0, &[s]).map_err(|e| e.to_string())?;
        nvm.sync().map_err(|e| e.to_string())?;
        slot(&mut nvm, s)
    }

    fn initial() -> Vec<u8> {
        let mut bytes = vec![0u8; 1 + 2 * N];
        bytes[1..1 + N].copy_from_slice(b"old!");
        bytes
    }

    const PRE: &[u8] = b"old!";
    const POST: &[u8] = b"new!";

    #[test]
    fn a_stabilising_two_slot_store_passes_with_exact_case_counts() {
        let report = exhaust(
            &initial(),
            |nvm| two_slot_command(nvm, POST),
            stabilising_observe,
            &Ok(PRE.to_vec()),
            &Ok(POST.to_vec()),
            TearOptions::default(),
        )
        .unwrap();
        // Command writes: the slot (N bytes) and the selector (1 byte): 2N+1 + 3 single faults.
        // Every recovery writes the selector once: 3 second faults per single fault.
        let single = (2 * N as u64 + 1) + 3;
        assert_eq!(report.command_writes, 2);
        assert_eq!(report.max_recovery_writes, 1);
        assert_eq!(report.single_fault_cases, single);
        assert_eq!(report.double_fault_cases, 3 * single);
        assert_eq!(report.cases, 4 * single);
        assert_eq!(report.pre_outcomes + report.post_outcomes, 4 * single);
        assert!(report.pre_outcomes > 0 && report.post_outcomes > 0);
    }

    #[test]
    fn writing_in_place_is_caught() {
        let failure = exhaust(
            &initial(),
            |mut nvm| {
                let _ = nvm.write(1, POST);
            },
            |mut nvm| slot(&mut nvm, 0),
            &Ok(PRE.to_vec()),
            &Ok(POST.to_vec()),
            TearOptions {
                on_failure: OnFailure::CountAll,
                ..TearOptions::default()
            },
        )
        .unwrap_err();
        // "old!" → "new!": tears at bytes 0, 1 and 2 (both weak modes) show "nld!", "ned!" or a
        // flip between old and new; byte 3 is '!' either way, and the crash after is "new!".
        assert_eq!(failure.failed_cases, 6);
        assert_eq!(failure.report.single_fault_cases, 9);
        // The first: byte 0 weak reading old first → old, then "nld!".
        assert_eq!(failure.problem, TearProblem::Unstable);
        assert_eq!(
            failure.first_observation,
            format!("{:?}", Ok::<_, String>(PRE.to_vec()))
        );
        assert!(matches!(
            failure.case,
            TearCase::Faulted {
                first: Fault {
                    write: 0,
                    kind: FaultKind::Tear {
                        bytes_written: 0,
                        weak: WeakByte::ReadsOldFirst,
                    },
                    ..
                },
                second: None
            }
        ));
        assert!(
            failure.to_string().contains("torn after 0 bytes"),
            "{failure}"
        );
        // Stopping at the first failure reports the same case.
        let first = exhaust(
            &initial(),
            |mut nvm| {
                let _ = nvm.write(1, POST);
            },
            |mut nvm| slot(&mut nvm, 0),
            &Ok(PRE.to_vec()),
            &Ok(POST.to_vec()),
            TearOptions::default(),
        )
        .unwrap_err();
        assert_eq!((first.case, first.failed_cases), (failure.case, 1));
    }

    #[test]
    fn a_weak_selector_without_stabilising_is_caught_as_unstable() {
        let failure = exhaust(
            &initial(),
            |nvm| two_slot_command(nvm, POST),
            naive_observe,
            &Ok(PRE.to_vec()),
            &Ok(POST.to_vec()),
            TearOptions {
                on_failure: OnFailure::CountAll,
                ..TearOptions::default()
            },
        )
        .unwrap_err();
        assert_eq!(failure.problem, TearProblem::Unstable);
        // Exactly the two weak-selector tears fail; nothing else does.
        assert_eq!(failure.failed_cases, 2);
        assert_eq!(failure.report.single_fault_cases, (2 * N as u64 + 1) + 3);
        assert_eq!(
            failure.report.double_fault_cases, 0,
            "naive boots never write"
        );
    }

    #[test]
    fn a_wrong_initial_state_or_command_is_caught_without_faults() {
        let failure = exhaust(
            &initial(),
            |nvm| two_slot_command(nvm, b"oops"),
            stabilising_observe,
            &Ok(PRE.to_vec()),
            &Ok(POST.to_vec()),
            TearOptions::default(),
        )
        .unwrap_err();
        assert_eq!(failure.case, TearCase::CleanRun);
        let failure = exhaust(
            &initial(),
            |nvm| two_slot_command(nvm, POST),
            stabilising_observe,
            &Ok(b"????".to_vec()),
            &Ok(POST.to_vec()),
            TearOptions::default(),
        )
        .unwrap_err();
        assert_eq!(failure.case, TearCase::CleanBoot);
    }

    #[test]
    fn a_nondeterministic_command_is_caught() {
        let calls = Cell::new(0usize);
        let failure = exhaust(
            &initial(),
            |mut nvm| {
                calls.set(calls.get() + 1);
                // The first (clean) run writes the slot at a different address than later runs.
                let addr = if calls.get() == 1 { 1 } else { 2 };
                let _ = nvm.write(addr, b"x");
            },
            |_| (),
            &(),
            &(),
            TearOptions::default(),
        )
        .unwrap_err();
        assert_eq!(failure.problem, TearProblem::Nondeterministic);
    }

    #[test]
    fn sampling_double_faults_skips_boundaries_and_says_so() {
        // A recovery that writes 8 bytes: 17 second faults each when exhaustive.
        let observe = |mut nvm: FaultNvm| {
            let _ = nvm.write(1 + 2 * N - 8, &[7; 8]);
            naive_observe(nvm).map(|_| ())
        };
        let all = exhaust(
            &initial(),
            |mut nvm| {
                let _ = nvm.write(0, &[0]);
            },
            observe,
            &Ok(()),
            &Ok(()),
            TearOptions::default(),
        )
        .unwrap();
        assert_eq!(all.double_fault_cases, 3 * 17);
        let sampled = exhaust(
            &initial(),
            |mut nvm| {
                let _ = nvm.write(0, &[0]);
            },
            observe,
            &Ok(()),
            &Ok(()),
            TearOptions {
                double_faults: DoubleFaults::EveryNthBoundary(4),
                ..TearOptions::default()
            },
        )
        .unwrap();
        // Boundaries 0 and 4, both weak modes, plus the crash after: 5 of 17.
        assert_eq!(sampled.double_fault_cases, 3 * 5);
        assert_eq!(sampled.double_fault_cases_skipped, 3 * 12);
        assert_eq!(sampled.single_fault_cases, all.single_fault_cases);
    }
}
