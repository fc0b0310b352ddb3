//! The listener: TCP connections whose hyper-made error answers are problem+json too.
//!
//! hyper answers some requests before any of our code runs: a request line longer than
//! 65,534 bytes (414), headers over its buffer (431), an unparsable method, URI, header or
//! version (400). Those answers have no body and no content type, and hyper offers no hook to
//! change them. [`ProblemIo`] recognises such an answer in the bytes hyper writes — a status
//! line `HTTP/1.1 4xx`, `content-length: 0` and no `content-type`, a head that no answer of
//! ours has (every error we write is problem+json, every success has a type or a body) — and
//! writes a problem+json answer with the same status in its place. hyper closes the
//! connection after such an answer, so nothing follows it.
//!
//! It also closes lingeringly, as nginx does: when the server ends a connection whose client
//! is still sending (a body over the limit, headers over the buffer), closing at once with
//! unread data makes the kernel send a reset, and a reset can destroy the answer before the
//! client reads it. So a connection we shut down is drained in the background (until the
//! client's end, 2 s or 1 MiB) before it is dropped.

use super::error::problem_body;
use axum::http::StatusCode;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener handing out [`ProblemIo`] connections.
pub struct ProblemListener(pub TcpListener);

impl axum::serve::Listener for ProblemListener {
    type Io = ProblemIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = io.set_nodelay(true);
        (ProblemIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose bodiless 4xx heads (hyper's own) are replaced by problem+json answers,
/// closed lingeringly.
pub struct ProblemIo {
    /// The connection (taken by the lingering drain when dropped).
    inner: Option<TcpStream>,
    /// A replacement answer still to write, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
    /// Whether our side shut down writing (the server ends the connection).
    shut: bool,
}

impl ProblemIo {
    /// Wraps a connection.
    pub fn new(inner: TcpStream) -> ProblemIo {
        ProblemIo {
            inner: Some(inner),
            pending: None,
            shut: false,
        }
    }

    fn io(&mut self) -> &mut TcpStream {
        self.inner
            .as_mut()
            .expect("the connection is there until dropped")
    }
}

impl Drop for ProblemIo {
    fn drop(&mut self) {
        let Some(mut s) = self.inner.take() else {
            return;
        };
        if !self.shut {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 16 * 1024];
            let mut left = 1usize << 20;
            let drain = async {
                while left > 0 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
        });
    }
}

/// The problem+json answer replacing `head` when it is one of hyper's bodiless error heads.
pub fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let code = std::str::from_utf8(rest.get(..3)?)
        .ok()?
        .parse::<u16>()
        .ok()?;
    if !(400..500).contains(&code) {
        return None;
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != head.len() {
        return None; // a head with a body after it is not hyper's bare answer
    }
    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    let lines: Vec<&str> = text.split("\r\n").skip(1).collect();
    if lines.iter().any(|l| l.starts_with("content-type:"))
        || !lines
            .iter()
            .any(|l| l.replace(' ', "") == "content-length:0")
    {
        return None;
    }
    let status = StatusCode::from_u16(code).ok()?;
    let (slug, title, detail) = match code {
        414 => (
            "uri-too-long",
            "URI too long",
            "the request's URI is longer than 65,534 bytes; send large data in the body",
        ),
        431 => (
            "headers-too-large",
            "Request headers too large",
            "the request's headers are larger than this server reads",
        ),
        _ => (
            "malformed",
            "Malformed request",
            "the request is not valid HTTP/1.1 (its method, URI, a header or the version)",
        ),
    };
    let body = problem_body(status, slug, title, detail, None);
    let reason = status.canonical_reason().unwrap_or("");
    Some(
        format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/problem+json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl ProblemIo {
    /// Writes what is left of a replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((buf, done)) = &mut self.pending {
            if *done == buf.len() {
                self.pending = None;
                break;
            }
            let n =
                ready!(Pin::new(self.inner.as_mut().expect("open")).poll_write(cx, &buf[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for ProblemIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProblemIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(answer) = replacement(buf) {
            self.pending = Some((answer, 0));
            // hyper's head counts as written; the replacement goes out in its place.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(self.io()).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(self.io()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        self.shut = true;
        Pin::new(self.io()).poll_shutdown(cx)
    }

    /// Not vectored: hyper then writes each head as one buffer, so a head is seen whole.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_error_heads_are_replaced() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 10:40:30 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        assert!(
            out.contains("content-type: application/problem+json"),
            "{out}"
        );
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 414);
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
        // Ours: a type, or a body, or not an error.
        for head in [
            &b"HTTP/1.1 404 Not Found\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"{\"HTTP/1.1 400 \": 1}",
        ] {
            assert!(replacement(head).is_none(), "{}", String::from_utf8_lossy(head));
        }
        let bad = replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").unwrap();
        assert!(String::from_utf8_lossy(&bad).contains("urn:muster:problem:malformed"));
    }
}

/// The client's address on a [`ProblemListener`] connection (`ConnectInfo<Peer>`), for what
/// is limited per address (failed command-centre sign-ins).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, ProblemListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, ProblemListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}
