//! Coordinators that keep their state in an internal topic and change it only by replaying that topic's records:
//! the [`runtime`] they share, and the group coordinator.

pub mod group;
pub mod runtime;
