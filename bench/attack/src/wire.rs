//! HTTP/1.1 and WebSocket framing by hand, for what a well-behaved client
//! library will not do: stop a frame before its last byte, send an upgrade
//! and reset the connection, answer nothing.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The largest response head read.
const MAX_HEAD: usize = 16 * 1024;

/// Reads an HTTP response head; returns its status and the bytes read past it.
pub async fn read_head<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]);
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no status line"))?;
            return Ok((status, buf[end + 4..].to_vec()));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends a WebSocket upgrade for `path_and_query` offering `protocol`, and
/// reads the answer's head: its status and any frame bytes past it.
pub async fn upgrade(
    stream: &mut TcpStream,
    addr: SocketAddr,
    path_and_query: &str,
    protocol: &str,
) -> io::Result<(u16, Vec<u8>)> {
    let request = format!(
        "GET {path_and_query} HTTP/1.1\r\n\
         Host: {addr}\r\n\
         Connection: Upgrade\r\n\
         Upgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    read_head(stream).await
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`); returns
/// the status (the body is not read).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    bearer: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path_and_query} HTTP/1.1\r\n\
         Host: {addr}\r\n\
         Authorization: Bearer {bearer}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    Ok(read_head(&mut stream).await?.0)
}

/// The header of one final client frame of `len` payload bytes: masked, as
/// clients must, with the all-zero mask so the payload goes out as it is.
pub fn client_frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut header = vec![0x80 | opcode];
    match len {
        0..=125 => header.push(0x80 | len as u8),
        126..=0xFFFF => {
            header.push(0x80 | 126);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend_from_slice(&len.to_be_bytes());
        }
    }
    header.extend_from_slice(&[0, 0, 0, 0]);
    header
}

/// The close opcode.
pub const CLOSE: u8 = 0x8;

/// Reads the (unmasked) frames a server sends, after the upgrade.
pub struct ServerFrames<R> {
    stream: R,
    buf: Vec<u8>,
}

/// The largest server frame this reader accepts.
const MAX_SERVER_FRAME: usize = 1024 * 1024;

impl<R: AsyncRead + Unpin> ServerFrames<R> {
    /// Frames from `stream`, which starts after `already_read`.
    pub fn new(stream: R, already_read: Vec<u8>) -> Self {
        Self {
            stream,
            buf: already_read,
        }
    }

    /// The next frame's opcode and payload; `None` at the end of the stream.
    pub async fn next(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            if let Some((opcode, start, len)) = parse_header(&self.buf)? {
                if self.buf.len() >= start + len {
                    let payload = self.buf[start..start + len].to_vec();
                    self.buf.drain(..start + len);
                    return Ok(Some((opcode, payload)));
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `(opcode, payload start, payload length)` once the header is complete.
fn parse_header(buf: &[u8]) -> io::Result<Option<(u8, usize, usize)>> {
    let [first, second, rest @ ..] = buf else {
        return Ok(None);
    };
    let (len, start) = match second & 0x7F {
        126 if rest.len() >= 2 => (u16::from_be_bytes([rest[0], rest[1]]) as u64, 4),
        127 if rest.len() >= 8 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&rest[..8]);
            (u64::from_be_bytes(bytes), 10)
        }
        126 | 127 => return Ok(None),
        small => (u64::from(small), 2),
    };
    let start = start + if second & 0x80 != 0 { 4 } else { 0 };
    match usize::try_from(len) {
        Ok(len) if len <= MAX_SERVER_FRAME => Ok(Some((first & 0x0F, start, len))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "server frame too large",
        )),
    }
}

/// The status code of a close frame's payload (1005: none given).
pub fn close_code(payload: &[u8]) -> u16 {
    match payload {
        [high, low, ..] => u16::from_be_bytes([*high, *low]),
        _ => 1005,
    }
}

/// Like [`request`], with any headers given in `extra` (`Name: value\r\n`
/// lines) and no bearer when `bearer` is empty; returns the status and up
/// to 64 KiB of the body (read to the end of the connection).
pub async fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    bearer: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let authorization = if bearer.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {bearer}\r\n")
    };
    let head = format!(
        "{method} {path_and_query} HTTP/1.1\r\n\
         Host: {addr}\r\n\
         {authorization}\
         Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let (status, mut rest) = read_head(&mut stream).await?;
    let mut chunk = [0u8; 4096];
    while rest.len() < 64 * 1024 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => rest.extend_from_slice(&chunk[..n]),
        }
    }
    Ok((status, String::from_utf8_lossy(&rest).into_owned()))
}
