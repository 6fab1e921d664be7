//! Cost of signing a client access URL: the crate's HS256 against
//! `jsonwebtoken` signing the same claims.
//!
//! - `tokens/client_access`: [`ClientAccessSigner::client_access`] for a user
//!   with two roles and a group (the claims of the spec's test vector),
//!   building the token and the URL;
//! - `tokens/jsonwebtoken_encode`: `jsonwebtoken::encode` of the same claims
//!   with a prebuilt key, token only (no URL), as a yardstick.
//!
//! Run with `cargo bench --bench tokens`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use webpubsub::client_access::{ClientAccessOptions, ClientAccessSigner, Permission};

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn tokens(c: &mut Criterion) {
    let signer = ClientAccessSigner::from_connection_string(
        &format!("Endpoint=http://127.0.0.1;Port=8080;AccessKey={KEY};Version=1.0;"),
        "chat",
    )
    .expect("valid connection string");
    let options = ClientAccessOptions::new()
        .user_id("alice")
        .role(Permission::JoinLeaveGroup.role())
        .role(Permission::SendToGroup.role_for("room1"))
        .group("room1")
        .issued_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    c.bench_function("tokens/client_access", |b| {
        b.iter(|| black_box(signer.client_access(black_box(&options))));
    });

    let claims = serde_json::json!({
        "role": ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup.room1"],
        "webpubsub.group": ["room1"],
        "iat": 1_700_000_000u64,
        "exp": 1_700_003_600u64,
        "aud": "http://127.0.0.1:8080/client/hubs/chat",
        "sub": "alice",
    });
    let key = jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    c.bench_function("tokens/jsonwebtoken_encode", |b| {
        b.iter(|| black_box(jsonwebtoken::encode(&header, black_box(&claims), &key)));
    });
}

criterion_group!(benches, tokens);
criterion_main!(benches);
