//! Routing wired into the product: handoff → queue → offer → decline →
//! next agent → accept, with the context; presence; restart rebuild; and two
//! nodes sharing PostgreSQL + JetStream never assigning a contact twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_gateway::auth::Role;
use switchboard_gateway::config::BotMode;

/// Routing on its own: the virtual agent is off, so only the tests ask for people.
async fn start(stack: Stack) -> TestServer {
    TestServer::start_configured(stack, |c| c.bot = BotMode::Off).await
}

/// Polls `probe` until it returns `Some`, for at most 20 s (routing runs in
/// the background; this waits for an outcome, it does not time anything).
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting for: {what}");
}

async fn offers(agent: &Client) -> Vec<Value> {
    let (s, me) = agent.get("/api/routing/me").await;
    assert_eq!(s, 200, "{me}");
    me["offers"].as_array().unwrap().clone()
}

async fn one_offer(agent: &Client, conversation: &str) -> String {
    eventually("an offer", || async {
        offers(agent)
            .await
            .into_iter()
            .find(|o| o["conversation_id"] == conversation)
            .map(|o| o["offer"].as_str().unwrap().to_string())
    })
    .await
}

async fn available(agent: &Client) {
    let (s, b) = agent
        .put("/api/routing/me/presence", json!({"state": "available"}))
        .await;
    assert_eq!(s, 200, "{b}");
}

async fn snapshot_agent(admin: &Client, id: &str) -> Option<Value> {
    let (s, snap) = admin.get("/api/routing/snapshot").await;
    if s != 200 {
        return None;
    }
    snap["agents"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
}

async fn wait_available(admin: &Client, id: &str) {
    eventually("the router to see the agent available", || async {
        snapshot_agent(admin, id)
            .await
            .filter(|a| a["presence"]["state"] == "available")
    })
    .await;
}

async fn kinds(agent: &Client, id: &str) -> Vec<Value> {
    let (s, ev) = agent.get(&format!("/api/conversations/{id}/events")).await;
    assert_eq!(s, 200);
    ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].clone())
        .collect()
}

