//! The per-turn pipeline: mask → understand → retrieve → decide → respond,
//! with a [`TurnTrace`] that records why.
//!
//! [`Agent`] holds configuration and backends and no conversation state;
//! everything a conversation needs between turns lives in
//! [`ConversationState`], which the caller persists (it is serde-serializable).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_bus::{
    ContactId, Event, HandoffContext, HandoffReason, Participant, Skill, TranscriptLine,
};

use crate::extract::{Extract, coverage, extract};
use crate::ground::{GroundingReport, check};
use crate::lang::Lang;
use crate::llm::{Llm, LlmLimits, generate};
use crate::pii::{PiiConfig, mask};
use crate::policy::{Action, Counters, Decision, Evidence, PolicyConfig, decide};
use crate::reply;
use crate::retrieve::{Citation, Passage, Retriever};
use crate::text::{sentences, term_set};
use crate::understand::{DEFAULT_DOMAIN_TERMS, Topic, Understanding, understand};

/// How answers are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerationMode {
    /// Passage sentences verbatim: fast, no model in the critical path (voice).
    #[default]
    Extraction,
    /// A language model phrases the answer from the passage; grounding-checked,
    /// with extraction as the fallback.
    Llm,
}

/// Agent configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// The business name used in the agent's phrases.
    pub company: String,
    /// Extraction or language model.
    pub mode: GenerationMode,
    /// Passages to retrieve per turn.
    pub top_k: usize,
    /// Sentences an extracted answer may quote.
    pub max_sentences: usize,
    /// Token budget of a model answer.
    pub max_answer_tokens: u32,
    /// Policy thresholds.
    pub policy: PolicyConfig,
    /// Business vocabulary deciding what is in scope (lowercase).
    pub domain_terms: Vec<String>,
    /// Which optional personal data to mask.
    pub pii: PiiConfig,
    /// Model timeouts and retries.
    pub llm_limits: LlmLimits,
    /// Transcript lines kept in the state (oldest dropped first).
    pub max_transcript: usize,
    /// Strings that must never appear in a reply (keys, internal names).
    pub protected: Vec<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            company: "our company".to_string(),
            mode: GenerationMode::Extraction,
            top_k: 5,
            max_sentences: 2,
            max_answer_tokens: 80,
            policy: PolicyConfig::default(),
            domain_terms: DEFAULT_DOMAIN_TERMS
                .iter()
                .map(|s| s.to_lowercase())
                .collect(),
            pii: PiiConfig::default(),
            llm_limits: LlmLimits::default(),
            max_transcript: 60,
            protected: Vec::new(),
        }
    }
}

/// What the caller keeps between turns of one conversation (persist it as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    /// The customer, for transcript lines.
    pub customer: ContactId,
    /// Language of the conversation so far.
    pub lang: Option<Lang>,
    /// Clarifications asked since the last answer.
    pub clarifications: u32,
    /// Misunderstandings so far.
    pub misunderstandings: u32,
    /// The question awaiting clarification (masked), joined to the next message for retrieval.
    pub pending_question: Option<String>,
    /// The last question the customer asked (masked), to notice repetition.
    pub last_question: Option<String>,
    /// Intent of the last turn.
    pub last_intent: Option<String>,
    /// The last specific topic discussed, inherited by vague follow-ups ("it's still broken").
    pub last_topic: Option<Topic>,
    /// Passages shown or considered so far, newest last, without duplicates.
    pub shown: Vec<Citation>,
    /// The conversation, masked.
    pub transcript: Vec<TranscriptLine>,
    /// Set once the agent handed the conversation to a human; the caller
    /// normally stops routing the customer's messages to the agent from then on.
    pub handed_off: bool,
}

impl ConversationState {
    /// A fresh conversation with `customer`.
    pub fn new(customer: ContactId) -> Self {
        Self {
            customer,
            lang: None,
            clarifications: 0,
            misunderstandings: 0,
            pending_question: None,
            last_question: None,
            last_intent: None,
            last_topic: None,
            shown: Vec::new(),
            transcript: Vec::new(),
            handed_off: false,
        }
    }
}

/// How the reply of an answer was produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AnswerSource {
    /// Passage sentences verbatim.
    Extraction,
    /// Phrased by a model and grounded.
    Llm {
        /// Backend name.
        backend: String,
    },
    /// A model was asked but its output was not used.
    Fallback {
        /// Backend name.
        backend: String,
        /// Why (timeout, error, ungrounded, leak, no answer).
        why: String,
    },
}

