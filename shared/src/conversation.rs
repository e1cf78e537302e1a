//! The vocabulary of conversations: a room's kind and visibility, members' roles, topics,
//! reaction emoji, replies and `@mentions`. Parsed here once, for the server and the client.

use crate::domain::DomainError;
use crate::ids::{MessageId, UserId};
use crate::protocol::UserPublic;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether anyone may find and join a room, or only those its owner or admins add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed in `discover`; anyone may join.
    #[default]
    Public,
    /// Seen only by its members; people join by being added.
    Private,
}

/// What a conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// A named room with an owner.
    #[default]
    Room,
    /// A direct conversation between 2 to 9 people: private, no name, no owner, fixed members.
    Dm,
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RoomRole {
    /// Takes part.
    Member,
    /// Adds, removes and bans members, edits the name and topic, pins in private rooms.
    Admin,
    /// The one who created the room (or was handed it): all an admin may, and changes roles.
    Owner,
}

impl RoomRole {
    /// Whether the role manages the room (adds, removes, bans, renames).
    pub fn manages(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }

    /// The role as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Reads a stored role.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// The most characters of a room topic.
pub const MAX_TOPIC_CHARS: usize = 250;

/// A room's topic: up to 250 characters on one line (empty clears it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomTopic(String);

impl RoomTopic {
    /// Parses a topic, trimming surrounding whitespace.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        if s.chars().count() > MAX_TOPIC_CHARS || s.chars().any(char::is_control) {
            return Err(DomainError::Topic);
        }
        Ok(Self(s.to_owned()))
    }

    /// The topic, or `None` when it is empty.
    pub fn into_option(self) -> Option<String> {
        (!self.0.is_empty()).then_some(self.0)
    }
}

/// A reaction: exactly one Unicode emoji (a single grapheme, with its skin tone or ZWJ
/// sequence), held in its fully-qualified form so `❤` and `❤️` are the same reaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
#[serde(try_from = "String", into = "String")]
pub struct Emoji(String);

impl Emoji {
    /// Parses one emoji.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match emojis::get(s) {
            Some(e) => Ok(Self(e.as_str().to_owned())),
            None => Err(DomainError::Emoji),
        }
    }

    /// The emoji.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Emoji {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Emoji> for String {
    fn from(e: Emoji) -> Self {
        e.0
    }
}

impl fmt::Display for Emoji {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most people a direct conversation has besides its creator.
pub const MAX_DM_OTHERS: usize = 8;

/// The most distinct `@mentions` one message resolves.
pub const MAX_MENTIONS: usize = 20;

/// The usernames `@mentioned` in a message body, case-folded, in order of appearance, each
/// once, at most [`MAX_MENTIONS`]. A mention is `@` followed by a username (3-32 characters of
/// `[A-Za-z0-9_-]`), not preceded by a letter, digit, `_`, `-` or `.` (so `ann@example.com` is
/// an address, not a mention), and not inside `` `code` ``.
pub fn mentioned_usernames(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_code = false;
    let mut prev: Option<char> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            in_code = !in_code;
        } else if c == '@'
            && !in_code
            && !prev.is_some_and(|p| p.is_alphanumeric() || matches!(p, '_' | '-' | '.'))
        {
            let rest = &body[i + 1..];
            let len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'))
                .unwrap_or(rest.len());
            if (3..=32).contains(&len) {
                let name = rest[..len].to_ascii_lowercase();
                if !out.contains(&name) {
                    out.push(name);
                    if out.len() == MAX_MENTIONS {
                        break;
                    }
                }
                for _ in 0..len {
                    chars.next();
                }
                prev = rest[..len].chars().last();
                continue;
            }
        }
        prev = Some(c);
    }
    out
}

/// The most characters of a reply's excerpt of the message it answers.
pub const EXCERPT_CHARS: usize = 120;

/// The start of a message's text, for a reply's quote: whitespace runs folded into one space,
/// at most [`EXCERPT_CHARS`] characters, with `…` when cut.
pub fn excerpt(body: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    for word in body.split_whitespace() {
        if n > 0 {
            out.push(' ');
            n += 1;
        }
        for c in word.chars() {
            if n == EXCERPT_CHARS {
                out.push('…');
                return out;
            }
            out.push(c);
            n += 1;
        }
    }
    out
}

/// What a reply quotes of the message it answers (as that message is now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReplyTo {
    /// The message answered.
    pub id: MessageId,
    /// Who wrote it.
    pub author: UserPublic,
    /// The start of its text (empty once it is deleted).
    pub excerpt: String,
    /// Whether it has been deleted since.
    #[serde(default)]
    pub deleted: bool,
}

impl ReplyTo {
    /// The quote of `parent` as it is now.
    pub fn of(parent: &crate::protocol::ChatMessage) -> Self {
        let deleted = parent.is_deleted();
        Self {
            id: parent.id,
            author: parent.author.clone(),
            excerpt: if deleted {
                String::new()
            } else {
                excerpt(&parent.body)
            },
            deleted,
        }
    }
}

/// The reactions with one emoji on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReactionCount {
    /// The emoji.
    pub emoji: Emoji,
    /// How many people reacted with it.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub count: i64,
    /// Whether you did.
    pub me: bool,
    /// Who did, in the order they reacted (so `reaction` entries can be applied exactly).
    pub users: Vec<UserId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mentions_are_words_after_an_at_sign() {
        assert_eq!(
            mentioned_usernames("hi @Ann and @bob_2, see @ann again"),
            ["ann", "bob_2"]
        );
        assert!(mentioned_usernames("mail ann@example.com").is_empty());
        assert!(mentioned_usernames("`@ann` is code, @x is short").is_empty());
        assert_eq!(mentioned_usernames("(@carl) @dave."), ["carl", "dave"]);
        assert_eq!(mentioned_usernames("@@eve"), ["eve"]);
        let many: String = (0..30).map(|i| format!("@user{i} ")).collect();
        assert_eq!(mentioned_usernames(&many).len(), MAX_MENTIONS);
    }

    #[test]
    fn one_emoji_only_in_its_canonical_form() {
        assert_eq!(
            Emoji::parse("❤").unwrap(),
            Emoji::parse("❤\u{fe0f}").unwrap()
        );
        for ok in [
            "👍",
            "👍🏽",
            "👨\u{200d}👩\u{200d}👧",
            "🇫🇷",
            "1\u{fe0f}\u{20e3}",
        ] {
            assert!(Emoji::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a", "👍👍", ":+1:", " 👍", "#", "<b>"] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn excerpts_fold_whitespace_and_cut() {
        assert_eq!(excerpt("  a\n\nb\tc "), "a b c");
        let long = "x".repeat(200);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }

    #[test]
    fn topics_are_one_short_line() {
        assert_eq!(
            RoomTopic::parse("  plans ").unwrap().into_option(),
            Some("plans".into())
        );
        assert_eq!(RoomTopic::parse("").unwrap().into_option(), None);
        assert!(RoomTopic::parse("a\nb").is_err());
        assert!(RoomTopic::parse(&"t".repeat(MAX_TOPIC_CHARS + 1)).is_err());
    }

    proptest! {
        #[test]
        fn mention_parsing_never_panics(s in "\\PC{0,200}") {
            let names = mentioned_usernames(&s);
            prop_assert!(names.len() <= MAX_MENTIONS);
            for n in names {
                prop_assert!((3..=32).contains(&n.len()));
            }
        }

        #[test]
        fn emoji_parsing_never_panics(s in "\\PC{0,8}") {
            let _ = Emoji::parse(&s);
        }
    }
}
