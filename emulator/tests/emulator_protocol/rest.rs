//! The REST data plane through `WebPubSubServiceClient`: sends, groups,
//! listing, closing, permissions, tokens, health and errors.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{json, Value};
use webpubsub::client::{Filter, Message as RestMessage, ServiceError};
use webpubsub::client_access::{ClientAccessOptions, Permission};
use webpubsub::WebPubSubServiceClient;

use crate::common::emulator::{self, ok_ack, refused_handshake, Client, Env, JSON};
use crate::helpers::{env_without_connect, forbidden, reason_of, server_text, text_of, KEY};
use crate::recording_upstream::Upstream;

/// `ann` in g; two connections of `bob`, the first in g and h.
async fn three_clients(env: &Env) -> (Client, Client, Client) {
    let ann = env
        .json_client(ClientAccessOptions::new().user_id("ann").group("g"))
        .await;
    let bob1 = env
        .json_client(ClientAccessOptions::new().user_id("bob").groups(["g", "h"]))
        .await;
    let bob2 = env
        .json_client(ClientAccessOptions::new().user_id("bob"))
        .await;
    (ann, bob1, bob2)
}

/// The data of every message each client got (checked with a ping round trip).
async fn got(clients: &mut [&mut Client]) -> Vec<Vec<Value>> {
    let mut all = Vec::new();
    for client in clients.iter_mut() {
        let frames = client.until_pong().await;
        all.push(frames.iter().map(|f| f["data"].clone()).collect());
    }
    all
}

#[tokio::test]
async fn rest_sends_reach_all_groups_users_and_connections_with_each_content_type() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let (mut ann, mut bob1, mut bob2) = three_clients(&env).await;
    let s = &env.service;

    s.send_to_all("to all").await.unwrap();
    for c in [&mut ann, &mut bob1, &mut bob2] {
        assert_eq!(c.until_pong().await, vec![server_text("to all")]);
    }

    s.send_to_group("g", json!({"k": "v"})).await.unwrap();
    let group_json = json!({"type": "message", "from": "group", "group": "g", "dataType": "json", "data": {"k": "v"}});
    assert_eq!(ann.until_pong().await, vec![group_json.clone()]);
    assert_eq!(bob1.until_pong().await, vec![group_json]);
    assert!(bob2.until_pong().await.is_empty());

    s.send_to_user("bob", vec![0u8, 255]).await.unwrap();
    let binary = json!({"type": "message", "from": "server", "dataType": "binary", "data": "AP8="});
    assert!(ann.until_pong().await.is_empty());
    assert_eq!(bob1.until_pong().await, vec![binary.clone()]);
    assert_eq!(bob2.until_pong().await, vec![binary]);

    s.send_to_connection(&ann.id, RestMessage::json_text("[1,2]"))
        .await
        .unwrap();
    s.send_to_connection(&bob2.id, RestMessage::text("just you"))
        .await
        .unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![vec![json!([1, 2])], vec![], vec![json!("just you")]]
    );

    // Nobody there: still accepted.
    s.send_to_user("nobody", "x").await.unwrap();
    s.send_to_group("empty", "x").await.unwrap();
    s.send_to_connection("no-such-connection", "x")
        .await
        .unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![Vec::<Value>::new(), vec![], vec![]]
    );
}

