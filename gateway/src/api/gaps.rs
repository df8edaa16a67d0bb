//! Knowledge gaps: the questions the virtual agent could not answer from the
//! knowledge base (it asked back, or escalated for low confidence or repeated
//! misunderstanding), grouped by question, so knowledge managers know what to
//! write next.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_bus::Event;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::auth::{Role, Staff};
use crate::db::{envelope_from_row, ms};

/// Which turns to look at.
#[derive(Debug, Deserialize, IntoParams)]
pub struct GapsQuery {
    /// Look back this many days (1–365, default 30).
    pub days: Option<i64>,
}

/// One unanswered question, grouped.
#[derive(Debug, Serialize, ToSchema)]
pub struct Gap {
    /// The question as customers asked it (masked of personal data), most recent wording.
    pub question: String,
    /// How often it was asked.
    pub count: usize,
    /// What the virtual agent did: `clarify`, `low_confidence`, `misunderstanding`.
    pub outcomes: Vec<String>,
    /// Detected language(s).
    pub languages: Vec<String>,
    /// The closest article the search found, if any (it did not answer).
    pub nearest: Option<String>,
    /// When it was last asked.
    pub last_asked: DateTime<Utc>,
    /// Up to five conversations where it was asked.
    pub conversations: Vec<String>,
}

/// Gaps, most frequent first.
#[derive(Debug, Serialize, ToSchema)]
pub struct GapList {
    /// The gaps.
    pub gaps: Vec<Gap>,
    /// Virtual-agent turns looked at.
    pub turns: usize,
}

/// Questions are grouped by their words, ignoring case, punctuation and order.
fn group_key(question: &str) -> String {
    let mut words: Vec<String> = question
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words.join(" ")
}

/// Why a turn counts as a gap, if it does.
fn gap_outcome(decision: &str, trace: &serde_json::Value) -> Option<String> {
    match decision {
        "clarify" => Some("clarify".into()),
        "escalate" => {
            let reason = trace["decision"]["action"]["reason"]
                .as_str()
                .unwrap_or_default();
            matches!(reason, "low_confidence" | "misunderstanding").then(|| reason.to_string())
        }
        _ => None,
    }
}

#[utoipa::path(get, path = "/api/kb/gaps", tag = "knowledge", params(GapsQuery),
    responses((status = 200, body = GapList), (status = 403, body = ErrorBody)))]
/// Questions the virtual agent could not answer, grouped (knowledge managers, analysts, admins).
pub async fn gaps(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<GapsQuery>,
) -> Result<Json<GapList>, ApiError> {
    if !matches!(
        staff.user.role,
        Role::KnowledgeManager | Role::Analyst | Role::Admin
    ) {
        return Err(ApiError::forbidden(
            "knowledge managers, analysts and admins only",
        ));
    }
    let days = q.days.unwrap_or(30).clamp(1, 365);
    let since = ms(Utc::now() - chrono::Duration::days(days));
    let rows = sqlx::query(
        "SELECT event_id, conversation_id, seq, at, body FROM events \
         WHERE kind = 'bot_turn' AND at >= $1 ORDER BY id DESC LIMIT 20000",
    )
    .bind(since)
    .fetch_all(state.db.pool())
    .await
    .map_err(crate::db::DbError::from)?;
    let turns = rows.len();
    let mut groups: HashMap<String, Gap> = HashMap::new();
    for row in &rows {
        let env = envelope_from_row(row)?;
        let Event::BotTurn {
            decision, trace, ..
        } = &env.event
        else {
            continue;
        };
        let Some(outcome) = gap_outcome(decision, trace) else {
            continue;
        };
        let question = trace["text"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string();
        if question.is_empty() {
            continue;
        }
        let lang = trace["understanding"]["lang"].as_str().map(str::to_string);
        let nearest = trace["passages"][0]["citation"]["title"]
            .as_str()
            .map(str::to_string);
        let gap = groups.entry(group_key(&question)).or_insert_with(|| Gap {
            question: question.clone(),
            count: 0,
            outcomes: Vec::new(),
            languages: Vec::new(),
            nearest,
            last_asked: env.at,
            conversations: Vec::new(),
        });
        gap.count += 1;
        if !gap.outcomes.contains(&outcome) {
            gap.outcomes.push(outcome);
        }
        if let Some(l) = lang
            && !gap.languages.contains(&l)
        {
            gap.languages.push(l);
        }
        let conv = env.conversation_id.to_string();
        if gap.conversations.len() < 5 && !gap.conversations.contains(&conv) {
            gap.conversations.push(conv);
        }
    }
    let mut gaps: Vec<Gap> = groups.into_values().collect();
    gaps.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_asked.cmp(&a.last_asked)));
    Ok(Json(GapList { gaps, turns }))
}

