//! WebSockets (exact resume, agent watch, origin checks) and restarts
//! against a real server, on the embedded and the scaled stack.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures::SinkExt;
use serde_json::json;
use switchboard_gateway::auth::Role;
use tokio_tungstenite::tungstenite::Message;

async fn websocket_resume(stack: Stack) {
    let server =
        TestServer::start_configured(stack, |c| c.bot = switchboard_gateway::config::BotMode::Off)
            .await;
    server.add_user("a@x.io", Role::Agent).await;
    let agent = server.staff("a@x.io").await;
    let (customer, id, token) = server.customer("W").await;

    let mut ws = customer_ws(&server, &id, &token, 0).await;
    let opened = events(&mut ws, 1).await;
    assert_eq!(opened[0]["event"]["type"], "conversation_opened");
    ws.send(Message::text(
        json!({"type": "message", "text": "over the socket", "client_msg_id": "w1"}).to_string(),
    ))
    .await
    .unwrap();
    // The ack and the event both arrive (in either order).
    let mut got_ack = None;
    let mut got_event = None;
    while got_ack.is_none() || got_event.is_none() {
        let f = next_frame(&mut ws).await;
        match f["type"].as_str() {
            Some("ack") => got_ack = Some(f),
            Some("event") => got_event = Some(f["envelope"].clone()),
            _ => {}
        }
    }
    assert_eq!(got_ack.unwrap()["seq"], 2);
    assert_eq!(got_event.unwrap()["seq"], 2);
    // Resending the same client_msg_id is acknowledged with the same seq and stored once.
    ws.send(Message::text(
        json!({"type": "message", "text": "over the socket", "client_msg_id": "w1"}).to_string(),
    ))
    .await
    .unwrap();
    let ack = next_frame(&mut ws).await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_u64()),
        (Some("ack"), Some(2))
    );
    quiet(&mut ws).await;
    let last_seen = 2;
    drop(ws); // the connection drops

    for text in ["one", "two", "three"] {
        let (s, _) = agent
            .post(
                &format!("/api/conversations/{id}/messages"),
                json!({"text": text}),
            )
            .await;
        assert_eq!(s, 201);
    }
    agent
        .post(
            &format!("/api/conversations/{id}/notes"),
            json!({"text": "internal"}),
        )
        .await;

    // Reconnect after the last seen seq: exactly the missed replies, in order, no note.
    let mut ws = customer_ws(&server, &id, &token, last_seen).await;
    let missed = events(&mut ws, 3).await;
    assert_eq!(texts(&missed), vec!["one", "two", "three"]);
    quiet(&mut ws).await;
    // Live from here on.
    agent
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "live"}),
        )
        .await;
    let live = events(&mut ws, 1).await;
    assert_eq!(texts(&live), vec!["live"]);

    // A bad hello is refused with a JSON error.
    let (mut bad, _) = tokio_tungstenite::connect_async(server.ws_url("/api/webchat/ws"))
        .await
        .unwrap();
    bad.send(Message::text(
        json!({"type": "hello", "conversation_id": id, "token": "forged"}).to_string(),
    ))
    .await
    .unwrap();
    let f = next_frame(&mut bad).await;
    assert_eq!(
        (f["type"].as_str(), f["error"]["code"].as_str()),
        (Some("error"), Some("unauthenticated"))
    );

    // The agent socket: watch from a seq gets the ordered backlog, then live events.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        server.ws_url("/api/ws"),
    )
    .unwrap();
    // Log in on a raw request to read the session cookie for the socket.
    let login = reqwest::Client::new()
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": "a@x.io", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let set_cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    req.headers_mut()
        .insert("cookie", set_cookie.parse().unwrap());
    let (mut aws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    aws.send(Message::text(
        json!({"type": "watch", "conversation_id": id, "after": 3}).to_string(),
    ))
    .await
    .unwrap();
    // 3 was the auto-assignment; then three replies, the note, and "live".
    let backlog = events(&mut aws, 5).await;
    let seqs: Vec<u64> = backlog.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![4, 5, 6, 7, 8]);
    let f = next_frame(&mut aws).await;
    assert_eq!(f["type"], "watching");
    customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "to agent", "client_msg_id": "w2"}),
        )
        .await;
    let live = events(&mut aws, 1).await;
    assert_eq!(live[0]["seq"], 9);

    // The agent typing is shown to the customer, and never stored.
    aws.send(Message::text(
        json!({"type": "typing", "conversation_id": id, "active": true}).to_string(),
    ))
    .await
    .unwrap();
    let typing = loop {
        let f = next_frame(&mut ws).await;
        if f["type"] == "event" && f["envelope"]["event"]["type"] == "typing" {
            break f;
        }
    };
    assert_eq!(typing["envelope"]["event"]["by"]["kind"], "agent");
    assert_eq!(typing["envelope"]["event"]["active"], true);
    let (_, stored) = agent
        .get(&format!("/api/conversations/{id}/events?after=8"))
        .await;
    assert!(
        stored["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"]["type"] != "typing")
    );

    // Cross-site WebSocket hijacking is refused.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        server.ws_url("/api/ws"),
    )
    .unwrap();
    req.headers_mut()
        .insert("cookie", set_cookie.parse().unwrap());
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
}
both_stacks!(websocket_resume_is_exact, websocket_resume);

async fn restart(stack: Stack) {
    let server =
        TestServer::start_configured(stack, |c| c.bot = switchboard_gateway::config::BotMode::Off)
            .await;
    server.add_user("a@x.io", Role::Agent).await;
    let (customer, id, token) = server.customer("R").await;
    for i in 0..20 {
        let (s, _) = customer
            .post(
                &format!("/api/webchat/conversations/{id}/messages"),
                json!({"text": format!("m{i}"), "client_msg_id": format!("k{i}")}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let mut ws = customer_ws(&server, &id, &token, 21).await;
    let server = server.restart().await;
    // The old socket is told the server is restarting.
    let f = next_frame(&mut ws).await;
    assert_eq!(f["type"], "closed", "{f}");
    assert!(
        f["frame"].as_str().unwrap().contains("Restart"),
        "close code 1012 expected: {f}"
    );

    let agent = server.staff("a@x.io").await;
    let (_, ev) = agent.get(&format!("/api/conversations/{id}/events")).await;
    let got = texts(ev["events"].as_array().unwrap());
    assert_eq!(
        got,
        (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>(),
        "every accepted message survived"
    );
    // The idempotency memory survived too.
    let mut customer = server.client();
    customer.bearer = Some(token.clone());
    let (_, dup) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "m3", "client_msg_id": "k3"}),
        )
        .await;
    assert_eq!(dup["duplicate"], true);
    // And the socket resumes where it was.
    let (s, _) = agent
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "after restart"}),
        )
        .await;
    assert_eq!(s, 201);
    let mut ws = customer_ws(&server, &id, &token, 21).await;
    let e = events(&mut ws, 1).await;
    assert_eq!(texts(&e), vec!["after restart"]);
}
both_stacks!(restart_loses_nothing, restart);
