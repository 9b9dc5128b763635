//! SIGTERM / SIGINT handling without a signal handler.
//!
//! [`block_termination_signals`] blocks both signals in the calling thread
//! before any other thread exists, so every thread inherits the mask and
//! none is interrupted; [`wait`] then takes them synchronously with
//! `sigwait(3)` on a thread of its own. Nothing runs in signal context, so
//! there is no async-signal-safety to get wrong.
#![allow(unsafe_code)]

use std::io;
use std::mem::MaybeUninit;

/// A set of signals blocked in this process.
#[derive(Clone, Copy)]
pub struct Blocked(libc::sigset_t);

impl std::fmt::Debug for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blocked(SIGTERM, SIGINT)")
    }
}

/// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread
/// it starts afterwards). Call it first thing in `main`.
pub fn block_termination_signals() -> io::Result<Blocked> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `set` is valid for writes; sigemptyset initializes it.
    if unsafe { libc::sigemptyset(set.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigemptyset returned 0, so `set` is initialized.
    let mut set = unsafe { set.assume_init() };
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: `set` is an initialized sigset_t and `sig` a valid signal.
        if unsafe { libc::sigaddset(&mut set, sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: `set` is initialized; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(Blocked(set))
}

/// Waits for one of the blocked signals and returns its name.
pub fn wait(blocked: &Blocked) -> io::Result<&'static str> {
    let mut sig: libc::c_int = 0;
    // SAFETY: `blocked.0` is an initialized sigset_t and `sig` is valid for
    // writes.
    let rc = unsafe { libc::sigwait(&blocked.0, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "signal",
    })
}
