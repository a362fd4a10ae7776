//! Pipelined HTTP/1.1 requests served together. hyper parses a connection's next
//! request only once the response to the one before it is done, so a handler that
//! answers from another thread (the bridge to JavaScript) would pay one round trip per
//! pipelined request: sixteen pipelined requests, sixteen wakes of the host.
//!
//! Instead, the guard queues a copy of each bodyless head that arrives behind an
//! unanswered request (`EdgeState::take_pipelined`). When hyper hands the service a
//! request, the service parses the queued heads as hyper would and calls the app for
//! them at once. When hyper reaches each of them, the service answers with the app's
//! response, which is often there already. The app sees the requests in order, as
//! node:http's handlers do, and the responses leave in order, as hyper writes them.
//!
//! Only requests that hyper would serve the same way are dispatched early: no body, no
//! upgrade, a head that parses as hyper parses it, and nothing behind a request that
//! ends the connection (`Connection: close`, HTTP/1.0 without keep-alive). If the
//! connection ends first anyway (the app aborted or closed it, the server is stopping,
//! the client went away), the requests dispatched early are dropped: the app sees
//! them aborted, as when a client disconnects.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION};
use http::{HeaderMap, Method, Uri, Version};

use super::connection_has;
use crate::body::RequestBody;
use crate::guard::{EdgeState, PipelinedHead};

/// The most requests a connection has dispatched ahead of the one hyper is serving.
/// Each may hold a response of up to maxResponseBufferSize until hyper writes it, so
/// this bounds what a client that pipelines and never reads can make the server keep.
pub(crate) const MAX_AHEAD: usize = 16;

/// hyper's limit on a request's header fields (`DEFAULT_MAX_HEADERS`); a head with more
/// is left to hyper, which refuses it.
const MAX_FIELDS: usize = 100;

/// hyper's limit on a request target's length (`MAX_URI_LEN`).
const MAX_URI_LEN: usize = (u16::MAX - 1) as usize;

/// One connection's requests dispatched ahead of hyper.
pub(crate) struct Lookahead<Fut: Future> {
    /// Requests hyper has handed to the service: the position of the next one.
    calls: u64,
    /// Requests dispatched before hyper reached them, in order.
    ahead: VecDeque<Ahead<Fut>>,
    /// Heads taken from the guard and not dispatched yet (past `MAX_AHEAD`).
    queued: VecDeque<PipelinedHead>,
    /// A request that ends the connection has been seen: nothing after it is
    /// dispatched early.
    closing: bool,
}

struct Ahead<Fut: Future> {
    index: u64,
    state: AheadState<Fut>,
    /// The request line as parsed ahead, checked against hyper's in tests.
    #[cfg(debug_assertions)]
    method: Method,
    #[cfg(debug_assertions)]
    uri: Uri,
}

enum AheadState<Fut: Future> {
    Running(Pin<Box<Fut>>),
    Done(Fut::Output),
}

impl<Fut: Future> Default for Lookahead<Fut> {
    fn default() -> Self {
        Lookahead {
            calls: 0,
            ahead: VecDeque::new(),
            queued: VecDeque::new(),
            closing: false,
        }
    }
}

/// Shared by a connection's service and the futures it returns.
pub(crate) type SharedLookahead<Fut> = Arc<Mutex<Lookahead<Fut>>>;

fn lock<Fut: Future>(lookahead: &SharedLookahead<Fut>) -> MutexGuard<'_, Lookahead<Fut>> {
    lookahead.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves the request hyper hands over: with the app's future for it, or with the one
/// dispatched for it ahead of time. Dispatches the pipelined requests queued behind it.
pub(crate) fn serve<A, Fut>(
    lookahead: &SharedLookahead<Fut>,
    app: &A,
    state: &EdgeState,
    request: http::Request<RequestBody>,
) -> impl Future<Output = Fut::Output> + Send + 'static
where
    A: Fn(http::Request<RequestBody>) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send,
{
    let mut shared = lock(lookahead);
    let index = shared.calls;
    shared.calls += 1;
    let dispatched = shared.ahead.front().is_some_and(|a| a.index == index);
    let own = if dispatched {
        #[cfg(debug_assertions)]
        if let Some(ahead) = shared.ahead.front() {
            assert_eq!(
                (&ahead.method, &ahead.uri),
                (request.method(), request.uri()),
                "request {index} as parsed ahead and as hyper parsed it"
            );
        }
        None
    } else {
        if ends_connection(request.version(), request.headers()) {
            shared.closing = true;
        }
        Some(Box::pin(app(request)))
    };
    shared.dispatch(app, state);
    // Requests are dispatched ahead only here, and hyper calls again only once this
    // request is answered: with none ahead now, there is nothing to drive meanwhile.
    let ahead = (!shared.ahead.is_empty()).then(|| lookahead.clone());
    drop(shared);
    async move {
        match (own, ahead) {
            (Some(own), None) => own.await,
            (Some(mut own), Some(ahead)) => {
                poll_fn(|cx| {
                    // The requests dispatched ahead are driven by whichever request
                    // hyper is waiting on, after it: the app sees them in order.
                    let output = own.as_mut().poll(cx);
                    lock(&ahead).poll_ahead(cx);
                    output
                })
                .await
            }
            (None, Some(ahead)) => poll_fn(|cx| lock(&ahead).poll_taken(index, cx)).await,
            (None, None) => unreachable!("a request dispatched ahead is in `ahead`"),
        }
    }
}

