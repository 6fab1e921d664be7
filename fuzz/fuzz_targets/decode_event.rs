//! `webpubsub::upstream::decode_event` on fuzzed headers and bodies: it must never
//! panic, and every refusal must be a `400` (the decoder knows nothing of hubs,
//! sizes or signatures, and a 5xx would make the service retry).
//!
//! The input is structured (via `arbitrary`) so that most runs look like what
//! the service sends: a real `ce-type`, the required `ce-hub` /
//! `ce-connectionId`, a plausible `Content-Type`, a `ce-connectionState` that
//! is base64 of fuzzed bytes, and a body that is either raw bytes or one of
//! the spec's JSON bodies with fuzzed splices. On top of that come arbitrary
//! extra header lines, drawn from the headers the decoder reads.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use http::{HeaderMap, HeaderName, HeaderValue};
use webpubsub::upstream::decode_event;
use webpubsub::events::Event;

/// The headers the decoder (or the layer in front of it) reads, spelled as
/// the service spells them; `HeaderName` lower-cases them.
const NAMES: &[&str] = &[
    "ce-type",
    "ce-hub",
    "ce-connectionId",
    "ce-eventName",
    "ce-userId",
    "ce-connectionState",
    "ce-signature",
    "content-type",
    "webhook-request-origin",
    "ce-subprotocol",
    "ce-physicalConnectionId",
    "ce-sessionId",
    "ce-id",
    "ce-time",
    "ce-source",
    "ce-specversion",
    "ce-awpsversion",
    "content-length",
];

#[derive(Debug, Arbitrary)]
enum CeType<'a> {
    Connect,
    Connected,
    Disconnected,
    GroupJoined,
    GroupLeft,
    /// `azure.webpubsub.user.<name>`
    User(String),
    /// A system-looking type with a fuzzed suffix.
    Sys(String),
    Raw(&'a [u8]),
    Missing,
}

impl CeType<'_> {
    fn value(&self) -> Option<Vec<u8>> {
        let v = match self {
            Self::Connect => "azure.webpubsub.sys.connect".to_owned(),
            Self::Connected => "azure.webpubsub.sys.connected".to_owned(),
            Self::Disconnected => "azure.webpubsub.sys.disconnected".to_owned(),
            Self::GroupJoined => "azure.webpubsub.gp.joined".to_owned(),
            Self::GroupLeft => "azure.webpubsub.gp.left".to_owned(),
            Self::User(name) => format!("azure.webpubsub.user.{name}"),
            Self::Sys(suffix) => format!("azure.webpubsub.sys.{suffix}"),
            Self::Raw(bytes) => return Some(bytes.to_vec()),
            Self::Missing => return None,
        };
        Some(v.into_bytes())
    }
}

#[derive(Debug, Arbitrary)]
enum ContentType<'a> {
    None,
    Text,
    TextUtf8,
    TextCharset(String),
    Json,
    JsonCharset(String),
    Octet,
    Raw(&'a [u8]),
}

impl ContentType<'_> {
    fn value(&self) -> Option<Vec<u8>> {
        let v = match self {
            Self::None => return None,
            Self::Text => "text/plain".to_owned(),
            Self::TextUtf8 => "text/plain; charset=utf-8".to_owned(),
            Self::TextCharset(c) => format!("text/plain; charset={c}"),
            Self::Json => "application/json".to_owned(),
            Self::JsonCharset(c) => format!("application/json;charset=\"{c}\""),
            Self::Octet => "application/octet-stream".to_owned(),
            Self::Raw(bytes) => return Some(bytes.to_vec()),
        };
        Some(v.into_bytes())
    }
}

#[derive(Debug, Arbitrary)]
enum State<'a> {
    None,
    /// Base64 of the bytes (so the fuzzer works on the JSON inside).
    Base64(&'a [u8]),
    /// Base64 without padding.
    Base64Unpadded(&'a [u8]),
    Raw(&'a [u8]),
}

impl State<'_> {
    fn value(&self) -> Option<Vec<u8>> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
        match self {
            Self::None => None,
            Self::Base64(json) => Some(STANDARD.encode(json).into_bytes()),
            Self::Base64Unpadded(json) => Some(STANDARD_NO_PAD.encode(json).into_bytes()),
            Self::Raw(bytes) => Some(bytes.to_vec()),
        }
    }
}