/// How a passage looked to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassageTrace {
    /// The passage.
    pub citation: Citation,
    /// The retriever's score.
    pub score: f32,
    /// Coverage of the question by this passage.
    pub coverage: f32,
}

/// The record of one turn: what was understood, retrieved and decided, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnTrace {
    /// When the turn started.
    pub at: DateTime<Utc>,
    /// The customer's message, masked.
    pub text: String,
    /// The retrieval query, masked.
    pub query: String,
    /// Intent label, e.g. `question.billing`.
    pub intent: String,
    /// The full understanding.
    pub understanding: Understanding,
    /// Passages retrieved.
    pub passages: Vec<PassageTrace>,
    /// Retrieval error, if retrieval failed.
    pub retrieval_error: Option<String>,
    /// The decision.
    pub decision: Decision,
    /// How the answer was produced (answers only).
    pub answer_source: Option<AnswerSource>,
    /// Grounding check of the reply (answers only).
    pub grounding: Option<GroundingReport>,
    /// Microseconds spent retrieving.
    pub retrieve_us: u64,
    /// Microseconds spent generating.
    pub generate_us: u64,
    /// Microseconds for the whole turn.
    pub total_us: u64,
}

/// A handoff to a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// Why.
    pub reason: HandoffReason,
    /// The team.
    pub skill: Skill,
    /// What the agent learned, for the human.
    pub context: HandoffContext,
}

/// The result of one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnOutcome {
    /// The text to send to the customer.
    pub reply: String,
    /// Language of the reply.
    pub lang: Lang,
    /// Passages the reply is based on.
    pub citations: Vec<Citation>,
    /// Set when the conversation goes to a human.
    pub handoff: Option<Handoff>,
    /// Why.
    pub trace: TurnTrace,
}

impl TurnOutcome {
    /// The bus events this turn produces: the bot's message, then the handoff if any.
    pub fn events(&self) -> Vec<Event> {
        let mut out = vec![Event::MessageAdded {
            from: Participant::Bot,
            text: self.reply.clone(),
            attachments: Vec::new(),
            client_msg_id: None,
        }];
        if let Some(h) = &self.handoff {
            out.push(Event::HandoffRequested {
                reason: h.reason,
                skill: Some(h.skill.clone()),
                context: h.context.clone(),
            });
        }
        out
    }
}

/// The virtual agent.
pub struct Agent {
    config: AgentConfig,
    retriever: Arc<dyn Retriever>,
    llm: Option<Arc<dyn Llm>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("config", &self.config)
            .field("llm", &self.llm.as_ref().map(|l| l.name()))
            .finish_non_exhaustive()
    }
}

fn is_repeat(previous: Option<&str>, now: &str) -> bool {
    let Some(prev) = previous else { return false };
    let a = term_set(prev);
    let b = term_set(now);
    if a.len() < 2 || b.len() < 2 {
        return false;
    }
    let inter = a.intersection(&b).count() as f32;
    let union = a.union(&b).count() as f32;
    inter / union >= 0.8
}

