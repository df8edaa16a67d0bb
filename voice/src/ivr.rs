//! The IVR flow engine: a sans-IO state machine that walks a caller through
//! a menu of prompts, digit collection, branches, skill selection (handoff to
//! routing), voicemail and hang-up.
//!
//! The engine never touches audio or sockets. It is fed what happened
//! ([`Ivr::start`], [`Ivr::on_digit`], [`Ivr::on_playout_finished`],
//! [`Ivr::handle_timeout`]) together with the current time, and answers with
//! [`Action`]s (play this prompt, start recording, hand off, hang up, …) and
//! its next deadline ([`Ivr::poll_timeout`]). The telephony glue turns the
//! actions into media commands; tests drive it with simulated time.
//!
//! Flows are written in TOML ([`FlowSet::from_toml`]): named flows made of
//! named nodes, plus a map from the called number to a flow name, with the
//! flow `default` for every other number. [`FlowSet::builtin`] is the flow
//! Switchboard uses when none is configured:
//!
//! ```
//! use switchboard_voice::ivr::{Action, FlowSet, Ivr, Prompt};
//! use std::time::{Duration, Instant};
//!
//! let flows = FlowSet::builtin();
//! let t0 = Instant::now();
//! let mut ivr = Ivr::new(flows.for_number("100").clone());
//! ivr.start(t0);
//! let actions: Vec<Action> = std::iter::from_fn(|| ivr.poll_action()).collect();
//! assert!(matches!(&actions[1], Action::Play(Prompt::Text(t)) if t.starts_with("Thank you")));
//! ivr.on_playout_finished(t0 + Duration::from_secs(6));
//! ivr.on_digit(t0 + Duration::from_secs(7), '1');
//! let actions: Vec<Action> = std::iter::from_fn(|| ivr.poll_action()).collect();
//! assert!(actions.contains(&Action::Handoff { skill: "billing".into() }));
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Something the caller hears.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Text to synthesise.
    Text(String),
    /// An uploaded WAV file.
    File(PathBuf),
}

fn default_max_digits() -> usize {
    1
}
fn default_timeout_secs() -> u64 {
    5
}
fn default_retries() -> u32 {
    1
}
fn default_max_secs() -> u64 {
    120
}
fn default_hold_every_secs() -> u64 {
    30
}

/// One step of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    /// Play a prompt, then go on.
    Play {
        /// What to play.
        prompt: Prompt,
        /// Next node.
        next: String,
    },
    /// Play a prompt and collect digits, then branch on them.
    Collect {
        /// The menu prompt (the caller may type over it).
        prompt: Prompt,
        /// Collection ends after this many digits (or at `#`).
        #[serde(default = "default_max_digits")]
        max_digits: usize,
        /// Seconds to wait for the first/next digit once the prompt ended.
        #[serde(default = "default_timeout_secs")]
        timeout_secs: u64,
        /// How many times the prompt is repeated after a timeout or invalid input.
        #[serde(default = "default_retries")]
        retries: u32,
        /// Played before repeating the prompt after an invalid entry.
        #[serde(default)]
        invalid_prompt: Option<Prompt>,
        /// Digits → next node.
        branches: BTreeMap<String, String>,
        /// Where to go when the caller never answers.
        on_timeout: String,
        /// Where to go after too many invalid entries (default: `on_timeout`).
        #[serde(default)]
        on_invalid: Option<String>,
    },
    /// Ask routing for an agent with this skill; the caller then waits.
    SetSkill {
        /// The skill (a router skill name).
        skill: String,
        /// Played once before waiting.
        #[serde(default)]
        prompt: Option<Prompt>,
        /// Played every `hold_every_secs` while waiting (else silence).
        #[serde(default)]
        hold_prompt: Option<Prompt>,
        /// Seconds between hold prompts (from the end of the last one).
        #[serde(default = "default_hold_every_secs")]
        hold_every_secs: u64,
    },
    /// Greeting, beep, then record up to `max_secs` (or until `#`), then hang up.
    Voicemail {
        /// The greeting.
        greeting: Prompt,
        /// Longest message.
        #[serde(default = "default_max_secs")]
        max_secs: u64,
    },
    /// Optionally say something, then hang up.
    Hangup {
        /// Played before hanging up.
        #[serde(default)]
        prompt: Option<Prompt>,
    },
}