#[tokio::test]
async fn excluded_connections_and_filters_narrow_the_recipients() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let (mut ann, mut bob1, mut bob2) = three_clients(&env).await;
    let s = &env.service;

    s.send_to_all("e1").exclude(&ann.id).await.unwrap();
    s.send_to_group("g", "e2").exclude(&bob1.id).await.unwrap();
    s.send_to_all("e3")
        .excluding([ann.id.clone(), bob2.id.clone()])
        .await
        .unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![
            vec![json!("e2")],
            vec![json!("e1"), json!("e3")],
            vec![json!("e1")]
        ]
    );

    s.send_to_all("f1")
        .filter(Filter::user_id_eq("ann"))
        .await
        .unwrap();
    s.send_to_all("f2")
        .filter(Filter::in_group("h"))
        .await
        .unwrap();
    s.send_to_user("bob", "f3")
        .filter(Filter::connection_id_ne(&bob1.id))
        .await
        .unwrap();
    s.send_to_group("g", "f4")
        .filter(Filter::user_id_in(["bob", "carl"]).and(Filter::in_group("h")))
        .await
        .unwrap();
    s.send_to_all("f5")
        .filter(!Filter::in_group("g"))
        .await
        .unwrap();
    s.send_to_all("f6")
        .filter(Filter::new("userId eq 'bob' and not ('h' in groups)"))
        .await
        .unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![
            vec![json!("f1")],
            vec![json!("f2"), json!("f4")],
            vec![json!("f3"), json!("f5"), json!("f6")]
        ]
    );

    let error = s
        .send_to_all("never")
        .filter(Filter::new("userId eq"))
        .await
        .unwrap_err();
    match &error {
        ServiceError::Api(api) => assert_eq!(api.status(), StatusCode::BAD_REQUEST),
        other => panic!("expected a 400, got {other}"),
    }
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![Vec::<Value>::new(), vec![], vec![]]
    );
}

#[tokio::test]
async fn group_membership_changes_through_rest() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let (mut ann, mut bob1, mut bob2) = three_clients(&env).await;
    let s = &env.service;

    s.add_connection_to_group("g2", &ann.id).await.unwrap();
    assert!(s.group_exists("g2").await.unwrap());
    s.send_to_group("g2", "in g2").await.unwrap();
    assert_eq!(ann.until_pong().await[0]["group"], "g2");
    s.remove_connection_from_group("g2", &ann.id).await.unwrap();
    assert!(!s.group_exists("g2").await.unwrap());
    // Removing what is not there is fine; adding an unknown connection is 404.
    s.remove_connection_from_group("g2", &ann.id).await.unwrap();
    let error = s
        .add_connection_to_group("g2", "no-such-connection")
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");

    s.add_user_to_group("g3", "bob").await.unwrap();
    let mut members: Vec<String> = s
        .list_connections_in_group("g3")
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            assert_eq!(m.user_id.as_deref(), Some("bob"));
            m.connection_id
        })
        .collect();
    members.sort();
    let mut bobs = vec![bob1.id.clone(), bob2.id.clone()];
    bobs.sort();
    assert_eq!(members, bobs);
    let error = s.add_user_to_group("g3", "nobody").await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
    // A connection the user opens later is not added.
    let bob3 = env
        .json_client(ClientAccessOptions::new().user_id("bob"))
        .await;
    assert_eq!(s.list_connections_in_group("g3").await.unwrap().len(), 2);
    s.remove_user_from_group("g3", "bob").await.unwrap();
    assert!(!s.group_exists("g3").await.unwrap());
    s.remove_user_from_group("g3", "bob").await.unwrap();

    // From every group: ann was in g; bob1 in g and h.
    s.add_connection_to_group("extra", &ann.id).await.unwrap();
    s.remove_connection_from_all_groups(&ann.id).await.unwrap();
    assert!(!s.group_exists("extra").await.unwrap());
    s.remove_user_from_all_groups("bob").await.unwrap();
    assert!(!s.group_exists("g").await.unwrap());
    assert!(!s.group_exists("h").await.unwrap());
    s.remove_connection_from_all_groups("no-such-connection")
        .await
        .unwrap();
    s.send_to_group("g", "nobody left").await.unwrap();
    assert_eq!(
        got(&mut [&mut ann, &mut bob1, &mut bob2]).await,
        vec![Vec::<Value>::new(), vec![], vec![]]
    );

    assert!(s.user_exists("bob").await.unwrap());
    assert!(!s.user_exists("carl").await.unwrap());
    assert!(s.connection_exists(&bob3.id).await.unwrap());
    assert!(!s.connection_exists("no-such-connection").await.unwrap());
}

