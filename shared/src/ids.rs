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

/// The id a client gives a `send` so that a retry is recognised: 1 to 64 characters of
/// `[A-Za-z0-9_.:-]` (a UUID fits). Unique per author and room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
#[serde(try_from = "String", into = "String")]
pub struct ClientMsgId(String);

/// Why a [`ClientMsgId`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client_msg_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -")]
pub struct InvalidClientMsgId;

impl ClientMsgId {
    /// Parses a client message id.
    pub fn parse(s: &str) -> Result<Self, InvalidClientMsgId> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidClientMsgId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientMsgId {
    type Error = InvalidClientMsgId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ClientMsgId> for String {
    fn from(id: ClientMsgId) -> Self {
        id.0
    }
}

impl fmt::Display for ClientMsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
