//! Typed identifiers. Server-made ids are UUIDs (v7, so they sort by creation time); the client
//! picks its own [`ClientMsgId`] to make `send` idempotent.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A registered user.
    UserId
);
uuid_id!(
    /// A chat room.
    RoomId
);
uuid_id!(
    /// A message, unique across all rooms.
    MessageId
);
uuid_id!(
    /// A login session: one refresh-token family. Revoking it logs that device out.
    SessionId
);

macro_rules! client_id {
    ($(#[$doc:meta])* $name:ident, $error:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        #[doc = concat!("Why a [`", stringify!($name), "`] was refused.")]
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("{} must be 1 to 64 characters of A-Z a-z 0-9 _ . : -", $what)]
        pub struct $error;

        impl $name {
            /// Parses the id: 1 to 64 characters of `[A-Za-z0-9_.:-]`.
            pub fn parse(s: &str) -> Result<Self, $error> {
                if is_client_id(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err($error)
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                if is_client_id(&s) {
                    Ok(Self(s))
                } else {
                    Err($error)
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// The alphabet of client-chosen ids: 1 to 64 characters of `[A-Za-z0-9_.:-]` (a UUID fits).
fn is_client_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

client_id!(
    /// The id a client gives a `send` so that a retry is recognised: 1 to 64 characters of
    /// `[A-Za-z0-9_.:-]` (a UUID fits). Unique per author and room.
    ClientMsgId,
    InvalidClientMsgId,
    "client_msg_id"
);

client_id!(
    /// The id a client gives any other change it asks for (`edit`, `delete`, ...), so that a
    /// retry is recognised and answered like the first: the same alphabet as [`ClientMsgId`].
    /// Unique per user and room.
    ClientRef,
    InvalidClientRef,
    "ref"
);

impl From<Uuid> for ClientRef {
    /// A UUID's text always fits the alphabet: a server-made reference.
    fn from(id: Uuid) -> Self {
        Self(id.to_string())
    }
}

impl From<ClientMsgId> for ClientRef {
    /// A message's `client_msg_id` is the ref of its `send`.
    fn from(id: ClientMsgId) -> Self {
        Self(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn client_msg_id_accepts_exactly_its_alphabet(s in "\\PC{0,80}") {
            let ok = (1..=64).contains(&s.len())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
            prop_assert_eq!(ClientMsgId::parse(&s).is_ok(), ok);
        }

        #[test]
        fn client_msg_id_round_trips(s in "[A-Za-z0-9_.:-]{1,64}") {
            let id = ClientMsgId::parse(&s).unwrap();
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<ClientMsgId>(&json).unwrap(), id);
        }
    }

    #[test]
    fn uuid_ids_are_plain_strings_on_the_wire() {
        let id = RoomId(Uuid::nil());
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"00000000-0000-0000-0000-000000000000\""
        );
    }
}