/// A named graph of nodes with a start node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Node entered when the call is answered.
    pub start: String,
    /// The nodes by name.
    pub nodes: BTreeMap<String, Node>,
}

/// A flow file does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The TOML does not parse or has unknown fields.
    #[error("flow file: {0}")]
    Parse(String),
    /// A node name is referenced but not defined.
    #[error("flow {flow:?}: node {node:?} is referenced but not defined")]
    MissingNode {
        /// The flow.
        flow: String,
        /// The missing node.
        node: String,
    },
    /// A number points to a flow that does not exist.
    #[error("number {number:?} uses flow {flow:?}, which is not defined")]
    MissingFlow {
        /// The number.
        number: String,
        /// The flow name.
        flow: String,
    },
    /// There is no `default` flow.
    #[error("the flow file has no [flows.default]")]
    NoDefault,
    /// A node is not usable as written.
    #[error("flow {flow:?}, node {node:?}: {why}")]
    BadNode {
        /// The flow.
        flow: String,
        /// The node.
        node: String,
        /// What is wrong.
        why: String,
    },
}

impl Flow {
    fn validate(&self, name: &str) -> Result<(), FlowError> {
        let missing = |node: &str| FlowError::MissingNode {
            flow: name.to_string(),
            node: node.to_string(),
        };
        if !self.nodes.contains_key(&self.start) {
            return Err(missing(&self.start));
        }
        for (id, node) in &self.nodes {
            let bad = |why: &str| FlowError::BadNode {
                flow: name.to_string(),
                node: id.clone(),
                why: why.to_string(),
            };
            let targets: Vec<&String> = match node {
                Node::Play { next, .. } => vec![next],
                Node::Collect {
                    branches,
                    on_timeout,
                    on_invalid,
                    max_digits,
                    ..
                } => {
                    if *max_digits == 0 {
                        return Err(bad("max_digits must be at least 1"));
                    }
                    if let Some(k) = branches.keys().find(|k| {
                        k.is_empty() || !k.chars().all(|c| c.is_ascii_digit() || c == '*')
                    }) {
                        return Err(bad(&format!("branch {k:?} is not a digit string")));
                    }
                    branches
                        .values()
                        .chain(std::iter::once(on_timeout))
                        .chain(on_invalid.iter())
                        .collect()
                }
                Node::SetSkill {
                    skill,
                    hold_every_secs,
                    ..
                } => {
                    switchboard_bus::Skill::new(skill.clone()).map_err(|e| bad(&e.to_string()))?;
                    if *hold_every_secs == 0 {
                        return Err(bad("hold_every_secs must be at least 1"));
                    }
                    vec![]
                }
                Node::Voicemail { max_secs, .. } => {
                    if *max_secs == 0 {
                        return Err(bad("max_secs must be at least 1"));
                    }
                    vec![]
                }
                Node::Hangup { .. } => vec![],
            };
            if let Some(t) = targets.into_iter().find(|t| !self.nodes.contains_key(*t)) {
                return Err(missing(t));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowFile {
    flows: BTreeMap<String, Flow>,
    #[serde(default)]
    numbers: BTreeMap<String, String>,
}

/// Flows by called number, with a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSet {
    flows: BTreeMap<String, Flow>,
    numbers: BTreeMap<String, String>,
}

/// The flow used when none is configured.
pub const BUILTIN_FLOW: &str = r#"
[flows.default]
start = "menu"

[flows.default.nodes.menu]
type = "collect"
prompt = { text = "Thank you for calling. For billing press 1, for technical support press 2, to leave a message press 3." }
invalid_prompt = { text = "Sorry, that is not a valid choice." }
max_digits = 1
timeout_secs = 5
retries = 1
branches = { "1" = "billing", "2" = "technical", "3" = "voicemail" }
on_timeout = "general"

[flows.default.nodes.billing]
type = "set_skill"
skill = "billing"
prompt = { text = "Please hold while we connect you to billing." }
hold_prompt = { text = "Thank you for holding. An agent will be with you shortly." }

[flows.default.nodes.technical]
type = "set_skill"
skill = "technical"
prompt = { text = "Please hold while we connect you to technical support." }
hold_prompt = { text = "Thank you for holding. An agent will be with you shortly." }

[flows.default.nodes.general]
type = "set_skill"
skill = "general"
prompt = { text = "Please hold while we connect you to the next available agent." }
hold_prompt = { text = "Thank you for holding. An agent will be with you shortly." }

[flows.default.nodes.voicemail]
type = "voicemail"
greeting = { text = "Please leave your message after the tone. Press the pound key when you are done." }
max_secs = 120
"#;

impl FlowSet {
    /// Parses and validates a flow file.
    pub fn from_toml(text: &str) -> Result<Self, FlowError> {
        let file: FlowFile = toml::from_str(text).map_err(|e| FlowError::Parse(e.to_string()))?;
        if !file.flows.contains_key("default") {
            return Err(FlowError::NoDefault);
        }
        for (name, flow) in &file.flows {
            flow.validate(name)?;
        }
        for (number, flow) in &file.numbers {
            if !file.flows.contains_key(flow) {
                return Err(FlowError::MissingFlow {
                    number: number.clone(),
                    flow: flow.clone(),
                });
            }
        }
        Ok(Self {
            flows: file.flows,
            numbers: file.numbers,
        })
    }

    /// The built-in flow ([`BUILTIN_FLOW`]).
    pub fn builtin() -> Self {
        #[allow(clippy::expect_used)]
        Self::from_toml(BUILTIN_FLOW).expect("the built-in flow is valid (tested)")
    }

    /// The flow for a called number (user part of the Request-URI), or the default.
    pub fn for_number(&self, number: &str) -> &Flow {
        self.numbers
            .get(number)
            .and_then(|f| self.flows.get(f))
            .or_else(|| self.flows.get("default"))
            .unwrap_or_else(|| unreachable_default())
    }

    /// Every prompt any flow can play (to synthesise ahead of calls).
    pub fn prompts(&self) -> Vec<&Prompt> {
        let mut out = Vec::new();
        for flow in self.flows.values() {
            for node in flow.nodes.values() {
                match node {
                    Node::Play { prompt, .. } => out.push(prompt),
                    Node::Collect {
                        prompt,
                        invalid_prompt,
                        ..
                    } => {
                        out.push(prompt);
                        out.extend(invalid_prompt.iter());
                    }
                    Node::SetSkill {
                        prompt,
                        hold_prompt,
                        ..
                    } => {
                        out.extend(prompt.iter());
                        out.extend(hold_prompt.iter());
                    }
                    Node::Hangup { prompt } => out.extend(prompt.iter()),
                    Node::Voicemail { greeting, .. } => out.push(greeting),
                }
            }
        }
        out
    }
}

#[allow(clippy::panic)]
fn unreachable_default() -> &'static Flow {
    // `from_toml` refuses files without a default flow.
    panic!("flow set without a default flow")
}

/// What the engine asks the telephony glue to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The call entered a node (for the conversation's history).
    Step {
        /// Node name.
        node: String,
        /// What happens there, in words.
        detail: String,
    },
    /// Play a prompt (queued after anything already playing).
    Play(Prompt),
    /// Play the voicemail beep.
    Beep,
    /// Stop playing (the caller typed over the prompt).
    StopPlaying,
    /// One collection ended with these digits.
    Digits(String),
    /// Ask routing for an agent with this skill; keep the caller waiting.
    Handoff {
        /// The skill.
        skill: String,
    },
    /// Start recording the caller's message.
    StartRecording,
    /// Stop recording the caller's message (it is complete).
    StopRecording,
    /// Hang up the call.
    Hangup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Nothing started yet.
    Idle,
    /// Playing a prompt; then enter `next`.
    Playing { next: String },
    /// Collect: prompt playing or waiting for digits.
    Collecting {
        digits: String,
        attempt: u32,
        prompt_done: bool,
        deadline: Option<Instant>,
    },
    /// Voicemail greeting playing.
    Greeting,
    /// Beep playing.
    Beeping,
    /// Recording until the deadline or `#`.
    Recording { deadline: Instant },
    /// Handed off; waiting for an agent (next hold prompt due at `next`).
    Waiting { next: Option<Instant> },
    /// Saying goodbye, then hang up.
    Closing,
    /// Hung up.
    Done,
}

/// One call's walk through a flow.
#[derive(Debug)]
pub struct Ivr {
    flow: Flow,
    node: String,
    phase: Phase,
    actions: VecDeque<Action>,
}

impl Ivr {
    /// A new walk; nothing happens until [`Ivr::start`].
    pub fn new(flow: Flow) -> Self {
        let node = flow.start.clone();
        Self {
            flow,
            node,
            phase: Phase::Idle,
            actions: VecDeque::new(),
        }
    }

