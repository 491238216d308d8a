//! Reading an HTTP answer's body without letting its sender decide how much is held: a
//! server (or a proxy in front of it) that sends an endless or huge body cannot make the
//! reader keep more than its limit while the request's timeout runs. What is not read is
//! left unread, and the connection dropped with the response.

/// At most `limit` bytes of `response`'s body, and whether the body went on past them.
pub(crate) async fn excerpt(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Reads and discards what of `response`'s body has already arrived, at most `limit` bytes,
/// never waiting for more: a body that came whole with the head (the usual empty or short
/// answer) leaves the connection free for the next request, and one that stalls or breaks
/// off holds nobody up, as nothing in it is needed.
#[cfg(feature = "http")]
pub(crate) async fn discard_arrived(response: &mut reqwest::Response, limit: usize) {
    use std::future::Future as _;
    use std::task::Poll;
    let mut read = 0;
    while read < limit {
        let mut next = std::pin::pin!(response.chunk());
        // One poll: ready when the bytes are already there, pending (and dropped) otherwise.
        let polled = std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await;
        match polled {
            Poll::Ready(Ok(Some(chunk))) => read += chunk.len(),
            _ => return,
        }
    }
}

/// The whole body of `response`, or `None` when it is longer than `limit` bytes: announced
/// so by its `Content-Length` (then nothing is read), or found so as it comes.
#[cfg(feature = "jwks")]
pub(crate) async fn whole(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Ok(None);
    }
    let (body, longer) = excerpt(response, limit).await?;
    Ok((!longer).then_some(body))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A server that answers one request with `answer` (raw HTTP/1.1) and then holds the
    /// connection open; returns the response to it.
    async fn answer(answer: &'static str) -> reqwest::Response {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0];
                socket.read_exact(&mut byte).await.unwrap();
                request.push(byte[0]);
            }
            socket.write_all(answer.as_bytes()).await.unwrap();
            // Never ends: a reader that waits for more than it needs waits for ever.
            std::future::pending::<()>().await;
        });
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap()
    }

    /// Three chunks of ten bytes, and the end of the body.
    const THIRTY_BYTES: &str = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
        a\r\n0123456789\r\na\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";

    #[tokio::test]
    async fn an_excerpt_stops_at_the_limit_and_says_whether_more_came() {
        let (body, longer) = excerpt(&mut answer(THIRTY_BYTES).await, 25).await.unwrap();
        assert_eq!((body.len(), longer), (25, true));
        let (body, longer) = excerpt(&mut answer(THIRTY_BYTES).await, 30).await.unwrap();
        assert_eq!((body.len(), longer), (30, false));
    }

    #[cfg(feature = "jwks")]
    #[tokio::test]
    async fn a_whole_body_past_the_limit_is_refused_as_it_comes_or_as_announced() {
        let body = whole(&mut answer(THIRTY_BYTES).await, 30).await.unwrap();
        assert_eq!(body.map(|body| body.len()), Some(30));
        assert_eq!(
            whole(&mut answer(THIRTY_BYTES).await, 29).await.unwrap(),
            None
        );
        // Announced and never sent: refused without waiting for it.
        let announced = "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n";
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            whole(&mut answer(announced).await, 100),
        )
        .await
        .expect("refused without reading");
        assert_eq!(refused.unwrap(), None);
    }
}
