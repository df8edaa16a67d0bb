//! Events: the only way anything happens to a conversation.
//!
//! Every participant appends [`Event`]s to a conversation; each is wrapped in an
//! [`Envelope`] that carries its id (for idempotent handling), the conversation,
//! its position `seq` in that conversation (1, 2, 3, … with no gaps) and a time.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ConversationId, EventId};
use crate::model::{Attachment, Channel, Contact, Disposition, HandoffReason, Participant, Skill};

/// A conversation transcript line carried in a handoff context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// Who said it.
    pub from: Participant,
    /// What was said.
    pub text: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Everything a human needs to pick up a conversation without asking again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HandoffContext {
    /// The conversation so far.
    pub transcript: Vec<TranscriptLine>,
    /// Intent detected by the virtual agent, if any.
    pub intent: Option<String>,
    /// Language detected, e.g. `en` or `zh`.
    pub language: Option<String>,
    /// Knowledge passages shown or considered (article id and title).
    #[serde(default)]
    pub knowledge_hits: Vec<String>,
    /// A short human-readable summary.
    pub summary: Option<String>,
}

/// Something that happened in a conversation. The set is closed: consumers
/// match exhaustively, so adding a variant is a deliberate, reviewed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The first event of every conversation.
    ConversationOpened {
        /// Channel the contact came in on.
        channel: Channel,
        /// The customer.
        contact: Contact,
        /// Optional subject line (e-mail-like channels, web form).
        subject: Option<String>,
    },
    /// A message visible to the customer.
    MessageAdded {
        /// Author.
        from: Participant,
        /// Plain text (never HTML).
        text: String,
        /// Attached files.
        #[serde(default)]
        attachments: Vec<Attachment>,
        /// Sender-chosen id that makes retries idempotent (widget message id, provider message id).
        #[serde(default)]
        client_msg_id: Option<String>,
    },
    /// An internal note, visible to staff only.
    NoteAdded {
        /// Author.
        by: AgentId,
        /// Plain text.
        text: String,
    },
    /// The conversation was given to an agent.
    Assigned {
        /// The new assignee.
        agent: AgentId,
        /// Who assigned it (the agent themself, a supervisor, the router).
        by: Participant,
    },
    /// The assignee was removed.
    Unassigned {
        /// The previous assignee.
        agent: AgentId,
        /// Who removed them.
        by: Participant,
    },
    /// A human is needed.
    HandoffRequested {
        /// Why.
        reason: HandoffReason,
        /// Skill the router should look for.
        skill: Option<Skill>,
        /// Context for the receiving agent.
        context: HandoffContext,
    },
    /// Tags were added or removed.
    TagsChanged {
        /// Tags added.
        #[serde(default)]
        added: BTreeSet<String>,
        /// Tags removed.
        #[serde(default)]
        removed: BTreeSet<String>,
        /// Who changed them.
        by: Participant,
    },
    /// Someone started or stopped typing. Ephemeral: published, never stored.
    Typing {
        /// Who is typing.
        by: Participant,
        /// Started (true) or stopped (false).
        active: bool,
    },
    /// The conversation ended.
    ConversationClosed {
        /// The outcome.
        disposition: Disposition,
        /// Who closed it.
        by: Participant,
    },
    /// A closed conversation was opened again (e.g. the customer wrote again).
    ConversationReopened {
        /// Who reopened it.
        by: Participant,
    },
}

impl Event {
    /// The stable snake_case name of the variant (as in the JSON `type` field).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ConversationOpened { .. } => "conversation_opened",
            Event::MessageAdded { .. } => "message_added",
            Event::NoteAdded { .. } => "note_added",
            Event::Assigned { .. } => "assigned",
            Event::Unassigned { .. } => "unassigned",
            Event::HandoffRequested { .. } => "handoff_requested",
            Event::TagsChanged { .. } => "tags_changed",
            Event::Typing { .. } => "typing",
            Event::ConversationClosed { .. } => "conversation_closed",
            Event::ConversationReopened { .. } => "conversation_reopened",
        }
    }

    /// Ephemeral events are delivered live but never stored or replayed.
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Event::Typing { .. })
    }

    /// Whether the customer may see this event (notes and internal routing are staff-only).
    pub fn visible_to_customer(&self) -> bool {
        matches!(
            self,
            Event::ConversationOpened { .. }
                | Event::MessageAdded { .. }
                | Event::ConversationClosed { .. }
                | Event::ConversationReopened { .. }
                | Event::Typing { .. }
        )
    }
}