impl Agent {
    /// An agent over `retriever`, with an optional language model (used in [`GenerationMode::Llm`]).
    pub fn new(
        config: AgentConfig,
        retriever: Arc<dyn Retriever>,
        llm: Option<Arc<dyn Llm>>,
    ) -> Self {
        Self {
            config,
            retriever,
            llm,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Handles one customer message.
    pub async fn turn(&self, state: &mut ConversationState, text: &str) -> TurnOutcome {
        self.turn_streaming(state, text, &mut |_| {}).await
    }

    /// Handles one customer message, calling `on_delta` with pieces of the
    /// reply as soon as they are safe to show (grounded sentences of a model
    /// answer, or the whole reply otherwise). The concatenated deltas equal
    /// [`TurnOutcome::reply`].
    pub async fn turn_streaming(
        &self,
        state: &mut ConversationState,
        text: &str,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> TurnOutcome {
        let started = Instant::now();
        let at = Utc::now();
        let masked = mask(text, self.config.pii);
        let mut u = understand(
            &masked.text,
            state.lang,
            &self.config.domain_terms,
            masked.found.clone(),
        );
        // A reply to a clarification inherits the scope and topic of the question it clarifies,
        // and a vague follow-up the topic of the conversation.
        if let Some(prev) = state
            .pending_question
            .as_deref()
            .filter(|_| state.clarifications > 0)
        {
            let earlier = understand(prev, Some(u.lang), &self.config.domain_terms, Vec::new());
            u.in_domain |= earlier.in_domain;
            if u.topic == Topic::General {
                u.topic = earlier.topic;
            }
        }
        if u.topic == Topic::General
            && let Some(t) = state.last_topic
        {
            u.topic = t;
        }
        if u.topic != Topic::General {
            state.last_topic = Some(u.topic);
        }
        let lang = u.lang;
        state.lang = Some(lang);
        self.record(
            state,
            Participant::Customer(state.customer),
            &masked.text,
            at,
        );

        let query = match &state.pending_question {
            Some(prev) if state.clarifications > 0 => format!("{prev} {}", masked.text),
            _ => masked.text.clone(),
        };
        let wants_knowledge = u.injection.is_none();
        let t0 = Instant::now();
        let (passages, retrieval_error) = if wants_knowledge {
            match self
                .retriever
                .search(&query, Some(lang), self.config.top_k)
                .await
            {
                Ok(p) => (p, None),
                Err(e) => {
                    tracing::warn!(error = %e, "retrieval failed");
                    (Vec::new(), Some(e.to_string()))
                }
            }
        } else {
            (Vec::new(), None)
        };
        let retrieve_us = t0.elapsed().as_micros() as u64;

        let qterms = term_set(&query);
        let coverages: Vec<f32> = passages.iter().map(|p| coverage(&qterms, p)).collect();
        let best = extract(&query, &passages, lang, self.config.max_sentences);
        let confidence = best.as_ref().map_or(0.0, |e| e.coverage);
        let repeated = is_repeat(state.last_question.as_deref(), &masked.text);
        let decision = decide(
            &u,
            Evidence {
                confidence,
                retrieval_failed: retrieval_error.is_some(),
                repeated,
            },
            Counters {
                clarifications: state.clarifications,
                misunderstandings: state.misunderstandings,
            },
            &self.config.policy,
        );

        let mut trace = TurnTrace {
            at,
            text: masked.text.clone(),
            query: query.clone(),
            intent: u.intent_label(),
            understanding: u.clone(),
            passages: passages
                .iter()
                .zip(&coverages)
                .map(|(p, c)| PassageTrace {
                    citation: p.into(),
                    score: p.score,
                    coverage: *c,
                })
                .collect(),
            retrieval_error,
            decision: decision.clone(),
            answer_source: None,
            grounding: None,
            retrieve_us,
            generate_us: 0,
            total_us: 0,
        };

        // Asking the same question again means the last answer missed; count it.
        if repeated
            && u.intent == crate::understand::Intent::Question
            && !matches!(decision.action, Action::Escalate { .. })
        {
            state.misunderstandings += 1;
        }
        let mut citations = Vec::new();
        let mut handoff = None;
        let reply = match (&decision.action, best.as_ref()) {
            (Action::Answer, Some(ex)) => {
                let t1 = Instant::now();
                let (reply, source, grounding) =
                    self.answer(lang, &query, &passages, ex, on_delta).await;
                trace.generate_us = t1.elapsed().as_micros() as u64;
                trace.answer_source = Some(source);
                trace.grounding = Some(grounding);
                citations.push(Citation::from(&passages[ex.passage]));
                state.clarifications = 0;
                state.pending_question = None;
                reply
            }
            // An answer needs something to quote (only reachable with a zero threshold).
            (Action::Answer, None) | (Action::Clarify, _) => {
                if decision.action == Action::Answer {
                    trace.decision.action = Action::Clarify;
                    trace.decision.reason = "nothing_to_quote".to_string();
                }
                if u.misunderstood {
                    state.misunderstandings += 1;
                } else if decision.reason == "low_confidence" || decision.action == Action::Answer {
                    state.clarifications += 1;
                    state.pending_question = Some(query.clone());
                }
                let mut titles: Vec<&str> = Vec::new();
                for p in passages.iter().take(3) {
                    if p.lang.is_none_or(|l| l == lang)
                        && !titles.contains(&p.title.as_str())
                        && titles.len() < 2
                    {
                        titles.push(&p.title);
                    }
                }
                let r = reply::clarify(lang, &titles, u.misunderstood);
                on_delta(&r);
                r
            }
            (Action::Escalate { reason, skill }, _) => {
                if *reason == HandoffReason::Misunderstanding {
                    state.misunderstandings += 1;
                }
                let r = reply::escalate(*reason, skill.as_str(), lang);
                on_delta(&r);
                handoff = Some((*reason, skill.clone()));
                r
            }
            (Action::Decline { kind }, _) => {
                let r = reply::decline(*kind, lang, &self.config.company);
                on_delta(&r);
                r
            }
            (Action::SmallTalk { kind }, _) => {
                let r = reply::small_talk(*kind, lang, &self.config.company);
                on_delta(&r);
                r
            }
        };

        for p in passages.iter().take(3) {
            let c = Citation::from(p);
            if !state.shown.contains(&c) {
                state.shown.push(c);
            }
        }
        if u.intent == crate::understand::Intent::Question {
            state.last_question = Some(masked.text.clone());
        }
        state.last_intent = Some(trace.intent.clone());
        self.record(state, Participant::Bot, &reply, Utc::now());

        let handoff = handoff.map(|(reason, skill)| {
            state.handed_off = true;
            Handoff {
                reason,
                skill,
                context: self.handoff_context(state, &u, &decision),
            }
        });
        trace.total_us = started.elapsed().as_micros() as u64;
        tracing::debug!(intent = %trace.intent, reason = %decision.reason, confidence = decision.confidence, "turn decided");
        TurnOutcome {
            reply,
            lang,
            citations,
            handoff,
            trace,
        }
    }

    fn record(
        &self,
        state: &mut ConversationState,
        from: Participant,
        text: &str,
        at: DateTime<Utc>,
    ) {
        state.transcript.push(TranscriptLine {
            from,
            text: text.to_string(),
            at,
        });
        let excess = state
            .transcript
            .len()
            .saturating_sub(self.config.max_transcript);
        if excess > 0 {
            state.transcript.drain(..excess);
        }
    }

    fn handoff_context(
        &self,
        state: &ConversationState,
        u: &Understanding,
        decision: &Decision,
    ) -> HandoffContext {
        let sentiment = crate::understand::snake(&u.sentiment);
        let summary = format!(
            "{}; reason {}; sentiment {}{}; confidence {:.2}",
            u.intent_label(),
            decision.reason,
            sentiment,
            if u.urgent { ", urgent" } else { "" },
            decision.confidence
        );
        HandoffContext {
            transcript: state.transcript.clone(),
            intent: Some(u.intent_label()),
            language: Some(u.lang.code().to_string()),
            knowledge_hits: state
                .shown
                .iter()
                .map(|c| format!("{} v{}: {}", c.article_id, c.version, c.title))
                .collect(),
            summary: Some(summary),
        }
    }

    /// Produces the answer text for `ex`, by model or extraction, always grounded.
    async fn answer(
        &self,
        lang: Lang,
        query: &str,
        passages: &[Passage],
        ex: &Extract,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> (String, AnswerSource, GroundingReport) {
        let passage = &passages[ex.passage];
        let source_line = reply::source_line(lang, &[passage.title.as_str()]);
        let support = std::slice::from_ref(passage);
        if self.config.mode == GenerationMode::Llm
            && let Some(llm) = &self.llm
        {
            let backend = llm.name();
            let facts = ex.sentences.join(if passage.lang == Some(Lang::Zh) {
                ""
            } else {
                " "
            });
            let request = reply::answer_request(
                &self.config.company,
                lang,
                query,
                passage,
                &facts,
                self.config.max_answer_tokens,
            );
            let system = request
                .messages
                .first()
                .map(|m| m.content.clone())
                .unwrap_or_default();
            let mut gate = SentenceGate::new(support, &system, &self.config.protected);
            let sep = if lang == Lang::Zh { "" } else { " " };
            let mut shown = 0usize;
            let result = generate(
                llm.as_ref(),
                &request,
                self.config.llm_limits,
                &mut |piece| {
                    gate.push(piece);
                    // Stream each sentence as soon as it has passed the gate.
                    while shown < gate.accepted.len() {
                        let s = &gate.accepted[shown];
                        on_delta(&if shown == 0 {
                            s.clone()
                        } else {
                            format!("{sep}{s}")
                        });
                        shown += 1;
                    }
                    !gate.stopped
                },
            )
            .await;
            let error = match result {
                Err(e) => Some(format!("error: {e}")),
                Ok(_) => {
                    gate.finish();
                    None
                }
            };
            for s in &gate.accepted[shown..] {
                on_delta(&if shown == 0 {
                    s.clone()
                } else {
                    format!("{sep}{s}")
                });
                shown += 1;
            }
            if !gate.accepted.is_empty() {
                // Whatever was shown is grounded; a later failure only cuts the answer short.
                if let Some(why) = gate.why.as_ref().or(error.as_ref()) {
                    tracing::info!(backend = %backend, why = %why, "model answer cut short");
                }
                let body = gate.accepted.join(sep);
                let tail = format!("\n\n{source_line}");
                on_delta(&tail);
                let grounding = check(&body, support);
                return (
                    format!("{body}{tail}"),
                    AnswerSource::Llm { backend },
                    grounding,
                );
            }
            let why = error
                .or(gate.why)
                .unwrap_or_else(|| "no_answer".to_string());
            tracing::info!(backend = %backend, why = %why, "model answer not used; quoting the passage");
            let (text, grounding) = self.extracted(lang, passage, ex, &source_line, on_delta);
            return (text, AnswerSource::Fallback { backend, why }, grounding);
        }
        let (text, grounding) = self.extracted(lang, passage, ex, &source_line, on_delta);
        (text, AnswerSource::Extraction, grounding)
    }

    fn extracted(
        &self,
        lang: Lang,
        passage: &Passage,
        ex: &Extract,
        source_line: &str,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> (String, GroundingReport) {
        let sep = if passage.lang == Some(Lang::Zh) {
            ""
        } else {
            " "
        };
        let mut body = ex.sentences.join(sep);
        if passage.lang.is_some_and(|l| l != lang)
            && let Some(lead) = reply::other_language_lead(lang)
        {
            body = format!("{lead}{body}");
        }
        // The lead-in is the agent's own phrase; the quoted sentences are what is checked.
        let grounding = check(&ex.sentences.join(sep), std::slice::from_ref(passage));
        let text = format!("{body}\n\n{source_line}");
        on_delta(&text);
        (text, grounding)
    }
}

/// Lets through complete sentences of a model answer only while each one is
/// grounded and leaks nothing; stops at the first that is not.
struct SentenceGate<'a> {
    support: &'a [Passage],
    system: &'a str,
    protected: &'a [String],
    buffer: String,
    accepted: Vec<String>,
    stopped: bool,
    why: Option<String>,
}

impl<'a> SentenceGate<'a> {
    fn new(support: &'a [Passage], system: &'a str, protected: &'a [String]) -> Self {
        Self {
            support,
            system,
            protected,
            buffer: String::new(),
            accepted: Vec::new(),
            stopped: false,
            why: None,
        }
    }

    fn push(&mut self, piece: &str) {
        if self.stopped {
            return;
        }
        self.buffer.push_str(piece);
        // Keep the last (possibly incomplete) sentence in the buffer.
        let parts = sentences(&self.buffer);
        let complete = self
            .buffer
            .trim_end()
            .ends_with(['.', '!', '?', '。', '！', '？'])
            && self.buffer.ends_with(char::is_whitespace)
            || self.buffer.ends_with(['。', '！', '？', '\n']);
        let n = if complete {
            parts.len()
        } else {
            parts.len().saturating_sub(1)
        };
        if n == 0 {
            return;
        }
        let done: Vec<String> = parts[..n].to_vec();
        self.buffer = if complete {
            String::new()
        } else {
            parts.last().cloned().unwrap_or_default()
        };
        for s in done {
            self.judge(s);
            if self.stopped {
                return;
            }
        }
    }

    fn judge(&mut self, sentence: String) {
        if sentence.contains("NO_ANSWER") {
            self.stop("no_answer");
            return;
        }
        if crate::guard::leaks(&sentence, self.system, self.protected) {
            self.stop("leak");
            return;
        }
        // Judge the answer so far plus this sentence, so the accepted text as a
        // whole passes the same check the final reply is recorded with.
        let mut candidate = self.accepted.join(" ");
        if !candidate.is_empty() {
            candidate.push(' ');
        }
        candidate.push_str(&sentence);
        let report = check(&candidate, self.support);
        if report.is_grounded() {
            self.accepted.push(sentence);
        } else if report.unsupported.is_empty() {
            self.stop(&format!(
                "ungrounded: wording {:.2} supported",
                report.term_support
            ));
        } else {
            self.stop(&format!("ungrounded: {}", report.unsupported.join(", ")));
        }
    }

    fn stop(&mut self, why: &str) {
        self.stopped = true;
        self.why = Some(why.to_string());
    }

    fn finish(&mut self) {
        let rest = std::mem::take(&mut self.buffer);
        for s in sentences(&rest) {
            if self.stopped {
                return;
            }
            self.judge(s);
        }
    }
}