#[tokio::test]
async fn bulk_group_operations_follow_the_filter() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let (ann, bob1, bob2) = three_clients(&env).await;
    let s = &env.service;
    let members = |group: &'static str| async move {
        let mut ids: Vec<String> = s
            .list_connections_in_group(group)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.connection_id)
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<&String>| {
        ids.sort();
        ids.into_iter().cloned().collect::<Vec<String>>()
    };

    s.add_connections_to_groups(["x", "y"], Filter::user_id_eq("bob"))
        .await
        .unwrap();
    assert_eq!(members("x").await, sorted(vec![&bob1.id, &bob2.id]));
    assert_eq!(members("y").await, sorted(vec![&bob1.id, &bob2.id]));
    s.remove_connections_from_groups(["x"], Filter::connection_id_eq(&bob1.id))
        .await
        .unwrap();
    assert_eq!(members("x").await, vec![bob2.id.clone()]);
    assert_eq!(members("y").await, sorted(vec![&bob1.id, &bob2.id]));
    s.add_connections_to_groups(["z"], Filter::all())
        .await
        .unwrap();
    assert_eq!(
        members("z").await,
        sorted(vec![&ann.id, &bob1.id, &bob2.id])
    );
    s.add_connections_to_groups(["in-g"], Filter::in_group("g"))
        .await
        .unwrap();
    assert_eq!(members("in-g").await, sorted(vec![&ann.id, &bob1.id]));
    s.remove_connections_from_groups(["y", "z"], Filter::all())
        .await
        .unwrap();
    assert!(!s.group_exists("y").await.unwrap());
    assert!(!s.group_exists("z").await.unwrap());

    let error = s
        .add_connections_to_groups(["w"], Filter::new("nonsense ("))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST), "{error}");
    assert!(!s.group_exists("w").await.unwrap());
}

