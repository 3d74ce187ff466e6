//! The ids of the group coordinator. Group ids, member ids and group instance ids are all strings on the wire and in
//! `__consumer_offsets`; inside the coordinator each has its own type, so that one cannot stand in for another. The
//! API handlers and the record codec convert at their edge.

use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_id!(
    /// A consumer group's `group.id`.
    GroupId
);

string_id!(
    /// A member of a classic group, as the coordinator named it (client id, "-", a UUID).
    MemberId
);

string_id!(
    /// KIP-345's `group.instance.id`, which makes a member static.
    GroupInstanceId
);

impl MemberId {
    /// Kafka's UNKNOWN_MEMBER_ID: what a member sends before the coordinator has named it.
    pub const UNKNOWN: MemberId = MemberId(String::new());
}
