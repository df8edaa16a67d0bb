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

    /// The conversation waits in a routing queue. Appended when it enters a
    /// queue and whenever its position or expected wait changes, so the
    /// customer can be told where they stand.
    Queued {
        /// The queue.
        queue: String,
        /// 1 for the next contact to be served; `None` until known.
        #[serde(default)]
        position: Option<u32>,
        /// Expected wait in seconds; `None` when nobody staffs the queue.
        #[serde(default)]
        ewt_secs: Option<u64>,
    },
    /// The router offered the conversation to one agent until `expires_at`.
    Offered {
        /// The offer, unique across router restarts.
        offer: String,
        /// The agent offered it.
        agent: AgentId,
        /// The queue it waited in.
        queue: String,
        /// When the offer lapses.
        expires_at: DateTime<Utc>,
        /// Why this agent, in words (strategy, skills, idle time).
        why: String,
    },
    /// The agent answered an offer. An acceptance is followed by
    /// [`Event::Assigned`] from the router.
    OfferAnswered {
        /// The offer.
        offer: String,
        /// The agent answering.
        agent: AgentId,
        /// Accepted or declined.
        accepted: bool,
    },
    /// An offer ended without being taken: declined, timed out, the agent
    /// left, or the customer left.
    OfferWithdrawn {
        /// The offer.
        offer: String,
        /// The agent it was offered to.
        agent: AgentId,
        /// `declined`, `timed_out`, `agent_unavailable`, `contact_left`, `router_restarted`.
        reason: String,
    },
    /// The conversation left routing without an agent (queue closed,
    /// voicemail or callback offered, queue unknown).
    Dequeued {
        /// The queue it left.
        queue: String,
        /// Why, machine-readable (`closed`, `voicemail`, `callback`, `no_queue`).
        reason: String,
    },
    /// How the virtual agent handled one customer message: what it
    /// understood, which knowledge it used and why it answered, asked back,
    /// declined or escalated. Shown to staff, never to the customer.
    BotTurn {
        /// Detected intent.
        intent: String,
        /// `answer`, `clarify`, `escalate`, `decline` or `small_talk`.
        decision: String,
        /// Why, in words.
        reason: String,
        /// Knowledge cited in the reply, as `title (article id, version)`.
        #[serde(default)]
        citations: Vec<String>,
        /// The full turn trace (understanding, passages and scores, timings).
        #[serde(default)]
        trace: serde_json::Value,
    },
    /// A phone call of this conversation reached us (it is ringing).
    CallStarted {
        /// The SIP Call-ID.
        call_id: String,
        /// Caller (E.164 when the number parses, else the SIP user).
        from: String,
        /// The number or address called.
        to: String,
    },
    /// We answered the call.
    CallAnswered {
        /// The SIP Call-ID.
        call_id: String,
    },
    /// The caller pressed keys (collected digits of one IVR prompt).
    DtmfReceived {
        /// The SIP Call-ID.
        call_id: String,
        /// The digits, `0-9*#A-D`.
        digits: String,
    },
    /// The call moved through the IVR flow.
    IvrStep {
        /// The flow node entered.
        node: String,
        /// What happened there, in words.
        detail: String,
    },
    /// A recording of this conversation is stored (the call, or a voicemail).
    RecordingAvailable {
        /// Recording id (for `/api/recordings/{id}`).
        recording_id: String,
        /// The SIP Call-ID.
        call_id: String,
        /// `call` or `voicemail`.
        kind: String,
        /// Length in seconds.
        duration_secs: u64,
    },
    /// The call ended.
    CallEnded {
        /// The SIP Call-ID.
        call_id: String,
        /// `caller_hung_up`, `we_hung_up`, `cancelled`, `rejected`, `timeout`.
        reason: String,
        /// Seconds from answer to end (0 when never answered).
        duration_secs: u64,
    },
    /// The agent finished the after-contact work of this conversation.
    WrapUpDone {
        /// The agent.
        agent: AgentId,
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
            Event::Queued { .. } => "queued",
            Event::Offered { .. } => "offered",
            Event::OfferAnswered { .. } => "offer_answered",
            Event::OfferWithdrawn { .. } => "offer_withdrawn",
            Event::Dequeued { .. } => "dequeued",
            Event::WrapUpDone { .. } => "wrap_up_done",
            Event::BotTurn { .. } => "bot_turn",
            Event::CallStarted { .. } => "call_started",
            Event::CallAnswered { .. } => "call_answered",
            Event::DtmfReceived { .. } => "dtmf_received",
            Event::IvrStep { .. } => "ivr_step",
            Event::RecordingAvailable { .. } => "recording_available",
            Event::CallEnded { .. } => "call_ended",
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
                | Event::Queued { .. }
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
    /// The routing queue the conversation waits in, if any.
    #[serde(default)]
    pub queue: Option<String>,
    /// Its position there (1 = next), when known.
    #[serde(default)]
    pub queue_position: Option<u32>,
    /// The expected wait there in seconds, when known.
    #[serde(default)]
    pub queue_ewt_secs: Option<u64>,
    /// The offer waiting for an agent's answer, if any.
    #[serde(default)]
    pub offer: Option<PendingOffer>,
    /// A handoff asked for an agent and routing has not yet ended (no agent
    /// assigned, not dequeued, not closed): the router must hold it.
    #[serde(default)]
    pub awaiting_agent: bool,
}