/// An event with its identity and position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id; a consumer that has seen it must ignore it.
    pub id: EventId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Position in the conversation, starting at 1 with no gaps.
    /// Ephemeral events carry the seq of the last stored event.
    pub seq: u64,
    /// When it happened (UTC).
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: Event,
}

impl Envelope {
    /// Wraps an event with a fresh id and the current time (millisecond
    /// precision, as stored).
    pub fn new(conversation_id: ConversationId, seq: u64, event: Event) -> Self {
        use chrono::SubsecRound;
        Self {
            id: EventId::new(),
            conversation_id,
            seq,
            at: Utc::now().trunc_subsecs(3),
            event,
        }
    }
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Active: with the bot, waiting in a queue, or with an agent.
    Open,
    /// Ended with a disposition.
    Closed,
}

/// The state of a conversation, derived only by folding its events
/// (see [`Conversation::apply`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Id.
    pub id: ConversationId,
    /// Channel.
    pub channel: Channel,
    /// The customer.
    pub contact: Contact,
    /// Subject line, if any.
    pub subject: Option<String>,
    /// Open or closed.
    pub status: ConversationStatus,
    /// The agent handling it.
    pub assignee: Option<AgentId>,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// Outcome of the last close.
    pub disposition: Option<Disposition>,
    /// Set while a handoff is pending (requested and not yet assigned).
    pub waiting_since: Option<DateTime<Utc>>,
    /// Skill requested by the last handoff.
    pub requested_skill: Option<Skill>,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// When it last closed (cleared on reopen).
    pub closed_at: Option<DateTime<Utc>>,
    /// When the last stored event happened.
    pub updated_at: DateTime<Utc>,
    /// Seq of the last stored event.
    pub last_seq: u64,
    /// Start of the last message, for list previews.
    pub last_message_preview: Option<String>,
    /// Number of customer-visible messages.
    pub message_count: u64,
}

/// Why an event could not be applied to a conversation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The first event of a conversation must be `conversation_opened`.
    #[error("conversation {0} must start with conversation_opened")]
    NotOpened(ConversationId),
    /// A second `conversation_opened`.
    #[error("conversation {0} is already open")]
    AlreadyOpened(ConversationId),
    /// Seq is not the next one.
    #[error("event seq {got} does not follow {expected_after} in conversation {conversation}")]
    OutOfOrder {
        /// The conversation.
        conversation: ConversationId,
        /// Last applied seq.
        expected_after: u64,
        /// Seq of the rejected event.
        got: u64,
    },
    /// The event belongs elsewhere.
    #[error("event for conversation {got} applied to {expected}")]
    WrongConversation {
        /// Conversation being folded.
        expected: ConversationId,
        /// Conversation of the event.
        got: ConversationId,
    },
}

const PREVIEW_CHARS: usize = 140;

impl Conversation {
    /// Starts a conversation from its first event.
    pub fn open(env: &Envelope) -> Result<Self, ApplyError> {
        let Event::ConversationOpened {
            channel,
            contact,
            subject,
        } = &env.event
        else {
            return Err(ApplyError::NotOpened(env.conversation_id));
        };
        if env.seq != 1 {
            return Err(ApplyError::OutOfOrder {
                conversation: env.conversation_id,
                expected_after: 0,
                got: env.seq,
            });
        }
        Ok(Self {
            id: env.conversation_id,
            channel: *channel,
            contact: contact.clone(),
            subject: subject.clone(),
            status: ConversationStatus::Open,
            assignee: None,
            tags: BTreeSet::new(),
            disposition: None,
            waiting_since: None,
            requested_skill: None,
            opened_at: env.at,
            closed_at: None,
            updated_at: env.at,
            last_seq: 1,
            last_message_preview: None,
            message_count: 0,
        })
    }

