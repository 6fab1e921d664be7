//! Writing MQTT packets: [`Outgoing::encode`] gives the bytes of a packet
//! the broker sends, per the client's version.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use bytes::{BufMut, Bytes, BytesMut};

use super::packet::{Outgoing, Properties, V5};

impl Outgoing {
    /// The packet's bytes for a client of `version`.
    pub(crate) fn encode(&self, version: u8) -> Bytes {
        let v5 = version == V5;
        let mut body = BytesMut::new();
        let first: u8 = match self {
            Self::ConnAck {
                session_present,
                code,
                properties,
            } => {
                body.put_u8(u8::from(*session_present));
                body.put_u8(*code);
                if v5 {
                    put_properties(&mut body, properties);
                }
                0x20
            }
            Self::Publish(p) => {
                put_string(&mut body, &p.topic);
                if p.qos > 0 {
                    body.put_u16(p.packet_id);
                }
                if v5 {
                    put_properties(&mut body, &p.properties);
                }
                body.put_slice(&p.payload);
                0x30 | (u8::from(p.dup) << 3) | (p.qos << 1) | u8::from(p.retain)
            }
            Self::PubAck { packet_id, code } | Self::PubRec { packet_id, code } => {
                body.put_u16(*packet_id);
                if v5 && *code != 0 {
                    body.put_u8(*code);
                }
                if matches!(self, Self::PubAck { .. }) {
                    0x40
                } else {
                    0x50
                }
            }
            Self::PubComp { packet_id } => {
                body.put_u16(*packet_id);
                0x70
            }
            Self::SubAck { packet_id, codes } => {
                body.put_u16(*packet_id);
                if v5 {
                    body.put_u8(0);
                }
                body.put_slice(codes);
                0x90
            }
            Self::UnsubAck { packet_id, codes } => {
                body.put_u16(*packet_id);
                if v5 {
                    body.put_u8(0);
                    body.put_slice(codes);
                }
                0xB0
            }
            Self::PingResp => 0xD0,
            Self::Disconnect { code, reason } => {
                if v5 {
                    body.put_u8(*code);
                    put_properties(
                        &mut body,
                        &Properties {
                            reason_string: reason.clone(),
                            ..Properties::default()
                        },
                    );
                }
                0xE0
            }
        };
        let mut out = BytesMut::with_capacity(body.len() + 5);
        out.put_u8(first);
        put_varint(&mut out, body.len());
        out.put_slice(&body);
        out.freeze()
    }
}

/// A variable byte integer (also the decoder tests' packet builder).
pub(super) fn put_varint(out: &mut BytesMut, mut value: usize) {
    loop {
        let byte = u8::try_from(value % 128).unwrap_or_default();
        value /= 128;
        if value == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

/// A string of at most 65 535 bytes (longer text is cut at a char boundary).
pub(super) fn put_string(out: &mut BytesMut, text: &str) {
    let mut end = text.len().min(usize::from(u16::MAX));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    put_binary(out, text.get(..end).unwrap_or_default().as_bytes());
}

fn put_binary(out: &mut BytesMut, bytes: &[u8]) {
    let bytes = bytes.get(..usize::from(u16::MAX)).unwrap_or(bytes);
    out.put_u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
    out.put_slice(bytes);
}

fn put_properties(out: &mut BytesMut, p: &Properties) {
    let mut b = BytesMut::new();
    let byte = |b: &mut BytesMut, id: u8, v: Option<u8>| {
        if let Some(v) = v {
            b.put_u8(id);
            b.put_u8(v);
        }
    };
    byte(&mut b, 0x01, p.payload_format);
    if let Some(v) = p.message_expiry {
        b.put_u8(0x02);
        b.put_u32(v);
    }
    for (id, text) in [
        (0x03, &p.content_type),
        (0x08, &p.response_topic),
        (0x12, &p.assigned_client_id),
        (0x1F, &p.reason_string),
    ] {
        if let Some(text) = text {
            b.put_u8(id);
            put_string(&mut b, text);
        }
    }
    if let Some(data) = &p.correlation_data {
        b.put_u8(0x09);
        put_binary(&mut b, data);
    }
    if let Some(v) = p.receive_maximum {
        b.put_u8(0x21);
        b.put_u16(v);
    }
    if let Some(v) = p.topic_alias_maximum {
        b.put_u8(0x22);
        b.put_u16(v);
    }
    if let Some(v) = p.server_keep_alive {
        b.put_u8(0x13);
        b.put_u16(v);
    }
    byte(&mut b, 0x24, p.maximum_qos);
    byte(&mut b, 0x25, p.retain_available);
    for (name, value) in &p.user_properties {
        b.put_u8(0x26);
        put_string(&mut b, name);
        put_string(&mut b, value);
    }
    if let Some(v) = p.maximum_packet_size {
        b.put_u8(0x27);
        b.put_u32(v);
    }
    byte(&mut b, 0x28, p.wildcard_available);
    byte(&mut b, 0x29, p.subscription_ids_available);
    byte(&mut b, 0x2A, p.shared_available);
    put_varint(out, b.len());
    out.put_slice(&b);
}
