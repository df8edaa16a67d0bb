//! The virtual agent in the product: it answers web-chat customers from the
//! published knowledge base with citations (real MiniLM embeddings, the
//! sample knowledge base in nlu/eval/kb), records why, and hands over to a
//! person with the context — which routing then offers to an agent.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_gateway::auth::Role;

async fn events(c: &Client, path: &str) -> Vec<Value> {
    let (s, body) = c.get(path).await;
    assert_eq!(s, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

/// Waits (up to 30 s) until the conversation holds `n` bot messages.
async fn bot_messages(staff: &Client, id: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let all = events(staff, &format!("/api/conversations/{id}/events")).await;
        let bot: Vec<Value> = all
            .into_iter()
            .filter(|e| {
                e["event"]["type"] == "message_added" && e["event"]["from"]["kind"] == "bot"
            })
            .collect();
        if bot.len() >= n {
            return bot;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the virtual agent did not answer");
}

fn sample_kb() -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nlu/eval/kb");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        files.push(json!({
            "name": path.file_name().unwrap().to_string_lossy(),
            "content": std::fs::read_to_string(&path).unwrap(),
        }));
    }
    json!({"files": files, "publish": true})
}

/// Adds a knowledge manager (kim) and an agent (ann) and publishes the
/// sample knowledge base; returns their sessions.
async fn with_sample_kb(server: &TestServer) -> (Client, Client) {
    server
        .add_user("kim@example.com", Role::KnowledgeManager)
        .await;
    server.add_user("ann@example.com", Role::Agent).await;
    let kim = server.staff("kim@example.com").await;
    let ann = server.staff("ann@example.com").await;
    let (s, report) = kim.post("/api/kb/import", sample_kb()).await;
    assert_eq!(s, 200, "{report}");
    (kim, ann)
}

async fn answers_then_hands_off(stack: Stack) {
    let server = TestServer::start(stack).await;
    server
        .add_user("kim@example.com", Role::KnowledgeManager)
        .await;
    let ann_id = server.add_user("ann@example.com", Role::Agent).await;
    let kim = server.staff("kim@example.com").await;
    let ann = server.staff("ann@example.com").await;
    let (s, report) = kim.post("/api/kb/import", sample_kb()).await;
    assert_eq!(s, 200, "{report}");
    assert!(
        report["created"].as_array().unwrap().len() >= 10,
        "{report}"
    );
    let (s, _) = ann
        .put("/api/routing/me/presence", json!({"state": "available"}))
        .await;
    assert_eq!(s, 200);

    let (customer, id, _) = server.customer("Carla").await;
    let (s, _) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "How much does the World Pass cost per day?", "client_msg_id": "q1"}),
        )
        .await;
    assert_eq!(s, 201);
    let reply = bot_messages(&ann, &id, 1).await;
    let text = reply[0]["event"]["text"].as_str().unwrap();
    assert!(text.contains("€5"), "the answer states the price: {text}");

    // Staff see why: intent, decision, the article cited, the trace.
    let all = events(&ann, &format!("/api/conversations/{id}/events")).await;
    let turn = all
        .iter()
        .find(|e| e["event"]["type"] == "bot_turn")
        .expect("bot_turn recorded");
    assert_eq!(turn["event"]["decision"], "answer", "{turn}");
    let cited = turn["event"]["citations"].as_array().unwrap();
    assert!(
        cited
            .iter()
            .any(|c| c.as_str().unwrap().contains("Roaming abroad")),
        "{turn}"
    );
    assert!(turn["event"]["trace"]["passages"].is_array());
    // The customer sees the reply but not the reasoning.
    let seen = events(
        &customer,
        &format!("/api/webchat/conversations/{id}/events"),
    )
    .await;
    assert!(seen.iter().all(|e| e["event"]["type"] != "bot_turn"));
    assert!(seen.iter().any(|e| e["event"]["from"]["kind"] == "bot"));

    // Asking for a person escalates with the context, and routing offers it.
    let (s, _) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "I want to talk to a human please", "client_msg_id": "q2"}),
        )
        .await;
    assert_eq!(s, 201);
    bot_messages(&ann, &id, 2).await;
    let all = events(&ann, &format!("/api/conversations/{id}/events")).await;
    let handoff = all
        .iter()
        .find(|e| e["event"]["type"] == "handoff_requested")
        .expect("handoff");
    assert_eq!(handoff["event"]["reason"], "customer_request", "{handoff}");
    let ctx = &handoff["event"]["context"];
    assert_eq!(ctx["language"], "en");
    let transcript: Vec<&str> = ctx["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(
        transcript.contains(&"How much does the World Pass cost per day?"),
        "{ctx}"
    );
    let offered = {
        let mut found = None;
        for _ in 0..200 {
            let (_, me) = ann.get("/api/routing/me").await;
            if let Some(o) = me["offers"].as_array().unwrap().first() {
                found = Some(o.clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        found.expect("the handoff reached the agent as an offer")
    };
    assert_eq!(offered["conversation_id"], id.as_str());
    let _ = ann_id;

    // While waiting for a person the bot stays quiet.
    let (s, _) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "Hello? How much is the World Pass?", "client_msg_id": "q3"}),
        )
        .await;
    assert_eq!(s, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = events(&ann, &format!("/api/conversations/{id}/events")).await;
    let bots = all
        .iter()
        .filter(|e| e["event"]["type"] == "message_added" && e["event"]["from"]["kind"] == "bot")
        .count();
    assert_eq!(bots, 2, "no bot reply after the handoff");
}
both_stacks!(bot_answers_then_hands_off, answers_then_hands_off);

