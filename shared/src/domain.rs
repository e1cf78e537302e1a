//! Domain values, parsed at the boundary. Each type has private fields and one `parse`
//! constructor, so a value past the HTTP or WebSocket edge is already valid.
//!
//! Lengths count Unicode scalar values (what a person calls characters), not bytes.
//!
//! Against look-alikes and invisible text: names and e-mail addresses refuse format characters
//! (Unicode category Cf: bidi overrides such as RLO, zero-width spaces and joiners, the BOM);
//! room names and message bodies need a visible character ([`is_visible`]); e-mail addresses
//! must keep each part (local part, each domain label) in a single script, so a Cyrillic `а`
//! cannot pass for a Latin `a`; and usernames and room names are unique by their UTS #39
//! confusable [`skeleton`], so `aIice` cannot join a server that has `alice`.

use serde::{Deserialize, Serialize};
use std::fmt;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
use unicode_security::MixedScript;

/// Whether `c` is a format character (category Cf): invisible, and able to reorder or hide
/// the text around it.
pub fn is_format(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
}

/// Whether `c` shows something: a letter, number, punctuation or symbol, other than the few of
/// those that render blank (Hangul fillers, the braille blank).
pub fn is_visible(c: char) -> bool {
    const BLANK: [char; 5] = ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{2800}'];
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    ) && !BLANK.contains(&c)
}

/// The key under which names must be unique: the UTS #39 confusable skeleton, lower-cased and
/// skeletonised again, so that look-alikes (`aIice`, `a1ice`, `AIice` for `alice`; Cyrillic
/// `раураl` for `paypal`) share it while names that merely differ do not.
pub fn skeleton(s: &str) -> String {
    use unicode_security::confusable_detection::skeleton as uts39;
    let once: String = uts39(s).collect();
    uts39(&once.to_lowercase()).collect()
}

/// Why a domain value was refused. The message is safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Username outside 3-32 characters of `[A-Za-z0-9_-]`.
    #[error("username must be 3 to 32 characters of letters, digits, '_' or '-'")]
    Username,
    /// Not an email address.
    #[error("email must look like name@example.com (at most 254 characters)")]
    Email,
    /// Password shorter than 8 or longer than 128 characters.
    #[error("password must be 8 to 128 characters")]
    Password,
    /// Room name empty, too long, without a visible character, or with control or format
    /// characters.
    #[error("room name must be 1 to 64 printable characters, not all invisible, without control or formatting characters")]
    RoomName,
    /// Message body empty after trimming.
    #[error("message is empty")]
    EmptyBody,
    /// Message body with no visible character (only zero-width or blank ones).
    #[error("message has no visible character")]
    InvisibleBody,
    /// Message body over 4000 characters.
    #[error("message is longer than 4000 characters")]
    LongBody,
    /// Message body holding a control character other than newline and tab.
    #[error("message contains a control character")]
    ControlInBody,
    /// Room topic too long or not on one line.
    #[error("topic must be at most 250 characters on one line")]
    Topic,
    /// Not exactly one emoji.
    #[error("a reaction must be exactly one emoji")]
    Emoji,
}

macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned `String`.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

/// A username: 3 to 32 characters of `[A-Za-z0-9_-]`. Unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);
string_value!(Username);

impl Username {
    /// Parses a username.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let ok = (3..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(s.to_owned())).ok_or(DomainError::Username)
    }

    /// The case-folded form used for uniqueness and lookups.
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The look-alike key, unique among users ([`skeleton`]).
    pub fn skeleton(&self) -> String {
        skeleton(&self.0)
    }
}

/// An email address: trimmed, at most 254 characters, one `@` with a non-empty local part
/// and a dotted domain, no spaces, control or format characters, and the local part and each
/// domain label in one script. Unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
string_value!(Email);