    /// The call is answered and media flows: enter the start node.
    pub fn start(&mut self, now: Instant) {
        if self.phase == Phase::Idle {
            let start = self.flow.start.clone();
            self.enter(now, &start);
        }
    }

    /// The current node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// True once the engine asked to hang up.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// True while the caller's message is being recorded.
    pub fn is_recording(&self) -> bool {
        matches!(self.phase, Phase::Recording { .. })
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Ivr::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Collecting { deadline, .. } => *deadline,
            Phase::Recording { deadline } => Some(*deadline),
            Phase::Waiting { next } => *next,
            _ => None,
        }
    }

    fn node_def(&self, id: &str) -> Option<Node> {
        self.flow.nodes.get(id).cloned()
    }

    fn enter(&mut self, now: Instant, id: &str) {
        let Some(node) = self.node_def(id) else {
            // Validation makes this impossible; end the call rather than stall.
            self.actions.push_back(Action::Hangup);
            self.phase = Phase::Done;
            return;
        };
        self.node = id.to_string();
        let step = |detail: String| Action::Step {
            node: id.to_string(),
            detail,
        };
        match node {
            Node::Play { prompt, next } => {
                self.actions.push_back(step("playing a prompt".into()));
                self.actions.push_back(Action::Play(prompt));
                self.phase = Phase::Playing { next };
            }
            Node::Collect { prompt, .. } => {
                self.actions
                    .push_back(step("menu: waiting for the caller's choice".into()));
                self.actions.push_back(Action::Play(prompt));
                self.phase = Phase::Collecting {
                    digits: String::new(),
                    attempt: 0,
                    prompt_done: false,
                    deadline: None,
                };
            }
            Node::SetSkill {
                skill,
                prompt,
                hold_prompt,
                hold_every_secs,
            } => {
                self.actions
                    .push_back(step(format!("queued for skill {skill}")));
                self.actions.push_back(Action::Handoff { skill });
                let hold = hold_prompt.map(|_| now + Duration::from_secs(hold_every_secs));
                match prompt {
                    Some(p) => {
                        self.actions.push_back(Action::Play(p));
                        // The hold timer starts once the prompt has played.
                        self.phase = Phase::Waiting { next: None };
                    }
                    None => self.phase = Phase::Waiting { next: hold },
                }
            }
            Node::Voicemail { greeting, .. } => {
                self.actions.push_back(step("voicemail greeting".into()));
                self.actions.push_back(Action::Play(greeting));
                self.phase = Phase::Greeting;
            }
            Node::Hangup { prompt } => {
                self.actions.push_back(step("hanging up".into()));
                match prompt {
                    Some(p) => {
                        self.actions.push_back(Action::Play(p));
                        self.phase = Phase::Closing;
                    }
                    None => {
                        self.actions.push_back(Action::Hangup);
                        self.phase = Phase::Done;
                    }
                }
            }
        }
    }

