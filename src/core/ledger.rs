//! What a ledger row says, independent of where it was read from.

use super::checksum::RecordedHash;

/// One row of an environment's ledger: a migration the environment has run
/// (or tried to run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRow {
    /// The migration's identifier as the ledger stores it.
    pub version: String,
    pub name: String,
    /// The content hash recorded when the migration was applied.
    pub hash: RecordedHash,
    /// RFC 3339, UTC.
    pub applied_at: Option<String>,
    /// `false` records a failed run.
    pub success: bool,
    /// What the ledger says about a failed run, when it says anything.
    pub error: Option<String>,
    /// envgate's ledger: how the row was written (`managed`, or
    /// `bundle:<id>` when a bundle applied it); None for other tools.
    pub via: Option<String>,
}