impl Email {
    /// Parses an email address.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        if s.chars().count() > 254
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || is_format(c))
        {
            return Err(DomainError::Email);
        }
        let (local, domain) = s.split_once('@').ok_or(DomainError::Email)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || local.chars().count() > 64 || !domain_ok {
            return Err(DomainError::Email);
        }
        // `pаypal@example.com` with a Cyrillic `а`: each part must be of one script.
        if !local.is_single_script() || !domain.split('.').all(|label| label.is_single_script()) {
            return Err(DomainError::Email);
        }
        Ok(Self(s.to_owned()))
    }

    /// The case-folded form used for uniqueness and lookups.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A password: 8 to 128 characters, kept exactly as typed (never trimmed). Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Parses a password.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let n = s.chars().count();
        if (8..=128).contains(&n) {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::Password)
        }
    }

    /// The secret itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A room name: trimmed, 1 to 64 characters, at least one visible, no control or format
/// characters. Unique regardless of case and of look-alikes ([`skeleton`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);
string_value!(RoomName);

impl RoomName {
    /// Parses a room name.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        let n = s.chars().count();
        if (1..=64).contains(&n)
            && !s.chars().any(|c| c.is_control() || is_format(c))
            && s.chars().any(is_visible)
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::RoomName)
        }
    }

    /// The case-folded form used for uniqueness and search.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }

    /// The look-alike key, unique among rooms ([`skeleton`]).
    pub fn skeleton(&self) -> String {
        skeleton(&self.0)
    }
}

/// The most characters a message body may have.
pub const MAX_BODY_CHARS: usize = 4000;

/// A message body: 1 to 4000 characters after trimming, at least one visible ([`is_visible`]),
/// no control characters but newline and tab. Format characters are allowed (emoji sequences
/// and right-to-left text need them), as long as something shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
#[serde(try_from = "String", into = "String")]
pub struct MessageBody(String);
string_value!(MessageBody);

