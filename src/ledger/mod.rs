//! Ledger readers: the SQL that turns an environment's ledger table into
//! [`LedgerRow`](crate::core::ledger::LedgerRow)s.

pub mod envgate;
pub mod foreign;
