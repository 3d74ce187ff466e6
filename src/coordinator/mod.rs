//! Coordinators that keep their state in an internal topic and change it only by replaying that topic's records:
//! the [`runtime`] they share, the group coordinator and the transaction coordinator.

pub mod group;
pub mod record_codec;
pub mod runtime;
pub mod transaction;