/// A question the knowledge base cannot answer shows up in the gaps view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_questions_are_listed_as_gaps() {
    let server = TestServer::start(Stack::Embedded).await;
    let (kim, ann) = with_sample_kb(&server).await;
    let question = "How do I set up voicemail greetings on my phone?";
    let (customer, id, _) = server.customer("Gus").await;
    let (s, _) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": question, "client_msg_id": "g1"}),
        )
        .await;
    assert_eq!(s, 201);
    bot_messages(&ann, &id, 1).await;
    let all = events(&ann, &format!("/api/conversations/{id}/events")).await;
    let turn = all
        .iter()
        .find(|e| e["event"]["type"] == "bot_turn")
        .unwrap();
    assert_ne!(
        turn["event"]["decision"], "answer",
        "no article covers this: {turn}"
    );
    let (s, gaps) = kim.get("/api/kb/gaps").await;
    assert_eq!(s, 200, "{gaps}");
    let gap = gaps["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["question"] == question)
        .unwrap_or_else(|| panic!("listed as a gap: {gaps}"));
    assert_eq!(gap["count"], 1);
    assert_eq!(gap["conversations"][0], id.as_str());
    let (s, _) = ann.get("/api/kb/gaps").await;
    assert_eq!(s, 403, "agents do not manage knowledge");

    // The knowledge manager tries a question: decision, answer and passages, nothing stored.
    let (s, tried) = kim
        .post(
            "/api/kb/try",
            json!({"question": "How much does the World Pass cost per day?"}),
        )
        .await;
    assert_eq!(s, 200, "{tried}");
    assert_eq!(tried["decision"], "answer");
    assert!(tried["reply"].as_str().unwrap().contains("€5"), "{tried}");
    assert!(!tried["trace"]["passages"].as_array().unwrap().is_empty());
}

/// Outside the virtual agent's hours a customer goes straight to the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_bot_hours_conversations_go_to_people() {
    let server = TestServer::start_configured(Stack::Embedded, |c| {
        c.bot_hours = Some(switchboard_router::BusinessHours {
            utc_offset_minutes: 0,
            weekly: std::array::from_fn(|_| Vec::new()), // never open
        });
    })
    .await;
    server.add_user("ann@example.com", Role::Agent).await;
    let ann = server.staff("ann@example.com").await;
    let (customer, id, _) = server.customer("Olga").await;
    let (s, _) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "How much does the World Pass cost? My card is 4111 1111 1111 1111", "client_msg_id": "h1"}),
        )
        .await;
    assert_eq!(s, 201);
    let mut handoff = None;
    for _ in 0..200 {
        let all = events(&ann, &format!("/api/conversations/{id}/events")).await;
        if let Some(h) = all
            .iter()
            .find(|e| e["event"]["type"] == "handoff_requested")
        {
            handoff = Some((h.clone(), all));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (h, all) = handoff.expect("handed to people outside the bot's hours");
    assert_eq!(h["event"]["reason"], "bot_disabled");
    let line = h["event"]["context"]["transcript"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        !line.contains("4111 1111 1111 1111"),
        "card masked in the context: {line}"
    );
    assert!(
        all.iter().all(|e| e["event"]["from"]["kind"] != "bot"),
        "the bot stays silent outside its hours"
    );
}

/// `switchboard_bot_caught_up_total` from `/metrics` (0 before the first).
async fn caught_up(server: &TestServer) -> u64 {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("switchboard_bot_caught_up_total"))
        .and_then(|l| l.split_whitespace().last())
        .map_or(0, |v| v.parse::<f64>().unwrap() as u64)
}