#[tokio::test]
async fn listing_a_group_follows_next_links_page_by_page() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let mut ids = Vec::new();
    let mut clients = Vec::new();
    for user in ["p1", "p2", "p3"] {
        let c = env
            .json_client(ClientAccessOptions::new().user_id(user).group("paged"))
            .await;
        ids.push(c.id.clone());
        clients.push(c);
    }
    let anonymous = env
        .json_client(ClientAccessOptions::new().group("paged"))
        .await;
    ids.push(anonymous.id.clone());
    ids.sort();
    let s = &env.service;

    let all = s
        .list_connections_in_group("paged")
        .max_page_size(1)
        .await
        .unwrap();
    let mut listed: Vec<String> = all.iter().map(|m| m.connection_id.clone()).collect();
    listed.sort();
    assert_eq!(listed, ids);
    let anonymous_member = all
        .iter()
        .find(|m| m.connection_id == anonymous.id)
        .unwrap();
    assert_eq!(anonymous_member.user_id, None);
    let named: Vec<_> = all.iter().filter_map(|m| m.user_id.clone()).collect();
    assert_eq!(named.len(), 3);

    assert_eq!(
        s.list_connections_in_group("paged")
            .max_page_size(1)
            .top(2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.list_connections_in_group("paged")
            .max_page_size(3)
            .top(4)
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(s.list_connections_in_group("paged").await.unwrap(), all);
    assert!(s
        .list_connections_in_group("nobody-here")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn closing_through_rest_tells_json_clients_why_and_the_upstream_hears_the_reason() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let s = &env.service;
    let (mut ann, mut bob1, mut bob2) = three_clients(&env).await;
    let mut keeper = env
        .json_client(ClientAccessOptions::new().user_id("keeper").group("g"))
        .await;

    async fn expect_closed(up: &Upstream, c: &mut Client, reason: &str) {
        let (frames, code) = c.closed().await;
        let frames: Vec<Value> = frames.iter().map(text_of).collect();
        assert_eq!(
            frames,
            vec![json!({"type": "system", "event": "disconnected", "message": reason})]
        );
        assert_eq!(code, Some(1000));
        let disconnected = up.wait_event(&c.id, "disconnected").await;
        assert_eq!(reason_of(&disconnected).as_deref(), Some(reason));
    }

    s.close_connection(&ann.id).reason("bye ann").await.unwrap();
    expect_closed(&up, &mut ann, "bye ann").await;
    assert!(!s.connection_exists(&ann.id).await.unwrap());

    s.close_group_connections("g")
        .reason("bye g")
        .exclude(&keeper.id)
        .await
        .unwrap();
    expect_closed(&up, &mut bob1, "bye g").await;

    s.close_user_connections("bob")
        .reason("bye bob")
        .await
        .unwrap();
    expect_closed(&up, &mut bob2, "bye bob").await;
    assert!(!s.user_exists("bob").await.unwrap());

    let mut last = env
        .json_client(ClientAccessOptions::new().user_id("last"))
        .await;
    s.close_all_connections()
        .reason("bye all")
        .exclude(&keeper.id)
        .await
        .unwrap();
    expect_closed(&up, &mut last, "bye all").await;
    assert!(keeper.until_pong().await.is_empty(), "the excluded stays");

    // Without a reason the client is still told something; unknown ids are fine.
    s.close_connection("no-such-connection").await.unwrap();
    s.close_connection(&keeper.id).await.unwrap();
    let (frames, code) = keeper.closed().await;
    assert_eq!(code, Some(1000));
    let frame = text_of(&frames[0]);
    assert_eq!(frame["event"], "disconnected");
    assert!(frame["message"].is_string());
    up.wait_event(&keeper.id, "disconnected").await;
}

#[tokio::test]
async fn permissions_granted_and_revoked_through_rest_change_what_a_client_may_do() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let s = &env.service;
    let mut c = env
        .json_client(ClientAccessOptions::new().user_id("p"))
        .await;
    let id = c.id.clone();
    let send = |group: &str, ack: u64| json!({"type": "sendToGroup", "group": group, "dataType": "text", "data": "x", "noEcho": true, "ackId": ack});
    let join = |group: &str, ack: u64| json!({"type": "joinGroup", "group": group, "ackId": ack});

    assert!(!s
        .has_permission(Permission::SendToGroup, &id)
        .await
        .unwrap());
    assert!(!s
        .has_permission(Permission::SendToGroup, &id)
        .target_group("g")
        .await
        .unwrap());
    forbidden(&c.request(send("g", 1)).await, 1);

    // One group.
    s.grant_permission(Permission::SendToGroup, &id)
        .target_group("g")
        .await
        .unwrap();
    assert!(s
        .has_permission(Permission::SendToGroup, &id)
        .target_group("g")
        .await
        .unwrap());
    assert!(!s
        .has_permission(Permission::SendToGroup, &id)
        .await
        .unwrap());
    assert_eq!(c.request(send("g", 2)).await, ok_ack(2));
    forbidden(&c.request(send("other", 3)).await, 3);

    // Every group, minus one revoked.
    s.grant_permission(Permission::JoinLeaveGroup, &id)
        .await
        .unwrap();
    assert!(s
        .has_permission(Permission::JoinLeaveGroup, &id)
        .await
        .unwrap());
    assert_eq!(c.request(join("any", 4)).await, ok_ack(4));
    s.revoke_permission(Permission::JoinLeaveGroup, &id)
        .target_group("k")
        .await
        .unwrap();
    forbidden(&c.request(join("k", 5)).await, 5);
    assert_eq!(c.request(join("m", 6)).await, ok_ack(6));
    assert!(!s
        .has_permission(Permission::JoinLeaveGroup, &id)
        .target_group("k")
        .await
        .unwrap());
    assert!(s
        .has_permission(Permission::JoinLeaveGroup, &id)
        .target_group("m")
        .await
        .unwrap());

    // Revoked everywhere.
    s.revoke_permission(Permission::SendToGroup, &id)
        .await
        .unwrap();
    forbidden(&c.request(send("g", 7)).await, 7);
    assert!(!s
        .has_permission(Permission::SendToGroup, &id)
        .target_group("g")
        .await
        .unwrap());

    // Token roles answer the check too; unknown connections are 404 / false.
    let roled = env
        .json_client(
            ClientAccessOptions::new()
                .user_id("roled")
                .role(Permission::SendToGroup.role()),
        )
        .await;
    assert!(s
        .has_permission(Permission::SendToGroup, &roled.id)
        .await
        .unwrap());
    assert!(!s
        .has_permission(Permission::SendToGroup, "no-such-connection")
        .await
        .unwrap());
    let error = s
        .grant_permission(Permission::SendToGroup, "no-such-connection")
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
}

#[tokio::test]
async fn service_generated_tokens_connect_clients_and_health_answers() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    env.service.health().await.unwrap();
    let token = env
        .service
        .generate_client_token(
            &ClientAccessOptions::new()
                .user_id("gen")
                .role(Permission::JoinLeaveGroup.role())
                .group("gg")
                .expires_after(Duration::from_secs(120)),
        )
        .await
        .unwrap();
    let url = format!(
        "ws://{}/client/hubs/chat?access_token={token}",
        env.emulator.local_addr()
    );
    let mut c = env.client_at(url, JSON).await;
    assert_eq!(c.connected["userId"], "gen");
    assert!(env.service.group_exists("gg").await.unwrap());
    assert_eq!(
        c.request(json!({"type": "joinGroup", "group": "more", "ackId": 1}))
            .await,
        ok_ack(1)
    );
}

