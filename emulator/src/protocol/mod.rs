//! The client protocols, one module per protocol: each reads its frames
//! and writes its packets, with no emulator state. The JSON (and reliable
//! JSON) and raw WebSocket modules join `mqtt` here.

pub(crate) mod mqtt;
