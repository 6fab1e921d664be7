#![doc = include_str!("../README.md")]
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | (none yet) | | everything documented here is always available, [`testing`] included |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod access_key;
mod connection_string;
mod context;
mod error;
mod events;
mod handler;
mod router;
mod state;
pub mod testing;
mod upstream;

pub use access_key::AccessKey;
pub use connection_string::ConnectionString;
pub use context::{ConnectionContext, MqttContext};
pub use error::ConfigError;
pub use events::{
    ClientCertificate, ConnectEventRequest, ConnectEventResponse, ConnectedEventRequest, DataType,
    DisconnectedEventRequest, ErrorCode, Event, EventData, EventErrorResponse,
    GroupJoinedEventRequest, GroupLeftEventRequest, InvalidData, MqttConnectError,
    MqttConnectProperties, MqttConnectResponse, MqttDisconnectPacket, MqttDisconnectedProperties,
    MqttUserProperty, UserEventRequest, UserEventResponse,
};
pub use handler::EventHandler;
pub use router::{
    DispatchFuture, EventRouter, EventRouterBuilder, EventRouterFuture, DEFAULT_BODY_LIMIT,
};
pub use state::{ConnectionStates, InvalidState, StateChanges};
pub use upstream::{
    decode_event, Rejection, ResponseFuture, ValidateUpstream, ValidateUpstreamBuilder,
    ValidateUpstreamLayer,
};

pub use async_trait::async_trait;
pub use http;
