//! The HTTP API against a real server, on the embedded stack
//! (SQLite + in-process bus) and the scaled stack (PostgreSQL + JetStream).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use switchboard_gateway::auth::Role;

async fn journey(stack: Stack) {
    let server =
        TestServer::start_configured(stack, |c| c.bot = switchboard_gateway::config::BotMode::Off)
            .await;
    server.add_user("ann@example.com", Role::Agent).await;
    let agent = server.staff("ann@example.com").await;
    let (customer, id, _) = server.customer("Carla").await;

    // A customer message, sent twice with the same id, is stored once.
    let (s, first) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "My router blinks red", "client_msg_id": "c-1"}),
        )
        .await;
    assert_eq!(
        (s, first["duplicate"].as_bool()),
        (201, Some(false)),
        "{first}"
    );
    let (s, again) = customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "My router blinks red", "client_msg_id": "c-1"}),
        )
        .await;
    assert_eq!(
        (s, again["duplicate"].as_bool(), again["seq"].clone()),
        (201, Some(true), first["seq"].clone())
    );

    // The agent sees it unassigned, replies (which assigns), and leaves a note.
    let (s, list) = agent.get("/api/conversations?view=unassigned").await;
    assert_eq!(s, 200);
    let item = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("listed");
    assert_eq!(item["last_message_preview"], "My router blinks red");
    assert_eq!(item["contact"]["display_name"], "Carla");
    let (s, r) = agent
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "Let me check the line"}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let kinds: Vec<_> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("assigned"), json!("message_added")]);
    let (s, _) = agent
        .post(
            &format!("/api/conversations/{id}/notes"),
            json!({"text": "line test scheduled"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, mine) = agent.get("/api/conversations?view=mine").await;
    assert_eq!(mine["conversations"].as_array().unwrap().len(), 1);
    let (_, unassigned) = agent.get("/api/conversations?view=unassigned").await;
    assert!(unassigned["conversations"].as_array().unwrap().is_empty());

    // The customer's view has the reply, not the note; the staff view has both.
    let (_, cv) = customer
        .get(&format!("/api/webchat/conversations/{id}/events"))
        .await;
    let cv = cv["events"].as_array().unwrap().clone();
    assert_eq!(
        texts(&cv),
        vec!["My router blinks red", "Let me check the line"]
    );
    assert!(
        cv.iter()
            .all(|e| e["event"]["type"] != "note_added" && e["event"]["type"] != "assigned")
    );
    let (_, sv) = agent.get(&format!("/api/conversations/{id}/events")).await;
    assert!(
        sv["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"]["type"] == "note_added")
    );

    // Close with a disposition; a customer message reopens it.
    let (s, _) = agent
        .post(
            &format!("/api/conversations/{id}/close"),
            json!({"disposition": "resolved"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, again) = agent
        .post(
            &format!("/api/conversations/{id}/close"),
            json!({"disposition": "resolved"}),
        )
        .await;
    assert_eq!(
        (s, again["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let (_, c) = agent.get(&format!("/api/conversations/{id}")).await;
    assert_eq!(
        (c["status"].as_str(), c["disposition"].as_str()),
        (Some("closed"), Some("resolved"))
    );
    customer
        .post(
            &format!("/api/webchat/conversations/{id}/messages"),
            json!({"text": "still broken", "client_msg_id": "c-2"}),
        )
        .await;
    let (_, c) = agent.get(&format!("/api/conversations/{id}")).await;
    assert_eq!(c["status"], "open");

    // State shown is the fold of the stored events.
    let db = server.db().await;
    let cid = id.parse().unwrap();
    let folded = switchboard_bus::Conversation::replay(&db.all_events(cid).await.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(Some(folded), db.conversation(cid).await.unwrap());
}
both_stacks!(journey_through_the_api, journey);

async fn authorization(stack: Stack) {
    let server =
        TestServer::start_configured(stack, |c| c.bot = switchboard_gateway::config::BotMode::Off)
            .await;
    let mut ids = std::collections::HashMap::new();
    for (email, role) in [
        ("agent@x.io", Role::Agent),
        ("agent2@x.io", Role::Agent),
        ("super@x.io", Role::Supervisor),
        ("km@x.io", Role::KnowledgeManager),
        ("analyst@x.io", Role::Analyst),
        ("admin@x.io", Role::Admin),
    ] {
        ids.insert(email, server.add_user(email, role).await);
    }
    let (cust_a, a, _) = server.customer("A").await;
    let (_cust_b, b, _) = server.customer("B").await;

    // Customers: only their own conversation, and no staff endpoint.
    assert_eq!(
        cust_a
            .get(&format!("/api/webchat/conversations/{a}/events"))
            .await
            .0,
        200
    );
    assert_eq!(
        cust_a
            .get(&format!("/api/webchat/conversations/{b}/events"))
            .await
            .0,
        404,
        "IDOR: token of A opened B"
    );
    let (s, _) = cust_a
        .post(
            &format!("/api/webchat/conversations/{b}/messages"),
            json!({"text": "x", "client_msg_id": "i"}),
        )
        .await;
    assert_eq!(s, 404, "IDOR: token of A wrote to B");
    assert_eq!(cust_a.get("/api/conversations").await.0, 401);
    assert_eq!(cust_a.get(&format!("/api/conversations/{a}")).await.0, 401);
    let anon = server.client();
    assert_eq!(
        anon.get(&format!("/api/webchat/conversations/{a}/events"))
            .await
            .0,
        401
    );

    // Staff: (who, method, path, expected status)
    let read = format!("/api/conversations/{a}/events");
    let note = format!("/api/conversations/{a}/notes");
    let users = "/api/users".to_string();
    let cases: Vec<(&str, &str, String, u16)> = vec![
        ("agent@x.io", "GET", read.clone(), 200),
        ("super@x.io", "GET", read.clone(), 200),
        ("analyst@x.io", "GET", read.clone(), 200),
        ("admin@x.io", "GET", read.clone(), 200),
        ("km@x.io", "GET", read.clone(), 403),
        ("agent@x.io", "POST", note.clone(), 201),
        ("super@x.io", "POST", note.clone(), 201),
        ("admin@x.io", "POST", note.clone(), 201),
        ("analyst@x.io", "POST", note.clone(), 403),
        ("km@x.io", "POST", note.clone(), 403),
        ("agent@x.io", "GET", users.clone(), 403),
        ("super@x.io", "GET", users.clone(), 403),
        ("analyst@x.io", "GET", users.clone(), 403),
        ("km@x.io", "GET", users.clone(), 403),
        ("admin@x.io", "GET", users.clone(), 200),
    ];
    for (who, method, path, expect) in cases {
        let c = server.staff(who).await;
        let (s, body) = if method == "GET" {
            c.get(&path).await
        } else {
            c.post(&path, json!({"text": "n"})).await
        };
        assert_eq!(s, expect, "{who} {method} {path}: {body}");
        if s == 403 {
            assert_eq!(body["error"]["code"], "forbidden");
        }
    }

    // Assignment rules: an agent takes for self only; another agent cannot act on it; a supervisor can.
    let agent = server.staff("agent@x.io").await;
    let agent2 = server.staff("agent2@x.io").await;
    let sup = server.staff("super@x.io").await;
    let (s, _) = agent
        .post(
            &format!("/api/conversations/{a}/assign"),
            json!({"agent_id": ids["agent2@x.io"]}),
        )
        .await;
    assert_eq!(s, 403, "agents cannot assign others");
    let (s, _) = agent
        .post(&format!("/api/conversations/{a}/assign"), json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, body) = agent2
        .post(
            &format!("/api/conversations/{a}/messages"),
            json!({"text": "mine now"}),
        )
        .await;
    assert_eq!(s, 403, "{body}");
    let (s, _) = agent2
        .post(
            &format!("/api/conversations/{a}/close"),
            json!({"disposition": "spam"}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = sup
        .post(
            &format!("/api/conversations/{a}/assign"),
            json!({"agent_id": ids["agent2@x.io"]}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = agent2
        .post(
            &format!("/api/conversations/{a}/messages"),
            json!({"text": "mine now"}),
        )
        .await;
    assert_eq!(s, 201);

    // CSRF: a cookie without the header is refused for unsafe methods.
    let mut no_csrf = server.staff("admin@x.io").await;
    no_csrf.csrf = None;
    let (s, body) = no_csrf.post(&note, json!({"text": "n"})).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    no_csrf.csrf = Some("wrong".into());
    assert_eq!(no_csrf.post(&note, json!({"text": "n"})).await.0, 403);

    // Admins manage users; a deactivated user's session ends.
    let admin = server.staff("admin@x.io").await;
    let (s, created) = admin
        .post(
            "/api/users",
            json!({"email": "new@x.io", "name": "New", "role": "analyst", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let (s, _) = admin
        .post(
            "/api/users",
            json!({"email": "NEW@x.io", "name": "Dup", "role": "agent", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 409, "e-mails are unique regardless of case");
    let (s, _) = admin
        .post(
            "/api/users",
            json!({"email": "weak@x.io", "name": "W", "role": "agent", "password": "short"}),
        )
        .await;
    assert_eq!(s, 422);
    let newbie = server.staff("new@x.io").await;
    assert_eq!(newbie.get("/api/me").await.0, 200);
    let uid = created["id"].as_str().unwrap();
    let (s, _) = admin
        .patch(&format!("/api/users/{uid}"), json!({"active": false}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        newbie.get("/api/me").await.0,
        401,
        "deactivation ends sessions"
    );
    let (s, _) = admin
        .patch(
            &format!("/api/users/{}", ids["admin@x.io"]),
            json!({"role": "agent"}),
        )
        .await;
    assert_eq!(s, 409, "admins cannot demote themselves");
}
both_stacks!(authorization_matrix, authorization);

async fn bad_input(stack: Stack) {
    let server =
        TestServer::start_configured(stack, |c| c.bot = switchboard_gateway::config::BotMode::Off)
            .await;
    server.add_user("a@x.io", Role::Agent).await;
    let agent = server.staff("a@x.io").await;
    let (customer, id, _) = server.customer("C").await;
    let path = format!("/api/webchat/conversations/{id}/messages");

    let (s, b) = customer
        .post_raw(&path, "application/json", b"{not json".to_vec())
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{b}"
    );
    let (s, b) = customer
        .post_raw(&path, "application/json", br#"{"text": 5}"#.to_vec())
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("validation_failed")),
        "{b}"
    );
    let (s, b) = customer.post_raw(&path, "text/plain", b"hi".to_vec()).await;
    assert_eq!(s, 415, "{b}");
    let huge = format!(
        r#"{{"text": "{}", "client_msg_id": "h"}}"#,
        "x".repeat(200 * 1024)
    );
    let (s, b) = customer.post_oversized(&path, huge.into_bytes()).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{b}"
    );
    let long = "y".repeat(4001);
    let (s, b) = customer
        .post(&path, json!({"text": long, "client_msg_id": "l"}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("validation_failed"))
    );
    let (s, _) = customer
        .post(&path, json!({"text": "   ", "client_msg_id": "blank"}))
        .await;
    assert_eq!(s, 422);
    let (s, _) = customer
        .post(
            &path,
            json!({"text": "ok", "client_msg_id": "bad id with spaces"}),
        )
        .await;
    assert_eq!(s, 422);

    // Unknown ids: garbage and well-formed alike are 404 with the JSON shape.
    for bad in ["nope", "01a20ad7-85b3-72dd-8e23-fc80b7575a86"] {
        let (s, b) = agent.get(&format!("/api/conversations/{bad}")).await;
        assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
        let (s, _) = agent
            .post(
                &format!("/api/conversations/{bad}/messages"),
                json!({"text": "x"}),
            )
            .await;
        assert_eq!(s, 404);
    }
    let (s, b) = agent.get("/api/no/such/route").await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, _) = agent.get("/api/conversations?view=everything").await;
    assert_eq!(s, 422);

    // Expired session: 401 session_expired.
    let db = server.db().await;
    let token = switchboard_gateway::auth::new_token();
    let me = db.user_by_email("a@x.io").await.unwrap().unwrap().0;
    db.create_session(
        &switchboard_gateway::auth::token_hash(&token),
        me.id,
        "csrf",
        chrono::Utc::now() - chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    let resp = reqwest::Client::new()
        .get(server.url("/api/me"))
        .header("cookie", format!("sb_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "session_expired");

    // Wrong password and unknown user get the same answer.
    let c = server.client();
    let (s1, b1) = c
        .post(
            "/api/auth/login",
            json!({"email": "a@x.io", "password": "wrong password"}),
        )
        .await;
    let (s2, b2) = c
        .post(
            "/api/auth/login",
            json!({"email": "nobody@x.io", "password": "wrong password"}),
        )
        .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2);

    // Stored text is exactly what was sent: markup is data, not HTML.
    let xss = "<img src=x onerror=alert(1)><script>alert(2)</script>";
    customer
        .post(&path, json!({"text": xss, "client_msg_id": "x1"}))
        .await;
    let (_, ev) = agent.get(&format!("/api/conversations/{id}/events")).await;
    assert!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"]["text"] == xss)
    );
}
both_stacks!(bad_input_gets_clear_errors, bad_input);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_openapi() {
    let server = TestServer::start_configured(Stack::Embedded, |c| {
        c.bot = switchboard_gateway::config::BotMode::Off
    })
    .await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    let ready: serde_json::Value = http
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    server.customer("M").await;
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_http_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("switchboard_events_appended_total"));
    let doc: serde_json::Value = http
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/conversations",
        "/api/webchat/conversations",
        "/api/users/{id}",
        "/api/auth/login",
    ] {
        assert!(doc["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    // The widget's API answers CORS preflights from any site.
    let pre = http
        .request(
            reqwest::Method::OPTIONS,
            server.url("/api/webchat/conversations"),
        )
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    // Pages are served with a CSP that forbids inline script.
    let inbox = http.get(server.url("/inbox")).send().await.unwrap();
    let csp = inbox.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
}
