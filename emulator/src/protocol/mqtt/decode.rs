//! Reading MQTT packets: [`decode`] takes one packet off the front of a
//! buffer, bounded by a maximum packet size and never panicking on bad
//! input.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use bytes::{Bytes, BytesMut};

use super::packet::{Connect, Filter, Packet, Properties, Publish, Will, V4, V5};

/// Why bytes are not a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The packet breaks the format (5.0 reason 0x81).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The packet announces more bytes than allowed (5.0 reason 0x95).
    #[error("packet of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// More than [`MAX_USER_PROPERTIES`] user properties in one packet
    /// (the emulator's bound; 5.0 reason 0x97, quota exceeded).
    #[error("more than {MAX_USER_PROPERTIES} user properties in one packet")]
    TooManyUserProperties,
}

/// The most user properties one packet may carry (the emulator's bound:
/// MQTT sets none, and each becomes a header of an upstream call, which
/// carries at most a few hundred; 128 is more than any client library's
/// examples use).
pub(crate) const MAX_USER_PROPERTIES: usize = 128;

type Result<T> = std::result::Result<T, DecodeError>;

/// Takes one packet off the front of `buf`: `Ok(None)` when more bytes are
/// needed. `version` is the session's (before CONNECT: [`V4`]); a packet
/// whose remaining length exceeds `max` is refused from its header.
pub(crate) fn decode(buf: &mut BytesMut, version: u8, max: usize) -> Result<Option<Packet>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    // Remaining length: 1 to 4 bytes of 7 bits each.
    let mut remaining: usize = 0;
    let mut header_len = 1;
    loop {
        let Some(&byte) = buf.get(header_len) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7F) << (7 * (header_len - 1));
        header_len += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if header_len > 4 {
            return Err(DecodeError::Malformed("remaining length over 4 bytes"));
        }
    }
    if remaining > max {
        return Err(DecodeError::TooLarge(remaining));
    }
    let total = header_len + remaining;
    if buf.len() < total {
        return Ok(None);
    }
    let mut packet = buf.split_to(total).freeze();
    let _ = packet.split_to(header_len);
    let mut r = Reader(packet);
    let flags = first & 0x0F;
    let packet = match first >> 4 {
        1 => Packet::Connect(Box::new(connect(&mut r)?)),
        3 => Packet::Publish(publish(&mut r, flags, version)?),
        4 => Packet::PubAck {
            packet_id: ack(&mut r)?,
        },
        5 => Packet::PubRec {
            packet_id: ack(&mut r)?,
        },
        6 if flags == 2 => Packet::PubRel {
            packet_id: ack(&mut r)?,
        },
        7 => Packet::PubComp {
            packet_id: ack(&mut r)?,
        },
        8 if flags == 2 => subscribe(&mut r, version)?,
        10 if flags == 2 => unsubscribe(&mut r, version)?,
        12 if remaining == 0 => Packet::PingReq,
        14 => {
            let (code, properties) = if version == V5 && !r.is_empty() {
                let code = r.u8()?;
                let props = if r.is_empty() {
                    Properties::default()
                } else {
                    r.properties()?
                };
                (code, props)
            } else {
                (0, Properties::default())
            };
            Packet::Disconnect { code, properties }
        }
        15 if version == V5 => Packet::Auth,
        kind @ (2 | 9 | 11 | 13) => Packet::ServerOnly(kind),
        _ => return Err(DecodeError::Malformed("unknown packet type or flags")),
    };
    Ok(Some(packet))
}

fn ack(r: &mut Reader) -> Result<u16> {
    // 5.0 adds a reason code and properties, which a broker can ignore here.
    r.u16()
}