async fn billing_setup(server: &TestServer) -> (Client, Client, Client, String, String) {
    server.add_user("root@example.com", Role::Admin).await;
    let ann_id = server.add_user("ann@example.com", Role::Agent).await;
    let bob_id = server.add_user("bob@example.com", Role::Agent).await;
    let admin = server.staff("root@example.com").await;
    let (s, q) = admin
        .put(
            "/api/routing/queues/billing",
            json!({"kind": "chat", "required_skills": [{"skill": "billing", "min_proficiency": 1}],
                   "strategy": {"kind": "skills_weighted"}, "offer_timeout": 120.0}),
        )
        .await;
    assert_eq!(s, 200, "{q}");
    for (id, level) in [(&ann_id, 5), (&bob_id, 2)] {
        let (s, b) = admin
            .put(
                &format!("/api/routing/agents/{id}"),
                json!({"skills": {"billing": level}, "languages": ["en"], "chat_capacity": 2}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let ann = server.staff("ann@example.com").await;
    let bob = server.staff("bob@example.com").await;
    available(&ann).await;
    available(&bob).await;
    wait_available(&admin, &ann_id).await;
    wait_available(&admin, &bob_id).await;
    (admin, ann, bob, ann_id, bob_id)
}

async fn decline_then_accept(stack: Stack) {
    let server = start(stack).await;
    let (_admin, ann, bob, ann_id, bob_id) = billing_setup(&server).await;
    let (customer, id, _) = server.customer("Carla").await;
    let (s, _) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "I was charged twice this month", "client_msg_id": "m1"}),
        )
        .await;
    assert_eq!(s, 201);

    // The customer asks for a person about billing.
    let (s, h) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/handoff"),
            json!({"topic": "billing"}),
        )
        .await;
    assert_eq!(s, 202, "{h}");
    // Asking again while waiting changes nothing.
    let (s, again) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/handoff"),
            json!({}),
        )
        .await;
    assert_eq!((s, again["events"].as_array().unwrap().len()), (202, 0));

    // The most proficient agent gets the offer; the other does not.
    let offer_ann = one_offer(&ann, &id).await;
    assert!(offers(&bob).await.is_empty(), "one agent at a time");

    // Offers are for staff only.
    let (s, seen) = customer
        .get(&format!("/api/webchat/conversations/{id}/events"))
        .await;
    assert_eq!(s, 200);
    assert!(
        seen["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"]["type"] != "offered"),
        "offers are not shown to customers"
    );

    // Bob cannot answer Ann's offer; Ann declines.
    let (s, _) = bob
        .post(
            &format!("/api/conversations/{id}/offers/{offer_ann}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, d) = ann
        .post(
            &format!("/api/conversations/{id}/offers/{offer_ann}/decline"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{d}");

    // Bob is next; Ann's old offer is dead; Bob accepts.
    let offer_bob = one_offer(&bob, &id).await;
    assert_ne!(offer_bob, offer_ann);
    let (s, _) = ann
        .post(
            &format!("/api/conversations/{id}/offers/{offer_ann}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "a declined offer cannot be accepted later");
    let (s, a) = bob
        .post(
            &format!("/api/conversations/{id}/offers/{offer_bob}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    let conv = eventually("the assignment", || async {
        let (_, c) = bob.get(&format!("/api/conversations/{id}")).await;
        (c["assignee"] == bob_id.as_str()).then_some(c)
    })
    .await;
    assert!(conv["queue"].is_null() && conv["offer"].is_null(), "{conv}");

    // The whole story is in the conversation, with the context of the handoff.
    let events = kinds(&bob, &id).await;
    let handoff = events
        .iter()
        .find(|e| e["type"] == "handoff_requested")
        .unwrap();
    assert_eq!(handoff["reason"], "customer_request");
    assert_eq!(handoff["skill"], "billing");
    assert_eq!(
        handoff["context"]["transcript"][0]["text"],
        "I was charged twice this month"
    );
    let story: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let t = e["type"].as_str().unwrap();
            match t {
                "offered" => Some(format!("offered:{}", e["agent"].as_str().unwrap())),
                "offer_answered" => Some(format!("answered:{}", e["accepted"])),
                "assigned" => Some(format!(
                    "assigned:{}:{}",
                    e["agent"].as_str().unwrap(),
                    e["by"]["kind"].as_str().unwrap()
                )),
                _ => None,
            }
        })
        .collect();
    assert_eq!(
        story,
        vec![
            format!("offered:{ann_id}"),
            "answered:false".to_string(),
            format!("offered:{bob_id}"),
            "answered:true".to_string(),
            format!("assigned:{bob_id}:system"),
        ]
    );
    let offered = events.iter().find(|e| e["type"] == "offered").unwrap();
    assert!(
        offered["why"].as_str().unwrap().contains("billing 5"),
        "explained: {offered}"
    );
}
both_stacks!(decline_then_accept_with_context, decline_then_accept);

async fn presence_and_config_are_checked(stack: Stack) {
    let server = start(stack).await;
    server.add_user("root@example.com", Role::Admin).await;
    server.add_user("ann@example.com", Role::Agent).await;
    server
        .add_user("kim@example.com", Role::KnowledgeManager)
        .await;
    let admin = server.staff("root@example.com").await;
    let ann = server.staff("ann@example.com").await;
    let kim = server.staff("kim@example.com").await;
    let (s, e) = ann
        .put("/api/routing/me/presence", json!({"state": "sleeping"}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("validation_failed"))
    );
    let (s, _) = kim
        .put("/api/routing/me/presence", json!({"state": "available"}))
        .await;
    assert_eq!(s, 403, "a knowledge manager takes no conversations");
    let (s, _) = ann
        .put("/api/routing/queues/vip", json!({"kind": "chat"}))
        .await;
    assert_eq!(s, 403, "only admins configure routing");
    let (s, e) = admin
        .put("/api/routing/queues/Bad%20Name", json!({"kind": "chat"}))
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = admin
        .put(
            "/api/routing/queues/vip",
            json!({"kind": "chat", "offer_timeout": 0.0}),
        )
        .await;
    assert_eq!(s, 422, "zero offer timeout refused: {e}");
    let (s, q) = admin.get("/api/routing/queues").await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = q["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["general"],
        "a fresh install has the general queue"
    );
    let (s, _) = admin
        .post(
            "/api/conversations/0190b6b0-0000-7000-8000-000000000000/offers/1-1/accept",
            json!({}),
        )
        .await;
    assert_eq!(s, 404, "unknown conversation");
    let (s, _) = ann.get("/api/routing/snapshot").await;
    assert_eq!(s, 403, "agents do not see the supervisor view");
}
both_stacks!(presence_and_config, presence_and_config_are_checked);

/// After a restart the router knows who holds what: an agent at capacity
/// gets no new offer, and a waiting contact is offered again.
async fn restart_rebuilds(stack: Stack) {
    let server = start(stack).await;
    let (admin, ann, _bob, ann_id, bob_id) = billing_setup(&server).await;
    // Bob goes away so that only Ann takes billing contacts; Ann takes one chat at a time.
    let (s, _) = admin
        .put(
            &format!("/api/routing/agents/{ann_id}"),
            json!({"skills": {"billing": 5}, "chat_capacity": 1}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = admin
        .put(
            &format!("/api/routing/agents/{bob_id}/presence"),
            json!({"state": "away", "reason": "training"}),
        )
        .await;
    assert_eq!(s, 200);
    eventually("capacity 1 applied", || async {
        snapshot_agent(&admin, &ann_id)
            .await
            .filter(|a| a["capacity"]["chat"] == 1)
    })
    .await;
    let (c1, first, _) = server.customer("First").await;
    c1.post(
        &format!("/api/webchat/conversations/{first}/handoff"),
        json!({"topic": "billing"}),
    )
    .await;
    let offer = one_offer(&ann, &first).await;
    let (s, _) = ann
        .post(
            &format!("/api/conversations/{first}/offers/{offer}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    eventually("assigned", || async {
        let (_, c) = ann.get(&format!("/api/conversations/{first}")).await;
        (c["assignee"] == ann_id.as_str()).then_some(())
    })
    .await;

    let server = server.restart().await;
    let admin = server.staff("root@example.com").await;
    let ann = server.staff("ann@example.com").await;
    // Rebuilt: Ann is still available and holds the first chat.
    eventually("rebuilt load", || async {
        snapshot_agent(&admin, &ann_id)
            .await
            .filter(|a| a["chat_load"] == 1 && a["presence"]["state"] == "available")
    })
    .await;
    let (c2, second, _) = server.customer("Second").await;
    c2.post(
        &format!("/api/webchat/conversations/{second}/handoff"),
        json!({"topic": "billing"}),
    )
    .await;
    // The second contact waits: Ann is full.
    eventually("the second contact waiting", || async {
        let (_, snap) = admin.get("/api/routing/snapshot").await;
        snap["queues"].as_array()?.iter().find_map(|q| {
            q["waiting_contacts"]
                .as_array()?
                .iter()
                .find(|c| c["contact"] == second.as_str())
                .cloned()
        })
    })
    .await;
    assert!(offers(&ann).await.is_empty(), "no offer beyond capacity");
    // The waiting customer is told where they stand.
    let (s, seen) = c2
        .get(&format!("/api/webchat/conversations/{second}/events"))
        .await;
    assert_eq!(s, 200);
    let queued = seen["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"]["type"] == "queued")
        .unwrap_or_else(|| panic!("customer sees the queue position: {seen}"));
    assert_eq!(queued["event"]["queue"], "billing");
    assert_eq!(queued["event"]["position"], 1);
    // Ann closes the first chat; the second is offered to her.
    let (s, _) = ann
        .post(
            &format!("/api/conversations/{first}/close"),
            json!({"disposition": "resolved"}),
        )
        .await;
    assert_eq!(s, 200);
    let before = one_offer(&ann, &second).await;

    // A pending offer survives a restart as a new offer.
    let server = server.restart().await;
    let ann = server.staff("ann@example.com").await;
    let again = eventually("the offer made again", || async {
        let list = offers(&ann).await;
        list.into_iter()
            .find(|o| o["conversation_id"] == second.as_str() && o["offer"] != before.as_str())
    })
    .await;
    let events = kinds(&ann, &second).await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "offer_withdrawn" && e["reason"] == "router_restarted"),
        "{events:?}"
    );
    assert_ne!(again["offer"], Value::Null);
}
both_stacks!(restart_rebuilds_router_state, restart_rebuilds);

/// Two nodes on one PostgreSQL and one JetStream stream: customers and agents
/// spread over both, the routing leader stops halfway and the other node
/// takes over, and still every conversation is assigned exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_never_assign_twice() {
    if !scaled_available() {
        return;
    }
    let a = start(Stack::Scaled).await;
    let b = a.second_node().await;
    a.add_user("root@example.com", Role::Admin).await;
    let mut agent_ids = Vec::new();
    for n in 0..4 {
        agent_ids.push(
            a.add_user(&format!("agent{n}@example.com"), Role::Agent)
                .await,
        );
    }
    let admin = b.staff("root@example.com").await;
    let mut agents = Vec::new();
    for n in 0..4 {
        let node = if n % 2 == 0 { &a } else { &b };
        let c = node.staff(&format!("agent{n}@example.com")).await;
        available(&c).await;
        agents.push(c);
    }
    for id in &agent_ids {
        wait_available(&admin, id).await;
    }
    let mut conversations = Vec::new();
    for n in 0..16 {
        let node = if n % 2 == 0 { &a } else { &b };
        let (c, id, _) = node.customer(&format!("Customer {n}")).await;
        let (s, _) = c
            .post(
                &format!("/api/webchat/conversations/{id}/handoff"),
                json!({}),
            )
            .await;
        assert_eq!(s, 202);
        conversations.push(id);
    }
    // Every agent accepts whatever it is offered, through its own node; one
    // node stops halfway through.
    let mut a = Some(a);
    let mut assigned = std::collections::HashSet::new();
    for round in 0..300 {
        if round == 20
            && let Some(mut node) = a.take()
        {
            node.stop().await;
            // Its agents carry on through the other node.
            for n in (0..4).step_by(2) {
                agents[n] = b.staff(&format!("agent{n}@example.com")).await;
            }
        }
        for agent in &agents {
            for o in offers(agent).await {
                let (cid, offer) = (
                    o["conversation_id"].as_str().unwrap(),
                    o["offer"].as_str().unwrap(),
                );
                let (s, _) = agent
                    .post(
                        &format!("/api/conversations/{cid}/offers/{offer}/accept"),
                        json!({}),
                    )
                    .await;
                assert!(s == 200 || s == 409, "accept answered {s}");
            }
            // Close what each agent holds, freeing capacity for the rest.
            let (_, mine) = agent.get("/api/conversations?view=mine").await;
            for c in mine["conversations"].as_array().unwrap() {
                let id = c["id"].as_str().unwrap().to_string();
                let (s, _) = agent
                    .post(
                        &format!("/api/conversations/{id}/close"),
                        json!({"disposition": "resolved"}),
                    )
                    .await;
                assert_eq!(s, 200);
                assigned.insert(id);
            }
        }
        if assigned.len() == conversations.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        assigned.len(),
        conversations.len(),
        "every contact reached an agent"
    );
    for id in &conversations {
        let events = kinds(&admin, id).await;
        let assigns = events.iter().filter(|e| e["type"] == "assigned").count();
        assert_eq!(assigns, 1, "conversation {id} assigned {assigns} times");
    }
}