    /// Folds a whole history (in seq order) into state.
    pub fn replay<'a>(
        events: impl IntoIterator<Item = &'a Envelope>,
    ) -> Result<Option<Self>, ApplyError> {
        let mut state: Option<Self> = None;
        for env in events {
            match state.as_mut() {
                None => state = Some(Self::open(env)?),
                Some(c) => c.apply(env)?,
            }
        }
        Ok(state)
    }

    /// Applies the next stored event. Ephemeral events are ignored;
    /// an event already applied (seq ≤ last_seq) is ignored, which makes
    /// at-least-once delivery safe.
    pub fn apply(&mut self, env: &Envelope) -> Result<(), ApplyError> {
        if env.conversation_id != self.id {
            return Err(ApplyError::WrongConversation {
                expected: self.id,
                got: env.conversation_id,
            });
        }
        if env.event.is_ephemeral() || env.seq <= self.last_seq {
            return Ok(());
        }
        if env.seq != self.last_seq + 1 {
            return Err(ApplyError::OutOfOrder {
                conversation: self.id,
                expected_after: self.last_seq,
                got: env.seq,
            });
        }
        match &env.event {
            Event::ConversationOpened { .. } => return Err(ApplyError::AlreadyOpened(self.id)),
            Event::MessageAdded { text, .. } => {
                self.message_count += 1;
                self.last_message_preview = Some(text.chars().take(PREVIEW_CHARS).collect());
            }
            Event::NoteAdded { .. } | Event::Typing { .. } => {}
            Event::Assigned { agent, .. } => {
                self.assignee = Some(*agent);
                self.waiting_since = None;
            }
            Event::Unassigned { agent, .. } => {
                if self.assignee == Some(*agent) {
                    self.assignee = None;
                }
            }
            Event::HandoffRequested { skill, .. } => {
                self.waiting_since.get_or_insert(env.at);
                self.requested_skill = skill.clone();
            }
            Event::TagsChanged { added, removed, .. } => {
                self.tags.extend(added.iter().cloned());
                for t in removed {
                    self.tags.remove(t);
                }
            }
            Event::ConversationClosed { disposition, .. } => {
                self.status = ConversationStatus::Closed;
                self.disposition = Some(*disposition);
                self.closed_at = Some(env.at);
                self.waiting_since = None;
            }
            Event::ConversationReopened { .. } => {
                self.status = ConversationStatus::Open;
                self.closed_at = None;
            }
        }
        self.last_seq = env.seq;
        self.updated_at = env.at;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ContactId;

    fn opened(id: ConversationId) -> Envelope {
        Envelope::new(
            id,
            1,
            Event::ConversationOpened {
                channel: Channel::WebChat,
                contact: Contact::anonymous(),
                subject: None,
            },
        )
    }

    #[test]
    fn folds_a_history() {
        let id = ConversationId::new();
        let agent = AgentId::new();
        let customer = ContactId::new();
        let events = vec![
            opened(id),
            Envelope::new(
                id,
                2,
                Event::MessageAdded {
                    from: Participant::Customer(customer),
                    text: "hello".into(),
                    attachments: vec![],
                    client_msg_id: None,
                },
            ),
            Envelope::new(
                id,
                3,
                Event::Assigned {
                    agent,
                    by: Participant::Agent(agent),
                },
            ),
            Envelope::new(
                id,
                4,
                Event::ConversationClosed {
                    disposition: Disposition::Resolved,
                    by: Participant::Agent(agent),
                },
            ),
        ];
        let c = Conversation::replay(&events)
            .expect("valid")
            .expect("non-empty");
        assert_eq!(c.status, ConversationStatus::Closed);
        assert_eq!(c.assignee, Some(agent));
        assert_eq!(c.message_count, 1);
        assert_eq!(c.last_message_preview.as_deref(), Some("hello"));
        assert_eq!(c.disposition, Some(Disposition::Resolved));
        assert_eq!(c.last_seq, 4);
    }

    #[test]
    fn duplicates_are_ignored_and_gaps_rejected() {
        let id = ConversationId::new();
        let first = opened(id);
        let mut c = Conversation::open(&first).expect("open");
        let msg = Envelope::new(
            id,
            2,
            Event::NoteAdded {
                by: AgentId::new(),
                text: "n".into(),
            },
        );
        c.apply(&msg).expect("apply");
        c.apply(&msg).expect("duplicate is a no-op");
        assert_eq!(c.last_seq, 2);
        let gap = Envelope::new(
            id,
            4,
            Event::ConversationReopened {
                by: Participant::System,
            },
        );
        assert!(matches!(c.apply(&gap), Err(ApplyError::OutOfOrder { .. })));
        assert!(matches!(
            Conversation::open(&msg),
            Err(ApplyError::NotOpened(_))
        ));
    }

    #[test]
    fn event_json_is_tagged_and_stable() {
        let e = Event::Typing {
            by: Participant::Bot,
            active: true,
        };
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["type"], "typing");
        assert_eq!(json["by"]["kind"], "bot");
        assert!(e.is_ephemeral());
        assert_eq!(e.kind(), "typing");
    }
}
