//! MQTT 3.1.1 and 5.0 packets as the emulator's broker side sees them: the
//! packets a client sends ([`Packet`]), those a broker sends
//! ([`Outgoing`]), and the parts they share (versions, properties, will).
//!
//! Only what a broker needs is modelled: CONNECT, PUBLISH, PUBACK, PUBREC,
//! PUBREL, PUBCOMP, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT and AUTH
//! in; CONNACK, PUBLISH, PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK,
//! PINGRESP and DISCONNECT out. Why not a codec crate: see the README's
//! MQTT section.

use bytes::Bytes;

/// MQTT 3.1.1 (`protocolVersion` 4).
pub(crate) const V4: u8 = 4;
/// MQTT 5.0.
pub(crate) const V5: u8 = 5;

/// MQTT 5 properties the emulator reads or writes (others are read and
/// skipped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Properties {
    pub(crate) payload_format: Option<u8>,
    pub(crate) message_expiry: Option<u32>,
    pub(crate) content_type: Option<String>,
    pub(crate) response_topic: Option<String>,
    pub(crate) correlation_data: Option<Bytes>,
    pub(crate) subscription_id: Option<u32>,
    pub(crate) session_expiry: Option<u32>,
    pub(crate) assigned_client_id: Option<String>,
    pub(crate) authentication_method: Option<String>,
    pub(crate) reason_string: Option<String>,
    pub(crate) receive_maximum: Option<u16>,
    pub(crate) topic_alias_maximum: Option<u16>,
    pub(crate) topic_alias: Option<u16>,
    pub(crate) maximum_qos: Option<u8>,
    pub(crate) retain_available: Option<u8>,
    pub(crate) user_properties: Vec<(String, String)>,
    pub(crate) maximum_packet_size: Option<u32>,
    pub(crate) wildcard_available: Option<u8>,
    pub(crate) subscription_ids_available: Option<u8>,
    pub(crate) shared_available: Option<u8>,
    /// Server Keep Alive (CONNACK, 0x13): the keep-alive the client must use.
    pub(crate) server_keep_alive: Option<u16>,
}

/// The will of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Will {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    pub(crate) properties: Properties,
}

/// A CONNECT packet. For a protocol level other than 4 and 5 only
/// `version` is read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Connect {
    pub(crate) version: u8,
    pub(crate) clean_start: bool,
    pub(crate) keep_alive: u16,
    pub(crate) client_id: String,
    pub(crate) will: Option<Will>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
    pub(crate) properties: Properties,
}

/// A PUBLISH packet (either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish {
    pub(crate) dup: bool,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    pub(crate) topic: String,
    /// 0 for QoS 0.
    pub(crate) packet_id: u16,
    pub(crate) properties: Properties,
    pub(crate) payload: Bytes,
}

/// One SUBSCRIBE filter and its options byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    pub(crate) topic: String,
    /// Requested maximum QoS (bits 0–1 of the options).
    pub(crate) qos: u8,
}

/// A packet a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Packet {
    Connect(Box<Connect>),
    Publish(Publish),
    PubAck {
        packet_id: u16,
    },
    PubRec {
        packet_id: u16,
    },
    PubRel {
        packet_id: u16,
    },
    PubComp {
        packet_id: u16,
    },
    Subscribe {
        packet_id: u16,
        filters: Vec<Filter>,
        properties: Properties,
    },
    Unsubscribe {
        packet_id: u16,
        topics: Vec<String>,
    },
    PingReq,
    Disconnect {
        code: u8,
        properties: Properties,
    },
    Auth,
    /// A packet type only servers send (CONNACK, SUBACK, …): a protocol error.
    ServerOnly(u8),
}
/// A packet the broker sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outgoing {
    ConnAck {
        session_present: bool,
        code: u8,
        properties: Properties,
    },
    Publish(Publish),
    PubAck {
        packet_id: u16,
        code: u8,
    },
    PubRec {
        packet_id: u16,
        code: u8,
    },
    PubComp {
        packet_id: u16,
    },
    SubAck {
        packet_id: u16,
        codes: Vec<u8>,
    },
    UnsubAck {
        packet_id: u16,
        codes: Vec<u8>,
    },
    PingResp,
    /// 5.0 only (3.1.1 has no server DISCONNECT).
    Disconnect {
        code: u8,
        reason: Option<String>,
    },
}
