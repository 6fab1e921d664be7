//! The service client: calls the Web PubSub REST API of one hub.
//!
//! - `service_client`: [`WebPubSubServiceClient`] and how it makes a call;
//! - `builder`: its constructors and [`ServiceClientBuilder`], its settings, checked when built;
//! - `operations`: sending, groups, closing, existence, permissions, health;
//! - `access`: client access URLs, signed with the key or issued by the service;
//! - `requests`, `permissions`, `list_connections`: the calls with options,
//!   configured then awaited;
//! - `paths`: the REST path of a call and the checks of names and ids in it;
//! - `transport`: signing, sending and retrying one call;
//! - `bearer` (feature `entra`): Microsoft Entra ID tokens, cached and refreshed;
//! - `negotiate` (feature `entra`): `Negotiate::from_client`, URLs from this client;
//! - `message`, `filter`, `retry`, `error`: what calls take and give back.

mod access;
#[cfg(feature = "entra")]
mod bearer;
mod builder;
mod error;
mod filter;
mod list_connections;
mod message;
#[cfg(feature = "entra")]
mod negotiate;
mod operations;
mod paths;
mod permissions;
mod requests;
mod retry;
mod service_client;
mod transport;

pub use builder::{ServiceClientBuilder, DEFAULT_TIMEOUT};
pub use error::{ApiError, ServiceError};
pub use filter::Filter;
pub use list_connections::{GroupMember, ListConnectionsRequest};
pub use message::Message;
pub use permissions::{PermissionCheck, PermissionRequest};
pub use requests::{
    CloseRequest, SendRequest, ServiceFuture, ToAll, ToConnection, ToGroup, ToUser,
};
pub use retry::RetryPolicy;
pub use service_client::WebPubSubServiceClient;
pub use transport::API_VERSION;
