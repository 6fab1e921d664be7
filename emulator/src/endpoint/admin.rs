//! The admin surface — the Entra ID's discovery document, keys and token
//! endpoint, and the live view — answers loopback peers only, unless
//! [`EmulatorBuilder::insecure_allow_remote_admin`](crate::EmulatorBuilder::insecure_allow_remote_admin)
//! opened it.
//!
//! The peer is the socket address the listener accepted, which
//! [`Emulator::start`](crate::Emulator::start)'s listener hands every
//! request as axum's `ConnectInfo<SocketAddr>` (as does an app serving the
//! router with `into_make_service_with_connect_info::<SocketAddr>()`).
//! `Host` says nothing about where a request came from, so it is not
//! consulted here. A router served without connect info cannot tell, and
//! refuses.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::request::Parts;
use http::StatusCode;

use crate::service::Shared;

/// Why a request to the admin surface was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// The peer is not on this machine.
    #[error(
        "the emulator's token endpoint, Entra ID documents and live view answer loopback peers only; \
         to open them to other hosts, start it with --allow-remote-admin \
         (EmulatorBuilder::insecure_allow_remote_admin(true))"
    )]
    RemotePeer,
    /// The router was served without the peer's address.
    #[error(
        "the emulator's token endpoint, Entra ID documents and live view answer loopback peers only, \
         and this server does not say who the peer is: serve the router with \
         into_make_service_with_connect_info::<SocketAddr>(), or open them with \
         EmulatorBuilder::insecure_allow_remote_admin(true)"
    )]
    UnknownPeer,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            StatusCode::FORBIDDEN,
            [
                (CONTENT_TYPE, "text/plain; charset=utf-8"),
                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            self.to_string(),
        )
            .into_response()
    }
}

/// Whether `ip` is this machine's loopback: `127.0.0.0/8`, `::1`, or an
/// IPv4-mapped `::ffff:127.x.y.z` (a dual-stack socket's IPv4 peer).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Proof that a request may reach the admin surface: its peer is a
/// loopback address, or the surface was opened to every host.
#[derive(Debug)]
pub(crate) struct AdminPeer;

impl FromRequestParts<Arc<Shared>> for AdminPeer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        if shared.remote_admin {
            return Ok(Self);
        }
        // `ConnectInfo`'s own extractor also reads axum's `MockConnectInfo`.
        let peer = ConnectInfo::<SocketAddr>::from_request_parts(parts, shared)
            .await
            .ok()
            .map(|ConnectInfo(peer)| peer.ip());
        let refusal = match peer {
            Some(ip) if is_loopback(ip) => return Ok(Self),
            Some(_) => Refusal::RemotePeer,
            None => Refusal::UnknownPeer,
        };
        tracing::warn!(target: "webpubsub_emulator::admin", status = 403,
            peer = peer.map(|ip| ip.to_string()).as_deref().unwrap_or("unknown"),
            path = parts.uri.path(), reason = %refusal, "refused admin request");
        Err(refusal.into_response())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_judged_by_the_address() {
        for (ip, loopback) in [
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:192.0.2.7", false),
            ("0.0.0.0", false),
            ("::", false),
            ("192.0.2.7", false),
            ("::2", false),
            ("fe80::1", false),
        ] {
            assert_eq!(is_loopback(ip.parse().unwrap()), loopback, "{ip}");
        }
    }
}