/// A question to try on the virtual agent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TryBody {
    /// The question, as a customer would write it.
    pub question: String,
}

/// What the virtual agent would do with a question.
#[derive(Debug, Serialize, ToSchema)]
pub struct TryResult {
    /// The reply it would send.
    pub reply: String,
    /// `answer`, `clarify`, `escalate`, `decline` or `small_talk`.
    pub decision: String,
    /// Why.
    pub reason: String,
    /// The full trace: understanding, passages with scores, grounding, timings.
    #[schema(value_type = Object)]
    pub trace: serde_json::Value,
}

#[utoipa::path(post, path = "/api/kb/try", tag = "knowledge", request_body = TryBody,
    responses((status = 200, body = TryResult), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
/// Runs the virtual agent on a question as a new conversation, without
/// storing anything: the passages it finds, its decision and its answer.
pub async fn try_question(
    State(state): State<AppState>,
    staff: Staff,
    super::error::ApiJson(body): super::error::ApiJson<TryBody>,
) -> Result<Json<TryResult>, ApiError> {
    if !matches!(
        staff.user.role,
        Role::KnowledgeManager | Role::Analyst | Role::Admin | Role::Supervisor
    ) {
        return Err(ApiError::forbidden(
            "knowledge managers, supervisors, analysts and admins only",
        ));
    }
    let question = super::check_text(&body.question)?;
    let Some(agent) = state.bot.clone() else {
        return Err(ApiError::conflict(
            "the virtual agent is switched off (--bot off)",
        ));
    };
    let mut conv = switchboard_nlu::ConversationState::new(switchboard_bus::ContactId::new());
    let outcome = agent.turn(&mut conv, &question).await;
    let decision = match outcome.trace.decision.action {
        switchboard_nlu::Action::Answer => "answer",
        switchboard_nlu::Action::Clarify => "clarify",
        switchboard_nlu::Action::Escalate { .. } => "escalate",
        switchboard_nlu::Action::Decline { .. } => "decline",
        switchboard_nlu::Action::SmallTalk { .. } => "small_talk",
    };
    Ok(Json(TryResult {
        reply: outcome.reply.clone(),
        decision: decision.into(),
        reason: outcome.trace.decision.reason.clone(),
        trace: serde_json::to_value(&outcome.trace).unwrap_or(serde_json::Value::Null),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_group_by_their_words() {
        assert_eq!(
            group_key("Do you ship to Mars?"),
            group_key("do you SHIP to mars")
        );
        assert_ne!(group_key("ship to Mars"), group_key("ship to Venus"));
    }

    #[test]
    fn only_unanswered_turns_are_gaps() {
        let low = serde_json::json!({"decision": {"action": {"action": "escalate", "reason": "low_confidence"}}});
        let asked = serde_json::json!({"decision": {"action": {"action": "escalate", "reason": "customer_request"}}});
        assert_eq!(
            gap_outcome("escalate", &low).as_deref(),
            Some("low_confidence")
        );
        assert_eq!(gap_outcome("escalate", &asked), None);
        assert_eq!(gap_outcome("clarify", &asked).as_deref(), Some("clarify"));
        assert_eq!(gap_outcome("answer", &low), None);
    }
}
