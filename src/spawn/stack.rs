//! The child stack: an anonymous private mapping with a guard page, kept in a small pool
//! between spawns.
#![allow(unsafe_code)]

use core::ffi::c_void;
use rustix::io::Errno;

/// A child stack: an anonymous private mapping whose lowest page is a guard page.
#[derive(Debug)]
pub struct Stack {
    base: *mut c_void,
    len: usize,
}

/// How much stack the child side gets. Pages are only touched (and so only cost memory) where
/// the child actually uses them.
const STACK_SIZE: usize = 256 * 1024;
const GUARD: usize = 4096;

// SAFETY: a Stack is an anonymous mapping owned by exactly one value; it has no tie to the thread
// that mapped it, so it may be handed to another thread (through the spare pool).
unsafe impl Send for Stack {}

/// Stacks kept between spawns. Mapping a fresh stack and unmapping it after every spawn costs an
/// mmap, an mprotect and an munmap, and the munmap interrupts every other CPU that ran the caller
/// to flush its TLB: about 3% of a whole sandbox spawn here (BENCHMARKS.md).
static SPARE: std::sync::Mutex<Vec<Stack>> = std::sync::Mutex::new(Vec::new());
/// As many as threads are likely to spawn at the same moment; more are unmapped.
const MAX_SPARE: usize = 4;

impl Stack {
    /// A spare stack, or a new one.
    pub fn take() -> Result<Self, Errno> {
        let spare = SPARE.lock().ok().and_then(|mut spare| spare.pop());
        spare.map_or_else(Stack::new, Ok)
    }

    /// Keeps the stack for the next spawn. Only once no child runs on it any more: it has
    /// exec'd or exited.
    pub fn give_back(self) {
        if let Ok(mut spare) = SPARE.lock() {
            if spare.len() < MAX_SPARE {
                spare.push(self);
            }
        }
    }

    fn new() -> Result<Self, Errno> {
        use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                STACK_SIZE,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK | MapFlags::NORESERVE,
            )?
        };
        let stack = Stack { base, len: STACK_SIZE };
        // SAFETY: the first page of our own mapping.
        unsafe { rustix::mm::mprotect(base, GUARD, MprotectFlags::empty())? };
        Ok(stack)
    }

    /// The mapping's lowest address (its guard page) and its length, for `clone`.
    pub fn region(&self) -> (*mut c_void, usize) {
        (self.base, self.len)
    }

    /// The initial stack pointer (the stack grows down), 16-byte aligned.
    pub fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of our own mapping.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

// SAFETY: a shared Stack only hands out its address.
unsafe impl Sync for Stack {}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used by any child (the callers guarantee the child
        // has exec'd or exited before the stack is dropped).
        unsafe {
            let _ = rustix::mm::munmap(self.base, self.len);
        }
    }
}