impl MessageBody {
    /// Parses a message body, trimming surrounding whitespace.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(DomainError::EmptyBody);
        }
        if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(DomainError::ControlInBody);
        }
        if s.chars().count() > MAX_BODY_CHARS {
            return Err(DomainError::LongBody);
        }
        if !s.chars().any(is_visible) {
            return Err(DomainError::InvisibleBody);
        }
        Ok(Self(s.to_owned()))
    }

    /// Parses the text sent with an attachment: like [`MessageBody::parse`], but it may be empty.
    pub fn parse_caption(s: &str) -> Result<Self, DomainError> {
        if s.trim().is_empty() {
            return Ok(Self(String::new()));
        }
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn username_accepts_exactly_its_alphabet(s in "\\PC{0,40}") {
            let expected = (3..=32).contains(&s.len())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            prop_assert_eq!(Username::parse(&s).is_ok(), expected);
        }

        #[test]
        fn valid_usernames_round_trip(s in "[A-Za-z0-9_-]{3,32}") {
            let u = Username::parse(&s).unwrap();
            prop_assert_eq!(u.as_str(), s.as_str());
            let json = serde_json::to_string(&u).unwrap();
            prop_assert_eq!(serde_json::from_str::<Username>(&json).unwrap(), u);
        }

        #[test]
        fn emails_of_the_usual_shape_parse(local in "[a-z0-9._+-]{1,30}", host in "[a-z0-9-]{1,20}", tld in "[a-z]{2,6}") {
            let s = format!("{local}@{host}.{tld}");
            let parsed = Email::parse(&s).unwrap();
            prop_assert_eq!(parsed.as_str(), s.as_str());
        }

        #[test]
        fn email_never_accepts_spaces_or_missing_at(s in "\\PC{0,60}") {
            let parsed = Email::parse(&s);
            if let Ok(e) = parsed {
                prop_assert!(e.as_str().contains('@'));
                prop_assert!(!e.as_str().chars().any(char::is_whitespace));
                prop_assert!(e.as_str().chars().count() <= 254);
            }
        }

        #[test]
        fn password_length_bounds(s in "\\PC{0,140}") {
            let n = s.chars().count();
            prop_assert_eq!(Password::parse(&s).is_ok(), (8..=128).contains(&n));
        }

        #[test]
        fn room_names_are_trimmed_and_bounded(s in "\\PC{0,80}") {
            match RoomName::parse(&s) {
                Ok(name) => {
                    let n = name.as_str().chars().count();
                    prop_assert!((1..=64).contains(&n));
                    prop_assert_eq!(name.as_str(), s.trim());
                }
                Err(_) => {
                    let t = s.trim();
                    let n = t.chars().count();
                    prop_assert!(
                        n == 0
                            || n > 64
                            || t.chars().any(|c| c.is_control() || is_format(c))
                            || !t.chars().any(is_visible)
                    );
                }
            }
        }

        #[test]
        fn bodies_are_trimmed_bounded_and_clean(s in "(\\PC|\\n|\\t|\\r|\\u{0}|\\u{7}){0,4100}") {
            match MessageBody::parse(&s) {
                Ok(b) => {
                    let n = b.as_str().chars().count();
                    prop_assert!((1..=MAX_BODY_CHARS).contains(&n));
                    prop_assert_eq!(b.as_str(), s.trim());
                    prop_assert!(!b.as_str().chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
                }
                Err(_) => {
                    let t = s.trim();
                    prop_assert!(
                        t.is_empty()
                            || t.chars().count() > MAX_BODY_CHARS
                            || t.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
                            || !t.chars().any(is_visible)
                    );
                }
            }
        }
    }

    #[test]
    fn body_edges() {
        assert_eq!(MessageBody::parse("  \n\t "), Err(DomainError::EmptyBody));
        assert!(MessageBody::parse(&"é".repeat(4000)).is_ok());
        assert_eq!(
            MessageBody::parse(&"é".repeat(4001)),
            Err(DomainError::LongBody)
        );
        assert_eq!(
            MessageBody::parse("hi\u{7}there"),
            Err(DomainError::ControlInBody)
        );
        assert_eq!(
            MessageBody::parse(" line one\nline\ttwo ")
                .unwrap()
                .as_str(),
            "line one\nline\ttwo"
        );
    }

    #[test]
    fn invisible_and_reordering_characters_are_refused() {
        for name in [
            "evil\u{202E}gnp.exe",
            "gen\u{200B}eral",
            "\u{200B}\u{200D}",
            "\u{3164}",
            "\u{2800}\u{2800}",
        ] {
            assert_eq!(
                RoomName::parse(name),
                Err(DomainError::RoomName),
                "{name:?}"
            );
        }
        assert!(RoomName::parse("café ☕").is_ok());
        for body in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}\u{2060}",
            "\u{FEFF}",
            "\u{3164}",
        ] {
            assert_eq!(
                MessageBody::parse(body),
                Err(DomainError::InvisibleBody),
                "{body:?}"
            );
        }
        assert!(
            MessageBody::parse("👩\u{200D}💻 on it").is_ok(),
            "ZWJ emoji"
        );
        assert!(
            MessageBody::parse("\u{200F}שלום").is_ok(),
            "RTL mark with text"
        );
        for email in [
            "\u{430}lice@example.com",
            "alice@ex\u{430}mple.com",
            "al\u{200B}ice@example.com",
            "alice@example.com\u{202E}",
            "alice\u{2060}@example.com",
        ] {
            assert_eq!(Email::parse(email), Err(DomainError::Email), "{email:?}");
        }
        assert!(
            Email::parse("почта@пример.рф").is_ok(),
            "one script per part"
        );
    }

    #[test]
    fn look_alike_names_share_a_skeleton() {
        let key = |s: &str| Username::parse(s).unwrap().skeleton();
        assert_eq!(key("aIice"), key("alice"));
        assert_eq!(key("AIice"), key("alice"));
        assert_eq!(key("a1ice"), key("alice"));
        assert_eq!(key("rnary"), key("mary"));
        assert_ne!(key("alice"), key("alex"));
        assert_ne!(key("bob"), key("rob"));
        let room = |s: &str| RoomName::parse(s).unwrap().skeleton();
        assert_eq!(room("\u{440}\u{430}\u{443}\u{440}\u{430}l"), room("paypal"));
        assert_eq!(room("General"), room("generaI"));
        assert_ne!(room("general"), room("random"));
    }

    #[test]
    fn password_debug_hides_the_secret() {
        let p = Password::parse("correct horse").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