impl<Fut: Future> Lookahead<Fut> {
    /// Calls the app for the queued heads that come next in the connection's sequence.
    fn dispatch<A>(&mut self, app: &A, state: &EdgeState)
    where
        A: Fn(http::Request<RequestBody>) -> Fut,
    {
        let taken = state.take_pipelined();
        if self.queued.is_empty() {
            self.queued = taken;
        } else {
            self.queued.extend(taken);
        }
        while !self.closing && self.ahead.len() < MAX_AHEAD {
            let Some(next) = self.queued.front() else {
                break;
            };
            let index = state.next_served();
            if next.index < index {
                // hyper reached it first.
                self.queued.pop_front();
                continue;
            }
            if next.index > index {
                // A request in between (one with a body) is hyper's to hand over first.
                break;
            }
            let Some(head) = self.queued.pop_front() else {
                break;
            };
            let Some((parts, ends)) = parse(head.head) else {
                // hyper parses it and serves it, and the heads behind it wait for that.
                break;
            };
            self.closing = ends;
            #[cfg(debug_assertions)]
            let (method, uri) = (parts.method.clone(), parts.uri.clone());
            let request = http::Request::from_parts(parts, RequestBody::full(Bytes::new()));
            self.ahead.push_back(Ahead {
                index,
                state: AheadState::Running(Box::pin(app(request))),
                #[cfg(debug_assertions)]
                method,
                #[cfg(debug_assertions)]
                uri,
            });
        }
        if self.queued.is_empty() {
            // An idle connection keeps its service: it should keep no buffers in it.
            self.queued = VecDeque::new();
        }
    }

    /// Polls every request dispatched ahead that is still running.
    fn poll_ahead(&mut self, cx: &mut Context<'_>) {
        for ahead in &mut self.ahead {
            if let AheadState::Running(future) = &mut ahead.state {
                if let Poll::Ready(output) = future.as_mut().poll(cx) {
                    ahead.state = AheadState::Done(output);
                }
            }
        }
    }

    /// The output of request `index`, dispatched ahead, once it is done.
    fn poll_taken(&mut self, index: u64, cx: &mut Context<'_>) -> Poll<Fut::Output> {
        self.poll_ahead(cx);
        match self.ahead.front() {
            Some(Ahead {
                index: front,
                state: AheadState::Done(_),
                ..
            }) if *front == index => {}
            _ => return Poll::Pending,
        }
        let taken = self.ahead.pop_front().map(|a| a.state);
        if self.ahead.is_empty() {
            // As for `queued`: a few kilobytes a connection would keep while idle.
            self.ahead = VecDeque::new();
        }
        match taken {
            Some(AheadState::Done(output)) => Poll::Ready(output),
            _ => unreachable!("the front was checked to be done"),
        }
    }
}

/// Whether hyper closes the connection after answering a request with this version
/// and these fields (hyper's `keep_alive` in `role::Server::parse`).
fn ends_connection(version: Version, headers: &HeaderMap) -> bool {
    let mut keep_alive = version == Version::HTTP_11;
    for value in headers.get_all(CONNECTION) {
        if connection_has(value, "close") {
            return true;
        }
        keep_alive |= connection_has(value, "keep-alive");
    }
    !keep_alive
}

/// Parses a head the guard has validated as hyper's server does (method, target,
/// version and fields, no extensions), with whether it ends the connection. `None` for
/// anything hyper might see differently, which hyper is then left to parse and serve.
fn parse(head: Bytes) -> Option<(http::request::Parts, bool)> {
    // Uninitialized, as hyper has it: 100 empty fields are 3.2 KB to write per head.
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(&head, &mut fields) {
        Ok(httparse::Status::Complete(len)) if len == head.len() => {}
        _ => return None,
    }
    let target = request.path?;
    if target.len() > MAX_URI_LEN {
        return None;
    }
    let method = Method::from_bytes(request.method?.as_bytes()).ok()?;
    if method == Method::CONNECT {
        return None;
    }
    let uri = Uri::from_maybe_shared(head.slice_ref(target.as_bytes())).ok()?;
    let version = match request.version? {
        1 => Version::HTTP_11,
        0 => Version::HTTP_10,
        _ => return None,
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(field.value)).ok()?;
        headers.append(name, value);
    }
    let ends = ends_connection(version, &headers);
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Some((parts, ends))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_head_as_hyper_does() {
        let head = Bytes::from_static(
            b"\r\nGET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-Two: 1\r\nx-two: 2\r\n\r\n",
        );
        let (parts, ends) = parse(head).expect("parses");
        assert_eq!(parts.method, Method::GET);
        assert_eq!(parts.uri, "/a/b?c=d");
        assert_eq!(parts.version, Version::HTTP_11);
        assert_eq!(parts.headers["host"], "example.com");
        let two: Vec<_> = parts.headers.get_all("x-two").iter().collect();
        assert_eq!(two, ["1", "2"]);
        assert!(!ends);
    }

    #[test]
    fn knows_which_heads_end_the_connection() {
        let ends = |head: &'static [u8]| parse(Bytes::from_static(head)).expect("parses").1;
        assert!(ends(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        ));
        assert!(ends(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x, Close\r\n\r\n"
        ));
        assert!(ends(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(!ends(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(ends(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ends(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"
        ));
    }

    #[test]
    fn leaves_to_hyper_what_it_might_see_differently() {
        assert!(parse(Bytes::from_static(
            b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"
        ))
        .is_none());
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "x: y\r\n".repeat(MAX_FIELDS + 1)
        );
        assert!(parse(Bytes::from(many)).is_none());
        // A partial head, or one followed by more bytes.
        assert!(parse(Bytes::from_static(b"GET / HTTP/1.1\r\nHost: a\r\n")).is_none());
        assert!(parse(Bytes::from_static(b"GET / HTTP/1.1\r\n\r\nGET")).is_none());
    }
}
