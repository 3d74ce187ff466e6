//! Coordinators that keep their state in an internal topic and change it only by replaying that topic's records.

pub mod group;
