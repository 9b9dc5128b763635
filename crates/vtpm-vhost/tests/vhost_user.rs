//! End to end: the real daemon ([`vtpm_vhost::serve`]) on a Unix socket,
//! driven by `vhost::vhost_user::Frontend` (the VMM's side of the protocol)
//! with a shared file as guest memory, as a VMM would: feature negotiation,
//! memory table, vring setup, kick and call eventfds; then vring stop and
//! restart (guest reboot vs. VM pause), disconnect and reconnect, exit.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use vhost::VhostBackend;
use vtpm_engine::{MemoryPlatform, Tpm};
use vtpm_vhost::{ExitHandle, VhostUserTpmConfig, serve};

#[test]
fn serve_reset_reconnect_exit() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vtpm.sock");
    let mut tpm = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
    tpm.power_on();
    let tpm = Arc::new(Mutex::new(tpm));
    let exit = ExitHandle::new().unwrap();
    let server = {
        let config = VhostUserTpmConfig::new(&socket);
        let tpm = Arc::clone(&tpm);
        let exit = exit.clone();
        std::thread::spawn(move || serve(&config, tpm, &exit))
    };

    // Connection 1: boot.
    let mut guest = Guest::new();
    let mut fe = connect(&socket);
    negotiate(&mut fe, &guest, false);
    start_vring(&mut fe, &guest, 0);
    assert_eq!(guest.transact(&STARTUP), SUCCESS_10);
    assert_random_8(&guest.transact(&GET_RANDOM_8));

    // VM pause/resume: the VMM stops the vring and restarts it where it
    // stopped. No reset: the TPM is still started.
    let base = fe.get_vring_base(0).unwrap();
    assert_eq!(base, 2);
    start_vring(&mut fe, &guest, base as u16);
    assert_random_8(&guest.transact(&GET_RANDOM_8));

    // Guest reboot: the VMM stops the vring; the rebooted guest's driver
    // sets up a fresh ring and the VMM restarts it at 0. The TPM sees
    // _TPM_Init: commands other than Startup get TPM_RC_INITIALIZE.
    assert_eq!(fe.get_vring_base(0).unwrap(), 3);
    guest.reset_ring();
    start_vring(&mut fe, &guest, 0);
    assert_eq!(guest.transact(&GET_RANDOM_8), RC_INITIALIZE);
    assert_eq!(guest.transact(&GET_RANDOM_8), RC_INITIALIZE);
    assert_eq!(guest.transact(&STARTUP), SUCCESS_10);
    assert_random_8(&guest.transact(&GET_RANDOM_8));
    assert!(tpm.lock().unwrap().is_started());

    // Disconnect (the VMM went away) and reconnect: the same VM goes on, so
    // the VMM restarts the ring where it was. The TPM state survived: it is
    // still started, so a second Startup answers TPM_RC_INITIALIZE (a TPM
    // that had been reset would accept it).
    drop(fe);
    let mut fe = connect(&socket);
    negotiate(&mut fe, &guest, true);
    start_vring(&mut fe, &guest, guest.avail_idx);
    assert_eq!(guest.transact(&STARTUP), RC_INITIALIZE);
    assert_random_8(&guest.transact(&GET_RANDOM_8));

    // A new VM on the same TPM (new connection, fresh ring at 0): reset.
    drop(fe);
    let mut guest = Guest::new();
    let mut fe = connect(&socket);
    negotiate(&mut fe, &guest, false);
    start_vring(&mut fe, &guest, 0);
    assert_eq!(guest.transact(&GET_RANDOM_8), RC_INITIALIZE);
    assert_eq!(guest.transact(&STARTUP), SUCCESS_10);

    // Exit while a VMM is connected: serve closes the connection, ends its
    // threads, removes the socket and returns.
    exit.request_exit();
    let deadline = Instant::now() + TIMEOUT;
    while !server.is_finished() {
        assert!(
            Instant::now() < deadline,
            "serve did not return after the exit request"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.join().unwrap().unwrap();
    assert!(!socket.exists());
    assert!(fe.get_features().is_err());
    // The TPM outlives the server; the caller powers it off.
    assert!(tpm.lock().unwrap().is_powered());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn exit_while_idle() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vtpm.sock");
    let tpm = Arc::new(Mutex::new(
        Tpm::new(Box::new(MemoryPlatform::new())).unwrap(),
    ));
    let exit = ExitHandle::new().unwrap();
    let server = {
        let config = VhostUserTpmConfig::new(&socket);
        let tpm = Arc::clone(&tpm);
        let exit = exit.clone();
        std::thread::spawn(move || serve(&config, tpm, &exit))
    };
    let deadline = Instant::now() + TIMEOUT;
    while !socket.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    // serve powered the TPM on.
    assert!(tpm.lock().unwrap().is_powered());
    exit.request_exit();
    while !server.is_finished() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    server.join().unwrap().unwrap();
    assert!(!socket.exists());
}