fn connect(r: &mut Reader) -> Result<Connect> {
    let name = r.string()?;
    let version = r.u8()?;
    if !matches!(name.as_str(), "MQTT" | "MQIsdp") {
        return Err(DecodeError::Malformed("unknown protocol name"));
    }
    if version != V4 && version != V5 {
        return Ok(Connect {
            version,
            ..Connect::default()
        });
    }
    let flags = r.u8()?;
    if flags & 1 != 0 {
        return Err(DecodeError::Malformed("reserved CONNECT flag set"));
    }
    let keep_alive = r.u16()?;
    let properties = if version == V5 {
        r.properties()?
    } else {
        Properties::default()
    };
    let client_id = r.string()?;
    let will = if flags & 0x04 != 0 {
        let properties = if version == V5 {
            r.properties()?
        } else {
            Properties::default()
        };
        let topic = r.string()?;
        let payload = r.binary()?;
        let qos = (flags >> 3) & 3;
        if qos == 3 {
            return Err(DecodeError::Malformed("will QoS 3"));
        }
        Some(Will {
            topic,
            payload,
            qos,
            retain: flags & 0x20 != 0,
            properties,
        })
    } else {
        if flags & 0x38 != 0 {
            return Err(DecodeError::Malformed("will flags without a will"));
        }
        None
    };
    let username = if flags & 0x80 != 0 {
        Some(r.string()?)
    } else {
        None
    };
    let password = if flags & 0x40 != 0 {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        version,
        clean_start: flags & 0x02 != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

fn publish(r: &mut Reader, flags: u8, version: u8) -> Result<Publish> {
    let qos = (flags >> 1) & 3;
    if qos == 3 {
        return Err(DecodeError::Malformed("PUBLISH with QoS 3"));
    }
    let topic = r.string()?;
    let packet_id = if qos > 0 {
        match r.u16()? {
            0 => return Err(DecodeError::Malformed("packet id 0")),
            id => id,
        }
    } else {
        0
    };
    let properties = if version == V5 {
        r.properties()?
    } else {
        Properties::default()
    };
    Ok(Publish {
        dup: flags & 0x08 != 0,
        qos,
        retain: flags & 1 != 0,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

fn subscribe(r: &mut Reader, version: u8) -> Result<Packet> {
    let packet_id = r.u16()?;
    let properties = if version == V5 {
        r.properties()?
    } else {
        Properties::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let topic = r.string()?;
        let options = r.u8()?;
        let qos = options & 3;
        let reserved = if version == V5 { 0xC0 } else { 0xFC };
        if qos == 3 || options & reserved != 0 {
            return Err(DecodeError::Malformed("invalid subscription options"));
        }
        filters.push(Filter { topic, qos });
    }
    if filters.is_empty() || packet_id == 0 {
        return Err(DecodeError::Malformed("SUBSCRIBE without filters or id"));
    }
    Ok(Packet::Subscribe {
        packet_id,
        filters,
        properties,
    })
}

fn unsubscribe(r: &mut Reader, version: u8) -> Result<Packet> {
    let packet_id = r.u16()?;
    if version == V5 {
        r.properties()?;
    }
    let mut topics = Vec::new();
    while !r.is_empty() {
        topics.push(r.string()?);
    }
    if topics.is_empty() || packet_id == 0 {
        return Err(DecodeError::Malformed("UNSUBSCRIBE without topics or id"));
    }
    Ok(Packet::Unsubscribe { packet_id, topics })
}

/// Reads the fields of one packet body; every read is bounds-checked.
struct Reader(Bytes);

impl Reader {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<Bytes> {
        if self.0.len() < n {
            return Err(DecodeError::Malformed("field runs past the packet"));
        }
        Ok(self.0.split_to(n))
    }

    fn u8(&mut self) -> Result<u8> {
        let b = self.take(1)?;
        b.first()
            .copied()
            .ok_or(DecodeError::Malformed("missing byte"))
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([
            b.first().copied().unwrap_or_default(),
            b.get(1).copied().unwrap_or_default(),
        ]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        let mut out = [0u8; 4];
        for (o, v) in out.iter_mut().zip(b.iter()) {
            *o = *v;
        }
        Ok(u32::from_be_bytes(out))
    }

    fn varint(&mut self) -> Result<u32> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let byte = self.u8()?;
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed("variable byte integer over 4 bytes"))
    }

    fn binary(&mut self) -> Result<Bytes> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    fn string(&mut self) -> Result<String> {
        let bytes = self.binary()?;
        let text =
            std::str::from_utf8(&bytes).map_err(|_| DecodeError::Malformed("string not UTF-8"))?;
        if text.contains('\0') {
            return Err(DecodeError::Malformed("string contains U+0000"));
        }
        Ok(text.to_owned())
    }

    fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.0)
    }

    fn properties(&mut self) -> Result<Properties> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Malformed("properties length"))?;
        let mut r = Reader(self.take(len)?);
        let mut p = Properties::default();
        while !r.is_empty() {
            match r.varint()? {
                0x01 => p.payload_format = Some(r.u8()?),
                0x02 => p.message_expiry = Some(r.u32()?),
                0x03 => p.content_type = Some(r.string()?),
                0x08 => p.response_topic = Some(r.string()?),
                0x09 => p.correlation_data = Some(r.binary()?),
                0x0B => p.subscription_id = Some(r.varint()?),
                0x11 => p.session_expiry = Some(r.u32()?),
                0x12 => p.assigned_client_id = Some(r.string()?),
                0x13 => p.server_keep_alive = Some(r.u16()?),
                0x15 => p.authentication_method = Some(r.string()?),
                0x16 => {
                    r.binary()?;
                }
                0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                    r.u8()?;
                }
                0x18 => {
                    r.u32()?;
                }
                0x1A | 0x1C => {
                    r.string()?;
                }
                0x1F => p.reason_string = Some(r.string()?),
                0x21 => p.receive_maximum = Some(r.u16()?),
                0x22 => p.topic_alias_maximum = Some(r.u16()?),
                0x23 => p.topic_alias = Some(r.u16()?),
                0x26 => {
                    if p.user_properties.len() >= MAX_USER_PROPERTIES {
                        return Err(DecodeError::TooManyUserProperties);
                    }
                    let name = r.string()?;
                    let value = r.string()?;
                    p.user_properties.push((name, value));
                }
                0x27 => p.maximum_packet_size = Some(r.u32()?),
                _ => return Err(DecodeError::Malformed("unknown property")),
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::super::encode::{put_string, put_varint};
    use super::super::packet::Outgoing;
    use super::*;
    use bytes::BufMut;

    #[test]
    fn a_packet_split_anywhere_is_read_once_complete() {
        let bytes = Outgoing::Publish(Publish {
            dup: false,
            qos: 1,
            retain: false,
            topic: "t".into(),
            packet_id: 7,
            properties: Properties {
                content_type: Some("text/plain".into()),
                user_properties: vec![("a".into(), "b".into())],
                ..Properties::default()
            },
            payload: Bytes::from_static(b"hello"),
        })
        .encode(V5);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decode(&mut buf, V5, 1024), Ok(None), "cut at {cut}");
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let Some(Packet::Publish(p)) = decode(&mut buf, V5, 1024).unwrap() else {
            panic!("not a publish");
        };
        assert_eq!(p.packet_id, 7);
        assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
        assert_eq!(&p.payload[..], b"hello");
        assert!(buf.is_empty());
    }

    #[test]
    fn an_announced_size_over_the_limit_is_refused_from_the_header() {
        let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0x7F][..]);
        assert_eq!(
            decode(&mut buf, V4, 1024),
            Err(DecodeError::TooLarge(2_097_151))
        );
    }

    /// A 5.0 PUBLISH to `t` (QoS 0) with `n` empty user properties.
    fn publish_with_user_properties(n: usize) -> BytesMut {
        let mut properties = BytesMut::new();
        for i in 0..n {
            properties.put_u8(0x26);
            put_string(&mut properties, &i.to_string());
            put_string(&mut properties, "");
        }
        let mut body = BytesMut::new();
        put_string(&mut body, "t");
        put_varint(&mut body, properties.len());
        body.put_slice(&properties);
        let mut packet = BytesMut::new();
        packet.put_u8(0x30);
        put_varint(&mut packet, body.len());
        packet.put_slice(&body);
        packet
    }

    #[test]
    fn the_decoders_extremes_are_errors_not_panics() {
        // User properties: 128 read, one more refused before it is kept.
        let mut ok = publish_with_user_properties(MAX_USER_PROPERTIES);
        let Ok(Some(Packet::Publish(p))) = decode(&mut ok, V5, MAX_PACKET_TEST) else {
            panic!("128 user properties are read");
        };
        assert_eq!(p.properties.user_properties.len(), MAX_USER_PROPERTIES);
        for n in [MAX_USER_PROPERTIES + 1, 33_000, 90_000] {
            let mut buf = publish_with_user_properties(n);
            assert_eq!(
                decode(&mut buf, V5, MAX_PACKET_TEST),
                Err(DecodeError::TooManyUserProperties),
                "{n}"
            );
        }
        let cases: &[(&[u8], &str)] = &[
            // Remaining length: the largest, and a fifth byte.
            (&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], "largest remaining length"),
            (
                &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
                "five-byte remaining length",
            ),
            // A properties length past the packet, and the largest varint.
            (
                &[0x30, 0x05, 0x00, 0x01, b't', 0x7F, 0x00],
                "properties past the packet",
            ),
            (
                &[0x30, 0x07, 0x00, 0x01, b't', 0xFF, 0xFF, 0xFF, 0x7F],
                "largest properties length",
            ),
            // A string length past the packet.
            (&[0x30, 0x03, 0xFF, 0xFF, b't'], "topic past the packet"),
            // CONNECT with every flag set and nothing behind.
            (
                &[0x10, 0x08, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xFE],
                "CONNECT cut short",
            ),
            // SUBSCRIBE with an id and no filter; with a 5-byte subscription id.
            (&[0x82, 0x02, 0x00, 0x01], "SUBSCRIBE without filters"),
            (
                &[
                    0x82, 0x09, 0x00, 0x01, 0x06, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
                ],
                "bad subscription id",
            ),
        ];
        for (bytes, what) in cases {
            // 3.1.1 reads no properties: there some are packets; none panics.
            let _ = decode(&mut BytesMut::from(*bytes), V4, MAX_PACKET_TEST);
            let result = decode(&mut BytesMut::from(*bytes), V5, MAX_PACKET_TEST);
            assert!(matches!(result, Err(_) | Ok(None)), "{what}: {result:?}");
        }
        // Every first byte, with every small remaining length and zeros.
        for first in 0..=255u8 {
            for len in 0..8u8 {
                let mut bytes = vec![first, len];
                bytes.extend(std::iter::repeat_n(0, usize::from(len)));
                for version in [V4, V5] {
                    let _ = decode(&mut BytesMut::from(&bytes[..]), version, MAX_PACKET_TEST);
                }
            }
        }
    }

    /// The emulator's own limit.
    const MAX_PACKET_TEST: usize = super::super::service::MAX_PACKET;

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_to_a_packet_an_error_or_more_needed(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            v5 in proptest::bool::ANY,
        ) {
            let version = if v5 { V5 } else { V4 };
            let mut buf = BytesMut::from(&bytes[..]);
            let before = buf.len();
            if let Ok(Some(_)) = decode(&mut buf, version, MAX_PACKET_TEST) {
                proptest::prop_assert!(buf.len() < before, "a packet consumes bytes");
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed: u32 = 1;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            for _ in 0..(seed % 40) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                bytes.push((seed >> 16) as u8);
            }
            let mut buf = BytesMut::from(&bytes[..]);
            for version in [V4, V5] {
                let _ = decode(&mut buf.clone(), version, 64);
            }
            let _ = decode(&mut buf, V5, 64);
        }
    }
}
