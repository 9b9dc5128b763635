//! The daemon loop: listen on a Unix socket, serve one VMM connection at a
//! time, each with a fresh [`VhostUserDaemon`] over the same [`Tpm`], until
//! an exit is requested.
//!
//! `VhostUserDaemon::serve` handles one connection and then stops, so the
//! loop here owns the listener and starts a daemon per accepted connection:
//! the TPM's state lives on across reconnects (a VMM reconnecting continues
//! the same VM). The socket file is created at start (replacing a stale
//! one) and removed when [`serve`] returns.

use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;

use vhost::vhost_user::{Error as VhostUserError, Listener};
use vhost_user_backend::{ShutdownHandle, VhostUserDaemon};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EFD_CLOEXEC, EFD_NONBLOCK, EventFd};
use vtpm_engine::Tpm;
use vtpm_store::MasterKey;

use crate::vhu_tpm::{VhostUserTpmBackend, VhuTpmError};

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct VhostUserTpmConfig {
    /// The vhost-user Unix socket the VMM connects to. A file already there
    /// is replaced.
    pub socket_path: PathBuf,
    /// Seals the TPM state sent to a migration destination and opens the
    /// state received from a migration source. `None`: the state travels
    /// unencrypted (with a warning in the log) and sealed state is
    /// refused. See [`crate::migration`].
    pub migration_key: Option<MasterKey>,
}

impl VhostUserTpmConfig {
    /// A configuration serving on `socket_path`, without a migration key.
    pub fn new(socket_path: impl Into<PathBuf>) -> Self {
        VhostUserTpmConfig {
            socket_path: socket_path.into(),
            migration_key: None,
        }
    }

    /// The same configuration with `key` as the migration key.
    #[must_use]
    pub fn with_migration_key(mut self, key: MasterKey) -> Self {
        self.migration_key = Some(key);
        self
    }
}

/// Equal paths and the same migration key (compared by key id, a one-way
/// fingerprint, so that the key bytes are never compared directly).
impl PartialEq for VhostUserTpmConfig {
    fn eq(&self, other: &Self) -> bool {
        self.socket_path == other.socket_path
            && self.migration_key.as_ref().map(MasterKey::key_id)
                == other.migration_key.as_ref().map(MasterKey::key_id)
    }
}

impl Eq for VhostUserTpmConfig {}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be bound.
    #[error("the vhost-user socket could not be created: {0}")]
    Listen(VhostUserError),
    /// An epoll instance or eventfd could not be set up.
    #[error("the daemon's event loop could not be set up: {0}")]
    EventLoop(io::Error),
    /// The backend could not be created.
    #[error("the vhost-user backend could not be created: {0}")]
    Backend(#[from] VhuTpmError),
    /// The vhost-user daemon could not be created or could not accept.
    #[error("the vhost-user daemon could not start: {0}")]
    Daemon(vhost_user_backend::Error),
    /// A thread could not be started.
    #[error("a thread of the vhost-user daemon could not be started: {0}")]
    Thread(io::Error),
}

/// Asks [`serve`] to stop: cloneable, callable from any thread (a signal
/// waiting thread, a test). Stopping closes the current VMM connection,
/// ends the daemon's threads and removes the socket file; the [`Tpm`] is
/// left as it is (power it off to commit NV).
#[derive(Clone, Debug)]
pub struct ExitHandle {
    inner: Arc<ExitInner>,
}

#[derive(Debug)]
struct ExitInner {
    requested: AtomicBool,
    /// Written once and never read: stays readable for every waiter.
    event: EventFd,
}

impl ExitHandle {
    /// A handle nobody has triggered yet.
    pub fn new() -> io::Result<Self> {
        Ok(ExitHandle {
            inner: Arc::new(ExitInner {
                requested: AtomicBool::new(false),
                event: EventFd::new(EFD_NONBLOCK | EFD_CLOEXEC)?,
            }),
        })
    }

    /// Requests the exit. Idempotent.
    pub fn request_exit(&self) {
        if !self.inner.requested.swap(true, Ordering::SeqCst)
            && let Err(e) = self.inner.event.write(1)
        {
            log::error!("virtio-tpm: the exit request could not be signalled: {e}");
        }
    }

    /// Has an exit been requested?
    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    fn event(&self) -> &EventFd {
        &self.inner.event
    }
}

const TOKEN_LISTENER: u64 = 0;
const TOKEN_EXIT: u64 = 1;
const TOKEN_DONE: u64 = 2;

/// Waits until one of `fds` is readable (restarting on EINTR); returns its
/// token.
fn wait_readable(fds: &[(i32, u64)]) -> Result<u64, Error> {
    let epoll = Epoll::new().map_err(Error::EventLoop)?;
    for &(fd, token) in fds {
        epoll
            .ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, token),
            )
            .map_err(Error::EventLoop)?;
    }
    let mut events = [EpollEvent::default(); 4];
    loop {
        match epoll.wait(-1, &mut events) {
            Ok(n) => {
                if let Some(ev) = events.get(..n).and_then(|e| e.first()) {
                    return Ok(ev.data());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::EventLoop(e)),
        }
    }
}

