//! Answers batches of whole responses on the core's runtime instead of the JS thread.
//!
//! `respondBatch` on the JS thread only checks a batch's framing, converts the bodies
//! that cross as JS values, copies the records and queues them here. A task on the
//! runtime then decodes each response's header fields, builds its body and answers
//! its exchange. The JS thread is the one a Node app cannot add more of: per response
//! this took about 90 ns off it in the crossing benchmark (bench/README.md). The
//! answers also wake the connection tasks from a runtime thread, into its own run
//! queue, where from the JS thread every wake went through the runtime's shared
//! queue.
//!
//! Batches are answered one at a time, in the order JS sent them: a batch may refer
//! to header fields an earlier one defined ([`FieldTable`]).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use peregrine_core::bridge::{Bridge, SharedFields, WholeResponse};
use peregrine_core::{Error, ErrorCode, ResponseBody};

use crate::batch::{BatchRecord, FieldTable, Malformed};
use crate::convert;
use crate::tape::Tape;

/// A batch taken from JS: its records, copied, the bodies that crossed as values, and
/// its header field count ([`check`]).
pub struct PendingBatch {
    pub records: Bytes,
    pub bodies: Vec<Bytes>,
    pub field_count: usize,
}

/// What [`check`] found in a well-formed batch.
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    /// Bodies the batch expects in the bodies array.
    pub array_bodies: usize,
    /// Header fields in all its records.
    pub field_count: usize,
}

/// Checks a batch's framing and every header block. A malformed batch is refused as a
/// whole, before any of its responses goes out; one that passes is not walked for
/// errors again on the runtime.
pub fn check(records: &[u8]) -> Result<Checked, Malformed> {
    let mut rest = records;
    let mut checked = Checked {
        array_bodies: 0,
        field_count: 0,
    };
    while !rest.is_empty() {
        let (record, tail) = BatchRecord::frame(rest)?;
        checked.field_count += record.count_fields()?;
        checked.array_bodies += usize::from(record.body_in_array);
        rest = tail;
    }
    Ok(checked)
}

/// The answering side of one server handle: its bridge, the header fields its batches
/// have indexed, and the batches waiting.
pub struct Answerer {
    bridge: Arc<Bridge<Tape>>,
    fields: Mutex<FieldTable>,
    queue: Mutex<VecDeque<PendingBatch>>,
    /// A task is answering, or is spawned to: it takes every batch queued before it
    /// finds the queue empty.
    scheduled: AtomicBool,
    me: Weak<Answerer>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks with the state half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Answerer {
    pub fn new(bridge: Arc<Bridge<Tape>>) -> Arc<Answerer> {
        Arc::new_cyclic(|me| Answerer {
            bridge,
            fields: Mutex::default(),
            queue: Mutex::default(),
            scheduled: AtomicBool::new(false),
            me: me.clone(),
        })
    }

    /// Queues a checked batch ([`check`]); it is answered on the runtime.
    pub fn queue(&self, batch: PendingBatch) {
        lock(&self.queue).push_back(batch);
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            if let Some(me) = self.me.upgrade() {
                peregrine_core::runtime::shared().spawn(async move { me.answer_queued() });
            }
        }
    }

    fn answer_queued(&self) {
        loop {
            let next = lock(&self.queue).pop_front();
            match next {
                Some(batch) => self.answer(batch),
                None => {
                    self.scheduled.store(false, Ordering::Release);
                    // A batch queued between the pop and the store found the flag set
                    // and spawned nothing: take it, unless a new task already will.
                    if lock(&self.queue).is_empty() || self.scheduled.swap(true, Ordering::AcqRel) {
                        return;
                    }
                }
            }
        }
    }

    /// Answers every response of a batch. One whose header fields are refused, or
    /// whose exchange cannot take it, is aborted, and the refusal reported to JS.
    fn answer(&self, batch: PendingBatch) {
        let records = &batch.records;
        let mut parsed: Vec<BatchRecord<'_>> = Vec::new();
        let mut rest: &[u8] = records;
        while !rest.is_empty() {
            // Checked on the JS thread before it was queued.
            let Ok((record, tail)) = BatchRecord::frame(rest) else {
                break;
            };
            parsed.push(record);
            rest = tail;
        }
        // Decoded first, every record whatever becomes of it (later records may use the
        // fields it defines), into one list the batch's responses share: each
        // response's header map is made by the connection task that sends it
        // (peregrine_core::bridge::SharedFields). Literal header values are slices of
        // the batch's copy, so they cost no allocation each; hyper and h2 hold headers
        // only until the head is encoded, so the copy lives about as long as the
        // batch's heads. Bodies get copies of their own: a slow client may hold its body
        // for long, and must not keep a whole batch alive with it.
        let mut fields = Vec::with_capacity(batch.field_count);
        let mut ranges = Vec::with_capacity(parsed.len());
        {
            let mut table = lock(&self.fields);
            for record in &parsed {
                let start = fields.len();
                let decoded = table.decode_into(&records.slice_ref(record.headers()), &mut fields);
                ranges.push(decoded.map(|()| start..fields.len()));
            }
        }
        let fields = Arc::new(fields);
        let mut bodies = batch.bodies.into_iter();
        for (record, range) in parsed.into_iter().zip(ranges) {
            let id = record.id;
            // The body is taken first, so that a refused record does not shift the
            // bodies of the records after it.
            let body = if record.body_in_array {
                bodies.next().unwrap_or_default()
            } else {
                Bytes::copy_from_slice(record.body())
            };
            let answered = whole_response(record.status, &fields, range, body)
                .and_then(|response| self.bridge.respond_whole(id, response));
            match answered {
                // The client may have gone meanwhile: nothing to report.
                Err(e) if e.code == ErrorCode::UnknownExchange => {}
                Err(e) => self.bridge.refuse(id, e),
                Ok(()) => {}
            }
        }
    }
}