#[tokio::test]
async fn rest_errors_become_service_errors() {
    let up = Upstream::start().await;
    let env = env_without_connect(&up).await;
    let port = env.emulator.local_addr().port();

    // A wrong key: 401 for REST and for clients.
    let wrong = WebPubSubServiceClient::from_connection_string(
        &format!("Endpoint=http://127.0.0.1;Port={port};AccessKey=not-the-emulator-key-0123456789;Version=1.0;"),
        "chat",
    )
    .unwrap();
    match wrong.send_to_all("x").await.unwrap_err() {
        ServiceError::Api(api) => assert_eq!(api.status(), StatusCode::UNAUTHORIZED),
        other => panic!("expected a 401, got {other}"),
    }
    assert_eq!(
        wrong.user_exists("u").await.unwrap_err().status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let url = wrong.client_access_url(&ClientAccessOptions::new().user_id("u"));
    assert_eq!(refused_handshake(&url, &[JSON]).await.0, 401);

    // An invalid filter: 400.
    match env
        .service
        .send_to_group("g", "x")
        .filter(Filter::new("userId eq 'a' and"))
        .await
        .unwrap_err()
    {
        ServiceError::Api(api) => assert_eq!(api.status(), StatusCode::BAD_REQUEST),
        other => panic!("expected a 400, got {other}"),
    }

    // A TTL over 300 s is refused before sending; 300 s is fine.
    match env
        .service
        .send_to_all("x")
        .ttl(Duration::from_secs(301))
        .await
        .unwrap_err()
    {
        ServiceError::InvalidArgument { .. } => {}
        other => panic!("expected InvalidArgument, got {other}"),
    }
    env.service
        .send_to_all("x")
        .ttl(Duration::from_secs(300))
        .await
        .unwrap();

    // The emulator checks it as well.
    let rest = |ttl: u32| {
        let url = format!(
            "http://127.0.0.1:{port}/api/hubs/chat/:send?api-version=2024-12-01&messageTtlSeconds={ttl}"
        );
        async move {
            emulator::signed_rest_call(Method::POST, &url, KEY)
                .await
                .status()
        }
    };
    assert_eq!(rest(301).await, StatusCode::BAD_REQUEST);
    assert_eq!(rest(300).await, StatusCode::ACCEPTED);
}
