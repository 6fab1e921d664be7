//! The endpoints clients talk to, one module each: for now `mqtt` (MQTT
//! clients over WebSocket); the WebSocket clients, the REST API, the live
//! view and the Entra routes join it here.

pub(crate) mod mqtt;