/// An offer waiting for the agent's answer (see [`Event::Offered`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOffer {
    /// The offer.
    pub offer: String,
    /// The agent offered the conversation.
    pub agent: AgentId,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
}

impl Conversation {
    fn leave_queue(&mut self) {
        self.queue = None;
        self.queue_position = None;
        self.queue_ewt_secs = None;
        self.offer = None;
        self.awaiting_agent = false;
    }
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
            queue: None,
            queue_position: None,
            queue_ewt_secs: None,
            offer: None,
            awaiting_agent: false,
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
                self.leave_queue();
            }
            Event::Unassigned { agent, .. } => {
                if self.assignee == Some(*agent) {
                    self.assignee = None;
                }
            }
            Event::HandoffRequested { skill, .. } => {
                self.waiting_since.get_or_insert(env.at);
                self.requested_skill = skill.clone();
                if self.assignee.is_none() {
                    self.awaiting_agent = true;
                }
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
                self.leave_queue();
            }
            Event::ConversationReopened { .. } => {
                self.status = ConversationStatus::Open;
                self.closed_at = None;
            }
            Event::Queued {
                queue,
                position,
                ewt_secs,
            } => {
                if self.queue.as_ref() != Some(queue) {
                    self.offer = None;
                }
                self.queue = Some(queue.clone());
                self.queue_position = *position;
                self.queue_ewt_secs = *ewt_secs;
            }
            Event::Offered {
                offer,
                agent,
                expires_at,
                ..
            } => {
                self.offer = Some(PendingOffer {
                    offer: offer.clone(),
                    agent: *agent,
                    expires_at: *expires_at,
                });
            }
            Event::OfferAnswered { offer, .. } | Event::OfferWithdrawn { offer, .. } => {
                if self.offer.as_ref().is_some_and(|o| &o.offer == offer) {
                    self.offer = None;
                }
            }
            Event::Dequeued { .. } => {
                self.leave_queue();
            }
            Event::WrapUpDone { .. }
            | Event::BotTurn { .. }
            | Event::CallStarted { .. }
            | Event::CallAnswered { .. }
            | Event::DtmfReceived { .. }
            | Event::IvrStep { .. }
            | Event::RecordingAvailable { .. }
            | Event::CallEnded { .. } => {}
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
    fn routing_events_track_queue_and_offer() {
        let id = ConversationId::new();
        let agent = AgentId::new();
        let mut c = Conversation::open(&opened(id)).expect("open");
        let mut seq = 1;
        let mut push = |c: &mut Conversation, e: Event| {
            seq += 1;
            c.apply(&Envelope::new(id, seq, e)).expect("apply");
        };
        push(
            &mut c,
            Event::Queued {
                queue: "billing".into(),
                position: Some(2),
                ewt_secs: Some(40),
            },
        );
        assert_eq!(c.queue.as_deref(), Some("billing"));
        assert_eq!((c.queue_position, c.queue_ewt_secs), (Some(2), Some(40)));
        let offer = Event::Offered {
            offer: "1-1".into(),
            agent,
            queue: "billing".into(),
            expires_at: Utc::now(),
            why: "longest idle".into(),
        };
        push(&mut c, offer);
        assert_eq!(c.offer.as_ref().map(|o| o.agent), Some(agent));
        assert!(!c.awaiting_agent, "no handoff in this history");
        // An answer to another offer leaves the pending one alone.
        push(
            &mut c,
            Event::OfferWithdrawn {
                offer: "0-9".into(),
                agent,
                reason: "timed_out".into(),
            },
        );
        assert!(c.offer.is_some());
        push(
            &mut c,
            Event::OfferAnswered {
                offer: "1-1".into(),
                agent,
                accepted: true,
            },
        );
        assert!(c.offer.is_none());
        assert_eq!(
            c.queue.as_deref(),
            Some("billing"),
            "still queued until assigned"
        );
        push(
            &mut c,
            Event::Assigned {
                agent,
                by: Participant::System,
            },
        );
        assert_eq!(c.assignee, Some(agent));
        assert_eq!((c.queue.clone(), c.queue_position), (None, None));
        assert!(
            Event::Queued {
                queue: "q".into(),
                position: None,
                ewt_secs: None
            }
            .visible_to_customer()
        );
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
