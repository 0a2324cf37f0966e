//! Where a [`ControlStore`](super::ControlStore) commits its state: the
//! embedded data-dir file (the zero-config default) or a shared database
//! that several nodes commit to (`crate::cluster`'s PostgreSQL backend).
//!
//! The store hands a backend the whole next state, encoded, with the
//! revision it becomes; a backend writes it only if the stored revision is
//! still the one before. A backend shared by several nodes answers
//! [`CommitError::Stale`] with the newer state when another node won, and
//! the store adopts that state so the change can be tried again against it
//! (optimistic concurrency: no lock is held between requests).

use std::path::PathBuf;

/// Why a commit did not happen.
#[derive(Debug)]
pub enum CommitError {
    /// The stored state is newer than the one the change was made against:
    /// here it is (its revision and encoded JSON).
    Stale { revision: u64, json: Vec<u8> },
    /// Writing failed; nothing changed.
    Io(std::io::Error),
    /// The shared store cannot be reached (or the connection broke while
    /// committing, in which case the outcome arrives with the next reload).
    Unavailable(String),
}

/// A place that durably keeps the control state.
pub trait Backend: Send {
    /// Stores `json` as revision `revision` if the stored one is
    /// `revision - 1`.
    fn commit(&mut self, revision: u64, json: &[u8]) -> Result<(), CommitError>;
}

/// The embedded default: `control.json` in the data dir, written to a temp
/// file, fsynced and renamed (see the store's module comment). The data
/// dir's lock makes this process the only writer, so it is never stale.
pub struct FileBackend {
    pub(super) dir: PathBuf,
}

impl Backend for FileBackend {
    fn commit(&mut self, _revision: u64, json: &[u8]) -> Result<(), CommitError> {
        super::store::write_private(&self.dir, super::CONTROL_FILE, json).map_err(CommitError::Io)
    }
}