    /// Everything queued for playing has been played.
    pub fn on_playout_finished(&mut self, now: Instant) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Playing { next } => self.enter(now, &next),
            Phase::Collecting {
                digits,
                attempt,
                deadline,
                ..
            } => {
                let timeout = self.collect_timeout();
                self.phase = Phase::Collecting {
                    digits,
                    attempt,
                    prompt_done: true,
                    deadline: deadline.or(Some(now + timeout)),
                };
            }
            Phase::Greeting => {
                self.actions.push_back(Action::Beep);
                self.phase = Phase::Beeping;
            }
            Phase::Beeping => {
                let max = match self.node_def(&self.node) {
                    Some(Node::Voicemail { max_secs, .. }) => max_secs,
                    _ => default_max_secs(),
                };
                self.actions.push_back(Action::Step {
                    node: self.node.clone(),
                    detail: format!("recording a message of up to {max} s"),
                });
                self.actions.push_back(Action::StartRecording);
                self.phase = Phase::Recording {
                    deadline: now + Duration::from_secs(max),
                };
            }
            Phase::Closing => {
                self.actions.push_back(Action::Hangup);
                self.phase = Phase::Done;
            }
            Phase::Waiting { .. } => {
                self.phase = Phase::Waiting {
                    next: self.hold_every().map(|every| now + every),
                };
            }
            other => self.phase = other,
        }
    }

    /// The hold prompt interval of the current node, if it has a hold prompt.
    fn hold_every(&self) -> Option<Duration> {
        match self.node_def(&self.node) {
            Some(Node::SetSkill {
                hold_prompt: Some(_),
                hold_every_secs,
                ..
            }) => Some(Duration::from_secs(hold_every_secs)),
            _ => None,
        }
    }

    fn collect_timeout(&self) -> Duration {
        match self.node_def(&self.node) {
            Some(Node::Collect { timeout_secs, .. }) => Duration::from_secs(timeout_secs),
            _ => Duration::from_secs(default_timeout_secs()),
        }
    }

    /// The caller pressed a key.
    pub fn on_digit(&mut self, now: Instant, digit: char) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Collecting {
                mut digits,
                attempt,
                prompt_done,
                ..
            } => {
                let Some(Node::Collect { max_digits, .. }) = self.node_def(&self.node) else {
                    return;
                };
                if !prompt_done && digits.is_empty() {
                    self.actions.push_back(Action::StopPlaying);
                }
                if digit != '#' {
                    digits.push(digit);
                }
                if digit == '#' || digits.chars().count() >= max_digits {
                    self.finish_collect(now, digits, attempt);
                } else {
                    self.phase = Phase::Collecting {
                        digits,
                        attempt,
                        prompt_done: true,
                        deadline: Some(now + self.collect_timeout()),
                    };
                }
            }
            Phase::Recording { .. } if digit == '#' => self.stop_recording(),
            other => self.phase = other,
        }
    }

    fn stop_recording(&mut self) {
        self.actions.push_back(Action::StopRecording);
        self.actions.push_back(Action::Step {
            node: self.node.clone(),
            detail: "message recorded".into(),
        });
        self.actions.push_back(Action::Hangup);
        self.phase = Phase::Done;
    }

    fn finish_collect(&mut self, now: Instant, digits: String, attempt: u32) {
        let Some(Node::Collect {
            prompt,
            retries,
            invalid_prompt,
            branches,
            on_timeout,
            on_invalid,
            ..
        }) = self.node_def(&self.node)
        else {
            return;
        };
        self.actions.push_back(Action::Digits(digits.clone()));
        if let Some(next) = branches.get(&digits) {
            self.enter(now, next);
            return;
        }
        if attempt < retries {
            self.actions.push_back(Action::Step {
                node: self.node.clone(),
                detail: format!("invalid choice {digits:?}, asking again"),
            });
            if let Some(p) = invalid_prompt {
                self.actions.push_back(Action::Play(p));
            }
            self.actions.push_back(Action::Play(prompt));
            self.phase = Phase::Collecting {
                digits: String::new(),
                attempt: attempt + 1,
                prompt_done: false,
                deadline: None,
            };
        } else {
            let next = on_invalid.unwrap_or(on_timeout);
            self.enter(now, &next);
        }
    }

    /// Time passed; call when [`Ivr::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_none_or(|d| now < d) {
            return;
        }
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Collecting {
                digits, attempt, ..
            } if !digits.is_empty() => {
                // A partial entry that stopped: judge what was typed.
                self.finish_collect(now, digits, attempt);
            }
            Phase::Collecting { attempt, .. } => {
                let Some(Node::Collect {
                    prompt,
                    retries,
                    on_timeout,
                    ..
                }) = self.node_def(&self.node)
                else {
                    return;
                };
                if attempt < retries {
                    self.actions.push_back(Action::Step {
                        node: self.node.clone(),
                        detail: "no choice made, asking again".into(),
                    });
                    self.actions.push_back(Action::Play(prompt));
                    self.phase = Phase::Collecting {
                        digits: String::new(),
                        attempt: attempt + 1,
                        prompt_done: false,
                        deadline: None,
                    };
                } else {
                    self.actions.push_back(Action::Step {
                        node: self.node.clone(),
                        detail: "no choice made".into(),
                    });
                    self.enter(now, &on_timeout);
                }
            }
            Phase::Recording { .. } => self.stop_recording(),
            Phase::Waiting { .. } => {
                if let Some(Node::SetSkill {
                    hold_prompt: Some(p),
                    ..
                }) = self.node_def(&self.node)
                {
                    self.actions.push_back(Action::Play(p));
                }
                // The next one is scheduled when this one has played.
                self.phase = Phase::Waiting { next: None };
            }
            other => self.phase = other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(ivr: &mut Ivr) -> Vec<Action> {
        std::iter::from_fn(|| ivr.poll_action()).collect()
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    fn builtin() -> Ivr {
        Ivr::new(FlowSet::builtin().for_number("100").clone())
    }

    fn handoffs(a: &[Action]) -> Vec<String> {
        a.iter()
            .filter_map(|a| match a {
                Action::Handoff { skill } => Some(skill.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn builtin_flow_parses_and_has_the_menu() {
        let set = FlowSet::builtin();
        let flow = set.for_number("anything");
        assert_eq!(flow.start, "menu");
        assert_eq!(set.prompts().len(), 9);
    }

    #[test]
    fn press_one_hands_off_to_billing() {
        let t0 = Instant::now();
        let mut ivr = builtin();
        ivr.start(t0);
        let a = drain(&mut ivr);
        assert!(matches!(&a[0], Action::Step { node, .. } if node == "menu"));
        assert!(matches!(&a[1], Action::Play(Prompt::Text(_))));
        assert_eq!(ivr.poll_timeout(), None, "no timer while the prompt plays");
        ivr.on_playout_finished(secs(t0, 6));
        assert_eq!(ivr.poll_timeout(), Some(secs(t0, 11)));
        ivr.on_digit(secs(t0, 7), '1');
        let a = drain(&mut ivr);
        assert_eq!(a[0], Action::Digits("1".into()));
        assert_eq!(handoffs(&a), vec!["billing".to_string()]);
        assert_eq!(ivr.node(), "billing");
        assert_eq!(
            ivr.poll_timeout(),
            None,
            "hold timer waits for the hold prompt"
        );
        assert!(!ivr.is_done());
        // Reassurance every 30 s after the last prompt ended, until hang-up.
        ivr.on_playout_finished(secs(t0, 10));
        assert_eq!(ivr.poll_timeout(), Some(secs(t0, 40)));
        ivr.handle_timeout(secs(t0, 40));
        let a = drain(&mut ivr);
        assert!(
            matches!(&a[..], [Action::Play(Prompt::Text(t))] if t.starts_with("Thank you for holding")),
            "{a:?}"
        );
        assert_eq!(ivr.poll_timeout(), None);
        ivr.on_playout_finished(secs(t0, 43));
        assert_eq!(ivr.poll_timeout(), Some(secs(t0, 73)));
        assert!(handoffs(&drain(&mut ivr)).is_empty(), "one handoff only");
    }

    #[test]
    fn typing_over_the_prompt_stops_it() {
        let t0 = Instant::now();
        let mut ivr = builtin();
        ivr.start(t0);
        drain(&mut ivr);
        ivr.on_digit(secs(t0, 1), '2');
        let a = drain(&mut ivr);
        assert_eq!(a[0], Action::StopPlaying);
        assert_eq!(handoffs(&a), vec!["technical".to_string()]);
    }

    #[test]
    fn timeouts_retry_once_then_go_to_general() {
        let t0 = Instant::now();
        let mut ivr = builtin();
        ivr.start(t0);
        drain(&mut ivr);
        ivr.on_playout_finished(secs(t0, 6));
        ivr.handle_timeout(secs(t0, 10)); // early: nothing
        assert!(drain(&mut ivr).is_empty());
        ivr.handle_timeout(secs(t0, 11));
        let a = drain(&mut ivr);
        assert!(a.iter().any(|a| matches!(a, Action::Play(_))), "{a:?}");
        assert!(handoffs(&a).is_empty());
        assert_eq!(ivr.poll_timeout(), None);
        ivr.on_playout_finished(secs(t0, 17));
        ivr.handle_timeout(secs(t0, 22));
        let a = drain(&mut ivr);
        assert_eq!(handoffs(&a), vec!["general".to_string()]);
    }

    #[test]
    fn invalid_choice_plays_the_invalid_prompt_then_falls_through() {
        let t0 = Instant::now();
        let mut ivr = builtin();
        ivr.start(t0);
        drain(&mut ivr);
        ivr.on_playout_finished(secs(t0, 6));
        ivr.on_digit(secs(t0, 7), '9');
        let a = drain(&mut ivr);
        assert_eq!(a[0], Action::Digits("9".into()));
        assert!(a.contains(&Action::Play(Prompt::Text(
            "Sorry, that is not a valid choice.".into()
        ))));
        ivr.on_digit(secs(t0, 8), '7');
        let a = drain(&mut ivr);
        assert_eq!(handoffs(&a), vec!["general".to_string()]);
    }

    #[test]
    fn voicemail_greets_beeps_records_and_hangs_up_at_the_limit() {
        let t0 = Instant::now();
        let mut ivr = builtin();
        ivr.start(t0);
        drain(&mut ivr);
        ivr.on_digit(secs(t0, 1), '3');
        let a = drain(&mut ivr);
        assert!(matches!(a.last(), Some(Action::Play(_))));
        ivr.on_playout_finished(secs(t0, 5));
        assert_eq!(drain(&mut ivr), vec![Action::Beep]);
        ivr.on_playout_finished(secs(t0, 6));
        let a = drain(&mut ivr);
        assert!(a.contains(&Action::StartRecording));
        assert!(ivr.is_recording());
        assert_eq!(ivr.poll_timeout(), Some(secs(t0, 126)));
        ivr.handle_timeout(secs(t0, 126));
        let a = drain(&mut ivr);
        assert_eq!(a.first(), Some(&Action::StopRecording));
        assert_eq!(a.last(), Some(&Action::Hangup));
        assert!(ivr.is_done());
    }

    #[test]
    fn pound_ends_a_voicemail() {
        let t0 = Instant::now();
        let mut ivr = builtin();
        ivr.start(t0);
        ivr.on_digit(t0, '3');
        ivr.on_playout_finished(secs(t0, 5));
        ivr.on_playout_finished(secs(t0, 6));
        drain(&mut ivr);
        ivr.on_digit(secs(t0, 9), '5'); // ignored while recording
        assert!(drain(&mut ivr).is_empty());
        ivr.on_digit(secs(t0, 10), '#');
        let a = drain(&mut ivr);
        assert_eq!(a.first(), Some(&Action::StopRecording));
        assert_eq!(a.last(), Some(&Action::Hangup));
    }

    const MULTI: &str = r#"
[numbers]
"+15550100" = "sales"

[flows.default]
start = "bye"
[flows.default.nodes.bye]
type = "hangup"
prompt = { text = "We are closed." }

[flows.sales]
start = "hello"
[flows.sales.nodes.hello]
type = "play"
prompt = { file = "/prompts/hello.wav" }
next = "ext"
[flows.sales.nodes.ext]
type = "collect"
prompt = { text = "Enter the extension, then pound." }
max_digits = 4
timeout_secs = 3
retries = 0
branches = { "1234" = "done" }
on_timeout = "done"
[flows.sales.nodes.done]
type = "hangup"
"#;

    #[test]
    fn flows_are_chosen_by_called_number() {
        let set = FlowSet::from_toml(MULTI).unwrap();
        assert_eq!(set.for_number("+15550100").start, "hello");
        assert_eq!(set.for_number("200").start, "bye");
        let t0 = Instant::now();
        let mut ivr = Ivr::new(set.for_number("200").clone());
        ivr.start(t0);
        drain(&mut ivr);
        ivr.on_playout_finished(secs(t0, 2));
        assert_eq!(drain(&mut ivr), vec![Action::Hangup]);
        assert!(ivr.is_done());
    }

    #[test]
    fn multi_digit_entry_with_pound_and_inter_digit_timeout() {
        let set = FlowSet::from_toml(MULTI).unwrap();
        let t0 = Instant::now();
        let mut ivr = Ivr::new(set.for_number("+15550100").clone());
        ivr.start(t0);
        let a = drain(&mut ivr);
        assert_eq!(
            a[1],
            Action::Play(Prompt::File("/prompts/hello.wav".into()))
        );
        ivr.on_playout_finished(secs(t0, 1));
        drain(&mut ivr);
        ivr.on_playout_finished(secs(t0, 3));
        ivr.on_digit(secs(t0, 4), '1');
        ivr.on_digit(secs(t0, 5), '2');
        assert_eq!(ivr.poll_timeout(), Some(secs(t0, 8)), "inter-digit timer");
        ivr.on_digit(secs(t0, 6), '3');
        ivr.on_digit(secs(t0, 7), '4');
        let a = drain(&mut ivr);
        assert_eq!(a[0], Action::Digits("1234".into()));
        assert_eq!(ivr.node(), "done");
        assert_eq!(a.last(), Some(&Action::Hangup));

        let mut ivr = Ivr::new(set.for_number("+15550100").clone());
        ivr.start(t0);
        ivr.on_playout_finished(secs(t0, 1));
        ivr.on_playout_finished(secs(t0, 3));
        drain(&mut ivr);
        ivr.on_digit(secs(t0, 4), '9');
        ivr.handle_timeout(secs(t0, 7));
        let a = drain(&mut ivr);
        assert_eq!(a[0], Action::Digits("9".into()));
        assert_eq!(a.last(), Some(&Action::Hangup), "no retries left");
    }

    #[derive(Debug, Clone)]
    enum Input {
        Digit(char),
        Played,
        Wait(u64),
    }

    fn input() -> impl proptest::strategy::Strategy<Value = Input> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::sample::select(vec!['0', '1', '2', '3', '9', '#', '*'])
                .prop_map(Input::Digit),
            Just(Input::Played),
            (0u64..200).prop_map(Input::Wait),
        ]
    }

    proptest::proptest! {
        /// Whatever the caller does and however time passes: at most one
        /// handoff, nothing after hanging up, recording only between start
        /// and stop, and a deadline never in the past once handled.
        #[test]
        fn any_caller_behaviour_keeps_the_invariants(
            inputs in proptest::collection::vec(input(), 0..60)
        ) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut ivr = builtin();
            ivr.start(now);
            let mut all = drain(&mut ivr);
            for i in inputs {
                match i {
                    Input::Digit(d) => ivr.on_digit(now, d),
                    Input::Played => ivr.on_playout_finished(now),
                    Input::Wait(s) => {
                        now += Duration::from_secs(s);
                        ivr.handle_timeout(now);
                        if let Some(d) = ivr.poll_timeout() {
                            proptest::prop_assert!(d > now);
                        }
                    }
                }
                all.extend(drain(&mut ivr));
            }
            proptest::prop_assert!(handoffs(&all).len() <= 1);
            if let Some(pos) = all.iter().position(|a| *a == Action::Hangup) {
                proptest::prop_assert_eq!(pos, all.len() - 1);
                proptest::prop_assert!(ivr.is_done());
            }
            let starts = all.iter().filter(|a| **a == Action::StartRecording).count();
            let stops = all.iter().filter(|a| **a == Action::StopRecording).count();
            proptest::prop_assert!(starts <= 1 && stops <= starts);
            proptest::prop_assert_eq!(ivr.is_recording(), starts == 1 && stops == 0);
        }
    }

    #[test]
    fn bad_flow_files_are_errors() {
        assert!(matches!(
            FlowSet::from_toml("[flows.x]\nstart = \"a\"\n[flows.x.nodes.a]\ntype = \"hangup\"\n"),
            Err(FlowError::NoDefault)
        ));
        let dangling = "[flows.default]\nstart = \"a\"\n[flows.default.nodes.a]\ntype = \"play\"\nprompt = { text = \"hi\" }\nnext = \"b\"\n";
        assert!(matches!(
            FlowSet::from_toml(dangling),
            Err(FlowError::MissingNode { node, .. }) if node == "b"
        ));
        let bad_skill = "[flows.default]\nstart = \"a\"\n[flows.default.nodes.a]\ntype = \"set_skill\"\nskill = \"Bad Skill\"\n";
        assert!(matches!(
            FlowSet::from_toml(bad_skill),
            Err(FlowError::BadNode { .. })
        ));
        let unknown_number = "[numbers]\n\"1\" = \"nope\"\n[flows.default]\nstart = \"a\"\n[flows.default.nodes.a]\ntype = \"hangup\"\n";
        assert!(matches!(
            FlowSet::from_toml(unknown_number),
            Err(FlowError::MissingFlow { .. })
        ));
        assert!(matches!(
            FlowSet::from_toml("flows = 3"),
            Err(FlowError::Parse(_))
        ));
    }
}