/// Bodies the spec describes, to splice fuzzed bytes into.
const TEMPLATES: &[&str] = &[
    r#"{"claims":{"sub":["user1"]},"query":{"id":["1"]},"headers":{},"subprotocols":[],"clientCertificates":[]}"#,
    r#"{"mqtt":{"protocolVersion":5,"username":"device-7","password":"c2VjcmV0","userProperties":[{"name":"fw","value":"1.2"}]},"claims":{},"query":{},"headers":{"Sec-WebSocket-Protocol":["mqtt"]},"subprotocols":["mqtt"],"clientCertificates":[{"thumbprint":"ABC","content":null}]}"#,
    r#"{"reason":"closed"}"#,
    r#"{"reason":null,"mqtt":{"initiatedByClient":true,"disconnectPacket":{"code":0,"userProperties":[{"name":"a","value":"b"}]}}}"#,
    r#"{"group":"lobby"}"#,
    r#"{"claims":{"sub":"x","role":[1,true,null,2.5]},"query":null,"headers":{"a":"b"},"subprotocols":"json.webpubsub.azure.v1"}"#,
    "{}",
    "null",
    "hello",
];

#[derive(Debug, Arbitrary)]
enum Body<'a> {
    Raw(&'a [u8]),
    Template {
        index: u8,
        /// (position, bytes to cut, bytes to insert)
        edits: Vec<(u16, u8, &'a [u8])>,
    },
}

impl Body<'_> {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Raw(bytes) => bytes.to_vec(),
            Self::Template { index, edits } => {
                let mut body = TEMPLATES[usize::from(*index) % TEMPLATES.len()]
                    .as_bytes()
                    .to_vec();
                for (at, cut, insert) in edits.iter().take(8) {
                    let at = usize::from(*at) % (body.len() + 1);
                    let end = (at + usize::from(*cut)).min(body.len());
                    body.splice(at..end, insert.iter().copied());
                }
                body
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    ce_type: CeType<'a>,
    /// Adds `ce-hub: chat` and `ce-connectionId: conn-1`.
    required: bool,
    content_type: ContentType<'a>,
    state: State<'a>,
    /// Extra header lines: (index into `NAMES`, raw value).
    extra: Vec<(u8, &'a [u8])>,
    body: Body<'a>,
}

fn put(headers: &mut HeaderMap, name: &str, value: &[u8]) {
    // Values `HeaderValue` refuses can never reach the decoder: skip them.
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value),
    ) {
        headers.append(name, value);
    }
}

fuzz_target!(|input: Input<'_>| {
    let mut headers = HeaderMap::new();
    if let Some(ce_type) = input.ce_type.value() {
        put(&mut headers, "ce-type", &ce_type);
    }
    if input.required {
        put(&mut headers, "ce-hub", b"chat");
        put(&mut headers, "ce-connectionId", b"conn-1");
    }
    if let Some(content_type) = input.content_type.value() {
        put(&mut headers, "content-type", &content_type);
    }
    if let Some(state) = input.state.value() {
        put(&mut headers, "ce-connectionState", &state);
    }
    for (index, value) in input.extra.iter().take(16) {
        put(
            &mut headers,
            NAMES[usize::from(*index) % NAMES.len()],
            value,
        );
    }
    let body = input.body.bytes();

    match decode_event(&headers, body.into()) {
        Ok(event) => touch(&event),
        Err(rejection) => {
            assert_eq!(rejection.status(), 400, "decode refused with {rejection:?}");
            let _ = rejection.to_string();
        }
    }
});

/// Reads what a handler would read, so accessors over decoded data run too.
fn touch(event: &Event) {
    let context = event.context();
    assert!(!context.hub.trim().is_empty(), "accepted an empty ce-hub");
    assert!(
        !context.connection_id.trim().is_empty(),
        "accepted an empty ce-connectionId"
    );
    for (key, _) in context.states.iter() {
        let _ = context.states.get::<serde_json::Value>(key);
    }
    // Written back as a response would (equality is `connection_state`'s job).
    let header = context.states.to_header();
    let _ = webpubsub::state::ConnectionStates::from_header(&header);
    match event {
        Event::Connect(req) => {
            let _ = (req.claim("sub"), req.query_value("id"), req.header("host"));
        }
        Event::UserEvent(req) => {
            let _ = req.data.as_text();
            let _ = req.data.to_json_value();
            let _ = req.json::<serde_json::Value>();
            let _ = req.data.data_type();
        }
        _ => {}
    }
    let _ = format!("{event:?}");
}