/// Is this the normal end of a connection (the VMM went away)?
fn is_disconnect(e: &vhost_user_backend::Error) -> bool {
    matches!(
        e,
        vhost_user_backend::Error::HandleRequest(
            VhostUserError::Disconnected
                | VhostUserError::PartialMessage
                | VhostUserError::SocketBroken(_)
        )
    )
}

/// Serves the virtio TPM on `config.socket_path` until `exit` is requested.
///
/// Powers the TPM on first (a no-op if it is on: `power_on` signals
/// `_TPM_Init` only on a power-off → on transition). Then, for each VMM
/// connection in turn, runs a vhost-user daemon over `tpm`; a connection
/// that ends, normally or with a protocol error, is logged and the next one
/// accepted, with the TPM as it was. Returns `Ok` once `exit` is requested;
/// an error only where serving cannot go on (socket, threads, epoll).
/// Never powers the TPM off.
pub fn serve(
    config: &VhostUserTpmConfig,
    tpm: Arc<Mutex<Tpm>>,
    exit: &ExitHandle,
) -> Result<(), Error> {
    match tpm.lock() {
        Ok(mut t) => t.power_on(),
        Err(_) => log::error!("virtio-tpm: the TPM's lock is poisoned"),
    }
    // Binds now (replacing a stale socket file); the file goes when
    // `listener` is dropped.
    let mut listener = Listener::new(&config.socket_path, true).map_err(Error::Listen)?;
    log::info!(
        "virtio-tpm: vhost-user backend listening on {}",
        config.socket_path.display()
    );
    loop {
        if exit.is_requested() {
            break;
        }
        let ready = wait_readable(&[
            (listener.as_raw_fd(), TOKEN_LISTENER),
            (exit.event().as_raw_fd(), TOKEN_EXIT),
        ])?;
        if ready == TOKEN_EXIT || exit.is_requested() {
            break;
        }
        serve_connection(&mut listener, &tpm, config.migration_key.as_ref(), exit)?;
    }
    log::info!("virtio-tpm: vhost-user backend stopped");
    Ok(())
}

/// Accepts the pending connection and serves it until the VMM disconnects
/// or `exit` is requested.
fn serve_connection(
    listener: &mut Listener,
    tpm: &Arc<Mutex<Tpm>>,
    migration_key: Option<&MasterKey>,
    exit: &ExitHandle,
) -> Result<(), Error> {
    let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
    let backend = Arc::new(RwLock::new(
        VhostUserTpmBackend::new(Arc::clone(tpm), mem.clone())?
            .with_migration_key(migration_key.cloned()),
    ));
    let mut daemon =
        VhostUserDaemon::new("vtpm-vhost-user".to_string(), backend, mem).map_err(Error::Daemon)?;
    // The listener is readable, so this accepts without blocking.
    daemon.start(listener).map_err(Error::Daemon)?;
    log::info!("virtio-tpm: VMM connected");
    let Some(shutdown) = daemon.shutdown_handle() else {
        // start() succeeded, so there is a connection; be safe anyway.
        return finish(daemon.wait());
    };
    let done = EventFd::new(EFD_NONBLOCK | EFD_CLOEXEC).map_err(Error::EventLoop)?;
    let result = thread::scope(|s| {
        let watcher = thread::Builder::new()
            .name("vtpm-vhost-exit".to_string())
            .spawn_scoped(s, || watch_exit(exit, &done, &shutdown))
            .map_err(Error::Thread);
        let result = daemon.wait();
        if let Err(e) = done.write(1) {
            log::error!("virtio-tpm: the connection watcher could not be told to end: {e}");
        }
        match watcher {
            Ok(w) => {
                if w.join().is_err() {
                    log::error!("virtio-tpm: the connection watcher panicked");
                }
                Ok(result)
            }
            Err(e) => {
                // Without a watcher an exit request cannot end this
                // connection: end it now rather than hang on exit.
                shutdown.shutdown();
                Err(e)
            }
        }
    })?;
    // Dropping the daemon drops its handler, whose Drop sends the backend's
    // exit event and joins the vring worker.
    drop(daemon);
    finish(result)
}

/// Ends the connection when an exit is requested.
fn watch_exit(exit: &ExitHandle, done: &EventFd, shutdown: &ShutdownHandle) {
    match wait_readable(&[
        (exit.event().as_raw_fd(), TOKEN_EXIT),
        (done.as_raw_fd(), TOKEN_DONE),
    ]) {
        Ok(TOKEN_EXIT) => {
            log::info!("virtio-tpm: exit requested: closing the VMM connection");
            shutdown.shutdown();
        }
        Ok(_) => {}
        Err(e) => {
            log::error!("virtio-tpm: {e}; closing the VMM connection");
            shutdown.shutdown();
        }
    }
}

fn finish(result: vhost_user_backend::Result<()>) -> Result<(), Error> {
    match result {
        Ok(()) => log::info!("virtio-tpm: VMM disconnected"),
        Err(e) if is_disconnect(&e) => log::info!("virtio-tpm: VMM disconnected"),
        // A misbehaving VMM ends its own connection, not the service.
        Err(e) => log::warn!("virtio-tpm: the VMM connection ended with an error: {e}"),
    }
    Ok(())
}