fn whole_response(
    status: u16,
    fields: &Arc<Vec<(HeaderName, HeaderValue)>>,
    range: Result<Range<usize>, String>,
    body: Bytes,
) -> Result<WholeResponse, Error> {
    let range = range.map_err(|message| Error::new(ErrorCode::InvalidHeader, message))?;
    let headers = SharedFields::new(fields.clone(), range).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidHeader,
            "a response's header fields are out of range",
        )
    })?;
    let status = convert::final_status(u32::from(status))?;
    Ok(WholeResponse {
        status,
        headers,
        body: ResponseBody::full(body),
    })
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::task::{Context, Waker};
    use std::time::Duration;

    use peregrine_core::bridge::Wake;
    use peregrine_core::{
        Abort, ConnectionInfo, Handler, Request, RequestBody, RequestHead, Response, Scheme,
    };

    use super::*;
    use crate::batch::fixtures::{indexed, literal, record};
    use crate::tape::fixtures::records;
    use crate::tape::{REFUSED, REQUEST};

    struct NoWake;

    impl Wake for NoWake {
        fn wake(&self) {}
    }

    type Call = Pin<Box<dyn Future<Output = Result<Response, Abort>> + Send>>;

    fn bridge() -> Arc<Bridge<Tape>> {
        let runtime = peregrine_core::runtime::shared();
        Bridge::new(NoWake, runtime.handle().clone(), 16)
    }

    /// Hands a request to the bridge as hyper would; returns its id and the future
    /// that waits for its answer.
    fn request(bridge: &Arc<Bridge<Tape>>) -> (u32, Call) {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let (parts, ()) = http::Request::get("/").body(()).unwrap().into_parts();
        let request = Request {
            head: RequestHead {
                parts,
                connection: Arc::new(ConnectionInfo::new(1, addr, addr, Scheme::Http, None)),
                stream_id: None,
            },
            body: RequestBody::full(Bytes::new()),
        };
        let bridge = bridge.clone();
        let host = bridge.clone();
        let mut call: Call = Box::pin(async move { bridge.call(request).await });
        // The first poll queues the request; the answer comes later.
        assert!(call
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending());
        let ids: Vec<u32> = records(&host.drain().take_bytes())
            .into_iter()
            .filter(|(kind, _)| *kind == REQUEST)
            .map(|(_, id)| id)
            .collect();
        assert_eq!(ids.len(), 1);
        (ids[0], call)
    }

    fn answer_of(call: Call) -> Result<Response, Abort> {
        let runtime = peregrine_core::runtime::shared();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), call)
                .await
                .expect("no answer within 10 s")
        })
    }

    fn batch(records: Vec<Vec<u8>>, bodies: Vec<Bytes>) -> PendingBatch {
        let records = records.concat();
        let checked = check(&records).unwrap();
        assert_eq!(checked.array_bodies, bodies.len());
        PendingBatch {
            records: Bytes::from(records),
            bodies,
            field_count: checked.field_count,
        }
    }

    #[test]
    fn answers_batches_in_order_with_the_fields_earlier_ones_defined() {
        let bridge = bridge();
        let answerer = Answerer::new(bridge.clone());
        let (first, first_call) = request(&bridge);
        let (second, second_call) = request(&bridge);
        let mut defining = Vec::new();
        literal(&mut defining, Some(3), "content-type", "text/plain");
        let mut referring = Vec::new();
        indexed(&mut referring, 3);
        literal(&mut referring, None, "x-second", "yes");
        let mut array_body = record(second, 201, &referring, &[]);
        // The body is the bodies array's first entry.
        array_body[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        // Queued back to back: the second batch refers to the first one's definition.
        answerer.queue(batch(vec![record(first, 200, &defining, b"one")], vec![]));
        answerer.queue(batch(vec![array_body], vec![Bytes::from_static(b"two")]));
        let first = answer_of(first_call).unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["content-type"], "text/plain");
        let second = answer_of(second_call).unwrap();
        assert_eq!(second.status(), 201);
        assert_eq!(second.headers()["content-type"], "text/plain");
        assert_eq!(second.headers()["x-second"], "yes");
        assert_eq!(bridge.in_flight(), 0);
    }

    #[test]
    fn a_refused_response_aborts_only_its_exchange_and_is_reported() {
        let bridge = bridge();
        let answerer = Answerer::new(bridge.clone());
        let (refused, refused_call) = request(&bridge);
        let (answered, answered_call) = request(&bridge);
        let mut undefined = Vec::new();
        indexed(&mut undefined, 9);
        answerer.queue(batch(
            vec![
                record(refused, 200, &undefined, b"never"),
                record(answered, 200, &[], b"fine"),
            ],
            vec![],
        ));
        assert!(
            answer_of(refused_call).is_err(),
            "the refused one is aborted"
        );
        assert_eq!(answer_of(answered_call).unwrap().status(), 200);
        assert_eq!(
            records(&bridge.drain().take_bytes()),
            vec![(REFUSED, refused)]
        );
    }

    #[test]
    fn a_malformed_batch_is_refused_whole() {
        let mut records = record(1, 200, &[], b"ok");
        records.extend_from_slice(&record(2, 200, &[], b"cut")[..16]);
        assert_eq!(check(&records).err(), Some(Malformed));
        // A field tag past the table is malformed too.
        let mut headers = Vec::new();
        indexed(&mut headers, 5000);
        assert_eq!(check(&record(1, 200, &headers, &[])).err(), Some(Malformed));
    }
}
