//! The child → parent failure record.
//!
//! The child side cannot allocate or format, so it reports a failed setup step as one fixed-size
//! word: which step, the errno, and an index (which stdio slot, which `PATH` candidate). It is
//! stored in the plan's shared memory (the child runs with `CLONE_VM`) before the child exits;
//! zero means "no failure".

use crate::error::Step;

/// A failed step in the child, as the child records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    pub step: Step,
    pub errno: i32,
    pub index: u16,
}

impl Failure {
    pub fn new(step: Step, errno: rustix::io::Errno) -> Self {
        Failure { step, errno: errno.raw_os_error(), index: 0 }
    }

    pub fn at(mut self, index: usize) -> Self {
        self.index = index.min(u16::MAX as usize) as u16;
        self
    }

    /// `[1][step u8][index u16][errno u32]`, from the most significant byte; the leading 1 keeps
    /// every record non-zero.
    pub fn encode(self) -> u64 {
        (1u64 << 56)
            | (u64::from(self.step as u8) << 48)
            | (u64::from(self.index) << 32)
            | u64::from(self.errno as u32)
    }

    pub fn decode(word: u64) -> Option<Self> {
        if word >> 56 != 1 {
            return None;
        }
        Some(Failure {
            step: Step::from_u8((word >> 48) as u8)?,
            index: (word >> 32) as u16,
            errno: word as u32 as i32,
        })
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_macros, reason = "tests run in the test harness, never after clone")]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_step() {
        for &step in Step::ALL {
            let f = Failure { step, errno: 13, index: 7 };
            assert_ne!(f.encode(), 0);
            assert_eq!(Failure::decode(f.encode()), Some(f));
        }
    }

    #[test]
    fn zero_and_garbage_are_not_failures() {
        assert_eq!(Failure::decode(0), None);
        assert_eq!(Failure::decode(u64::MAX), None);
        assert_eq!(Failure::decode((1 << 56) | (250 << 48)), None);
    }
}