/// With an in-process bus that keeps a single event, the virtual agent keeps
/// falling behind it (`CursorExpired`). It then reads the customer messages
/// it missed from the database: every customer is answered, exactly once.
/// Rounds of 20 simultaneous customers go on until a catch-up has happened
/// (the first round nearly always has one), each round checked in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_behind_the_bus_catches_up_from_the_database() {
    let server = TestServer::start_configured(Stack::Embedded, |c| c.bus_retention = 1).await;
    let (_kim, ann) = with_sample_kb(&server).await;
    let db = server.db().await;

    // Customers cannot take the turns' keys for their own messages.
    let (customer, id, _) = server.customer("Mallory").await;
    let (s, body) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "hello", "client_msg_id": "bot:0190"}),
        )
        .await;
    assert_eq!(s, 422, "{body}");

    for round in 1..=5 {
        let mut customers = Vec::new();
        for i in 0..20 {
            customers.push(
                server
                    .customer(&format!("Round {round} customer {i}"))
                    .await,
            );
        }
        let posts = customers.iter().map(|(c, id, _)| async move {
            c.post(
                &format!("/api/webchat/conversations/{id}/messages"),
                json!({"text": "How much does the World Pass cost per day?", "client_msg_id": "q"}),
            )
            .await
            .0
        });
        for s in futures::future::join_all(posts).await {
            assert_eq!(s, 201);
        }
        for (_, id, _) in &customers {
            let replies = bot_messages(&ann, id, 1).await;
            assert!(replies[0]["event"]["text"].as_str().unwrap().contains("€5"));
        }
        // Let any late duplicate arrive before counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (_, id, _) in &customers {
            let all = events(&ann, &format!("/api/conversations/{id}/events")).await;
            let turns = all
                .iter()
                .filter(|e| e["event"]["type"] == "bot_turn")
                .count();
            assert_eq!(turns, 1, "answered exactly once: {id}");
            // The turn's idempotency key is stored with it, so a repeat is
            // recognised after a restart too.
            let question = all
                .iter()
                .find(|e| {
                    e["event"]["type"] == "message_added"
                        && e["event"]["from"]["kind"] == "customer"
                })
                .unwrap();
            let key = format!("bot:{}", question["id"].as_str().unwrap());
            assert!(
                db.has_idempotency_key(id.parse().unwrap(), &key)
                    .await
                    .unwrap(),
                "{key} stored"
            );
        }
        let n = caught_up(&server).await;
        eprintln!("round {round}: {n} customer messages answered by catching up so far");
        if n > 0 {
            return;
        }
    }
    panic!("the virtual agent never fell behind a one-event bus: the catch-up was not exercised");
}

/// A customer message stored while no node ran the virtual agent (here:
/// written to the database while the server was down) is answered when the
/// virtual agent starts; the message it had already answered is not
/// answered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_arrived_while_the_bot_was_not_running_are_answered_on_start() {
    let server = TestServer::start(Stack::Embedded).await;
    let (_kim, ann) = with_sample_kb(&server).await;
    let (customer, id, _) = server.customer("Nadia").await;
    let (s, _) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "How much does the World Pass cost per day?", "client_msg_id": "n1"}),
        )
        .await;
    assert_eq!(s, 201);
    bot_messages(&ann, &id, 1).await;
    let all = events(&ann, &format!("/api/conversations/{id}/events")).await;
    let contact: switchboard_bus::ContactId = all
        .iter()
        .find_map(|e| {
            e["event"]["from"]["id"]
                .as_str()
                .filter(|_| e["event"]["from"]["kind"] == "customer")
        })
        .unwrap()
        .parse()
        .unwrap();

    // Down: the message reaches the store by another writer, not the bus.
    let mut server = server;
    server.stop().await;
    {
        let bus: std::sync::Arc<dyn switchboard_bus::Bus> =
            std::sync::Arc::new(switchboard_bus::MemoryBus::default());
        let (writer, done) = switchboard_gateway::writer::Writer::spawn_dedicated(
            server.config.database_url().unwrap(),
            1,
            bus,
        )
        .await
        .unwrap();
        let event = switchboard_bus::Event::MessageAdded {
            from: switchboard_bus::Participant::Customer(contact),
            text: "How much does the World Pass cost per day?".into(),
            attachments: vec![],
            client_msg_id: Some("n2".into()),
        };
        writer
            .append(
                id.parse().unwrap(),
                Some("n2".into()),
                Box::new(move |_| Ok(vec![event.clone()])),
            )
            .await
            .unwrap();
        drop(writer);
        done.await.unwrap();
    }

    let server = server.restart().await;
    let ann = server.staff("ann@example.com").await;
    bot_messages(&ann, &id, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = events(&ann, &format!("/api/conversations/{id}/events")).await;
    let turns = all
        .iter()
        .filter(|e| e["event"]["type"] == "bot_turn")
        .count();
    assert_eq!(turns, 2, "each message answered once, the first not again");
}
