//! Domain values: channels, skills, phone numbers, contacts and participants.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ContactId};

/// The channel a conversation arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The embeddable web chat widget.
    WebChat,
    /// A phone call (SIP trunk or SIP phone).
    Voice,
    /// WhatsApp Cloud API.
    WhatsApp,
    /// WeChat Official Account.
    WeChat,
    /// SMS through a Twilio-compatible provider.
    Sms,
    /// Telegram bot.
    Telegram,
}

impl Channel {
    /// All channels, in display order.
    pub const ALL: [Channel; 6] = [
        Channel::WebChat,
        Channel::Voice,
        Channel::WhatsApp,
        Channel::WeChat,
        Channel::Sms,
        Channel::Telegram,
    ];

    /// The stable snake_case name used in APIs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::WebChat => "web_chat",
            Channel::Voice => "voice",
            Channel::WhatsApp => "whats_app",
            Channel::WeChat => "we_chat",
            Channel::Sms => "sms",
            Channel::Telegram => "telegram",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownValue::new("channel", s))
    }
}

/// A string that is not one of the known values of an enumeration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}: {value:?}")]
pub struct UnknownValue {
    /// What was being parsed.
    pub kind: &'static str,
    /// The rejected value (truncated).
    pub value: String,
}

impl UnknownValue {
    pub(crate) fn new(kind: &'static str, value: &str) -> Self {
        Self {
            kind,
            value: value.chars().take(64).collect(),
        }
    }
}

/// A routing skill, e.g. `billing` or `technical-support`.
///
/// Lowercase ASCII letters, digits, `-` and `_`, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Skill(String);

/// A skill name that breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid skill {0:?}: use 1-64 lowercase letters, digits, '-' or '_'")]
pub struct InvalidSkill(pub String);

impl Skill {
    /// Validates and wraps a skill name.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidSkill> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(name))
        } else {
            Err(InvalidSkill(name.chars().take(64).collect()))
        }
    }
    /// The skill's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Skill {
    type Error = InvalidSkill;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Skill::new(value)
    }
}

impl From<Skill> for String {
    fn from(value: Skill) -> Self {
        value.0
    }
}

impl fmt::Display for Skill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+4930123456`), validated with libphonenumber's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// A string that is not a valid international phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid phone number {0:?}: expected an international number such as +14155550123")]
pub struct InvalidPhoneNumber(pub String);

impl PhoneNumber {
    /// Parses an international number (leading `+`, spaces and dashes allowed) and normalises it to E.164.
    pub fn parse(input: &str) -> Result<Self, InvalidPhoneNumber> {
        let err = || InvalidPhoneNumber(input.chars().take(32).collect());
        let parsed = phonenumber::parse(None, input).map_err(|_| err())?;
        if !phonenumber::is_valid(&parsed) {
            return Err(err());
        }
        Ok(Self(
            parsed.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }
    /// The E.164 string, e.g. `+14155550123`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidPhoneNumber;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A customer as known when a conversation opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Stable id of the customer.
    pub id: ContactId,
    /// Name to show agents, as the customer gave it (never trusted as HTML).
    pub display_name: Option<String>,
    /// Phone number, when the channel provides one.
    pub phone: Option<PhoneNumber>,
    /// E-mail address, when given.
    pub email: Option<String>,
    /// Locale hint such as `en` or `zh-CN`.
    pub locale: Option<String>,
    /// Free-form profile attributes (plan, CRM id, …).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Contact {
    /// A contact with only an id.
    pub fn anonymous() -> Self {
        Self {
            id: ContactId::new(),
            display_name: None,
            phone: None,
            email: None,
            locale: None,
            attributes: BTreeMap::new(),
        }
    }
}

/// Who did something in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Participant {
    /// The customer.
    Customer(ContactId),
    /// The virtual agent (LLM IVR).
    Bot,
    /// A human agent or other staff user.
    Agent(AgentId),
    /// Switchboard itself (timeouts, routing, …).
    System,
}

/// Metadata of a file attached to a message; the bytes live in blob storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name as given by the sender.
    pub name: String,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the bytes can be fetched (relative URL or provider media id).
    pub url: String,
}

/// How a conversation ended, chosen by the agent (or the bot) on close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// The customer's need was met.
    Resolved,
    /// Resolved by the virtual agent without a human.
    ResolvedByBot,
    /// Needs a follow-up (callback, e-mail, ticket).
    FollowUp,
    /// The customer left before being helped.
    Abandoned,
    /// Spam, test or wrong number.
    Spam,
    /// Handed to another team or system outside Switchboard.
    Transferred,
}

impl Disposition {
    /// All dispositions, in display order.
    pub const ALL: [Disposition; 6] = [
        Disposition::Resolved,
        Disposition::ResolvedByBot,
        Disposition::FollowUp,
        Disposition::Abandoned,
        Disposition::Spam,
        Disposition::Transferred,
    ];
}

/// Why a conversation is handed to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The customer asked for a person.
    CustomerRequest,
    /// The virtual agent could not answer from knowledge.
    LowConfidence,
    /// The request needs identity verification or an account action.
    AccountAction,
    /// Anger, complaint or legal threat.
    Sentiment,
    /// Repeated misunderstanding.
    Misunderstanding,
    /// An agent transferred the conversation.
    Transfer,
    /// The virtual agent is switched off for this channel or outside hours.
    BotDisabled,
}
