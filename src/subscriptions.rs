//! The front end's status and log subscriptions: `tauri::ipc::Channel`s registered per webview by
//! the `subscribe_status` and `subscribe_logs` commands (each behind its own permission), fed from
//! the supervisor's [`EventSink`](crate::EventSink).
//!
//! Ordering. A status subscriber first receives the current status, then every change, each
//! exactly once and in order: the subscriber is registered, the current status read and sent, and
//! every later change sent, all under one lock, so no change can fall between the first status and
//! the next. The status's `seq` (incremented by the supervisor's one publish function) lets the
//! front end drop anything not newer than what it has, whatever reaches it in which order.
//!
//! Cost. A `Channel` has no flow control and no way to tell whether the page keeps up, so nothing
//! is buffered here: each status or record is serialized once and handed to every subscriber's
//! channel at once (one send each, O(1) per subscriber, never a retry). A send that fails means the
//! webview is gone: that subscription ends there. Subscriptions also end with `unsubscribe`, a
//! reload of their webview or the close of its window, and a webview holds at most
//! [`MAX_PER_WEBVIEW`] of each kind.

#![cfg_attr(mobile, allow(dead_code))]

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use tauri::ipc::{Channel, InvokeResponseBody};

use crate::calls::Owner;
use crate::error::{Error, Result};
use crate::models::{LogRecord, Status};

/// Most subscriptions of one kind one webview may hold.
pub(crate) const MAX_PER_WEBVIEW: usize = 32;

/// Where one subscription's messages go: a webview's `Channel`, or a test's recorder.
pub(crate) trait Outlet: Send + Sync + 'static {
    /// Delivers one message, already serialized as JSON; `false` when the receiver is gone.
    fn deliver(&self, json: &str) -> bool;
}

impl Outlet for Channel<InvokeResponseBody> {
    fn deliver(&self, json: &str) -> bool {
        match self.send(InvokeResponseBody::Json(json.to_owned())) {
            Ok(()) => true,
            Err(error) => {
                log::debug!(
                    "anysync: subscription channel {} is gone: {error}",
                    self.id()
                );
                false
            }
        }
    }
}

/// What a subscription receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topic {
    /// Every [`Status`], the current one first.
    Status,
    /// Every new backend [`LogRecord`].
    Logs,
}

impl Topic {
    fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Logs => "log",
        }
    }
}

struct Entry {
    id: u64,
    topic: Topic,
    owner: Owner,
    outlet: Arc<dyn Outlet>,
}

#[derive(Default)]
struct Books {
    next_id: u64,
    /// The newest status the sink reported.
    latest: Option<Status>,
    entries: Vec<Entry>,
}

/// Every open subscription of the app's webviews.
#[derive(Default)]
pub(crate) struct Subscriptions {
    books: Mutex<Books>,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions")
            .field("open", &self.books().entries.len())
            .finish()
    }
}

fn to_json(value: &impl Serialize) -> Option<String> {
    match serde_json::to_string(value) {
        Ok(json) => Some(json),
        Err(error) => {
            log::warn!("anysync: cannot serialize a subscription message: {error}");
            None
        }
    }
}

impl Subscriptions {
    fn books(&self) -> MutexGuard<'_, Books> {
        // Every change to the books is one push or one retain: valid after any panic elsewhere.
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a subscription of `owner` to `topic`, answering its id.
    fn register(
        books: &mut Books,
        owner: &Owner,
        topic: Topic,
        outlet: Arc<dyn Outlet>,
    ) -> Result<u64> {
        let held = books
            .entries
            .iter()
            .filter(|e| e.topic == topic && e.owner.webview == owner.webview)
            .count();
        if held >= MAX_PER_WEBVIEW {
            return Err(Error::ResourceExhausted {
                message: format!(
                    "too many {} subscriptions: this webview holds {held}, the limit; unsubscribe some first",
                    topic.name()
                ),
            });
        }
        books.next_id += 1;
        let id = books.next_id;
        books.entries.push(Entry {
            id,
            topic,
            owner: owner.clone(),
            outlet,
        });
        Ok(id)
    }

    /// Subscribes `outlet` to every status: it receives the current one (the fresher of what the
    /// sink last reported and `current()`) at once, then every change.
    pub(crate) fn subscribe_status(
        &self,
        owner: &Owner,
        outlet: Arc<dyn Outlet>,
        current: impl FnOnce() -> Status,
    ) -> Result<u64> {
        let mut books = self.books();
        // Registered first, then the current status read and sent, all under the lock that every
        // change is sent under: the first message is the current status, and every later change
        // follows it.
        let id = Self::register(&mut books, owner, Topic::Status, Arc::clone(&outlet))?;
        let now = current();
        let first = match &books.latest {
            Some(latest) if latest.seq > now.seq => latest.clone(),
            _ => now,
        };
        if !to_json(&first).is_some_and(|json| outlet.deliver(&json)) {
            books.entries.retain(|e| e.id != id);
        }
        Ok(id)
    }

    /// Subscribes `outlet` to every backend log record from now on.
    pub(crate) fn subscribe_logs(&self, owner: &Owner, outlet: Arc<dyn Outlet>) -> Result<u64> {
        Self::register(&mut self.books(), owner, Topic::Logs, outlet)
    }

    /// Ends the subscription `id` of `owner`'s webview; other webviews' ids and unknown ids are
    /// ignored.
    pub(crate) fn unsubscribe(&self, owner: &Owner, id: u64) {
        self.remove(|e| e.id == id && e.owner.webview == owner.webview);
    }

    /// The webview reloads: its subscriptions have no one to deliver to any more.
    pub(crate) fn webview_gone(&self, webview: &str) {
        self.remove(|e| e.owner.webview == webview);
    }

    /// The window was destroyed, with its webviews.
    pub(crate) fn window_gone(&self, window: &str) {
        self.remove(|e| e.owner.window == window);
    }

    /// How many subscriptions are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.books().entries.len()
    }

    fn remove(&self, gone: impl Fn(&Entry) -> bool) {
        let removed: Vec<Entry> = {
            let mut books = self.books();
            let (removed, kept) = std::mem::take(&mut books.entries)
                .into_iter()
                .partition(|e| gone(e));
            books.entries = kept;
            removed
        };
        // Dropping a channel tells its page that no more messages come; outside the lock.
        drop(removed);
    }

    /// The sink's status: remembered as the latest and sent to every status subscriber.
    pub(crate) fn publish_status(&self, status: &Status) {
        let mut books = self.books();
        if books.latest.as_ref().is_some_and(|l| l.seq >= status.seq) {
            return;
        }
        books.latest = Some(status.clone());
        Self::fan_out(&mut books, Topic::Status, status);
    }

    /// The sink's log record, sent to every log subscriber.
    pub(crate) fn publish_log(&self, record: &LogRecord) {
        Self::fan_out(&mut self.books(), Topic::Logs, record);
    }

    /// One serialization, one send per subscriber of `topic`; a failed send ends that subscription.
    fn fan_out(books: &mut Books, topic: Topic, value: &impl Serialize) {
        if !books.entries.iter().any(|e| e.topic == topic) {
            return;
        }
        let Some(json) = to_json(value) else { return };
        books
            .entries
            .retain(|e| e.topic != topic || e.outlet.deliver(&json));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{LogLevel, State};

    #[derive(Default)]
    struct Recorder {
        got: Mutex<Vec<serde_json::Value>>,
        gone: std::sync::atomic::AtomicBool,
    }

    impl Outlet for Recorder {
        fn deliver(&self, json: &str) -> bool {
            if self.gone.load(std::sync::atomic::Ordering::Relaxed) {
                return false;
            }
            self.got
                .lock()
                .unwrap()
                .push(serde_json::from_str(json).unwrap());
            true
        }
    }

    impl Recorder {
        fn seqs(&self) -> Vec<u64> {
            self.got
                .lock()
                .unwrap()
                .iter()
                .map(|v| v["seq"].as_u64().unwrap())
                .collect()
        }
    }

    fn owner(webview: &str) -> Owner {
        Owner {
            webview: webview.into(),
            window: format!("{webview}-window"),
        }
    }

    fn status(seq: u64, state: State) -> Status {
        Status {
            seq,
            state,
            pid: None,
            addr: None,
            version: None,
            restarts: 0,
            last_error: None,
            since_ms: 0,
            running_since_ms: None,
        }
    }

    fn record(seq: u64) -> LogRecord {
        LogRecord {
            seq,
            time: None,
            level: LogLevel::Info,
            message: format!("record {seq}"),
            fields: Default::default(),
            pid: None,
        }
    }

    #[test]
    fn a_status_subscriber_gets_the_current_status_first_then_every_change() {
        let subs = Subscriptions::default();
        subs.publish_status(&status(1, State::Starting));
        let outlet = Arc::new(Recorder::default());
        subs.subscribe_status(&owner("a"), outlet.clone(), || status(1, State::Starting))
            .unwrap();
        subs.publish_status(&status(2, State::Running));
        subs.publish_status(&status(3, State::Restarting));
        assert_eq!(outlet.seqs(), vec![1, 2, 3]);
        assert_eq!(outlet.got.lock().unwrap()[0]["state"], "starting");
    }

    #[test]
    fn the_first_status_is_the_fresher_of_the_sinks_and_the_supervisors() {
        let subs = Subscriptions::default();
        // The sink has reported seq 5, the supervisor's snapshot still says 4: 5 is sent.
        subs.publish_status(&status(5, State::Running));
        let outlet = Arc::new(Recorder::default());
        subs.subscribe_status(&owner("a"), outlet.clone(), || status(4, State::Starting))
            .unwrap();
        // Nothing reported yet: the supervisor's status (seq 0) is the current one.
        let fresh = Subscriptions::default();
        let other = Arc::new(Recorder::default());
        fresh
            .subscribe_status(&owner("a"), other.clone(), || status(0, State::Starting))
            .unwrap();
        assert_eq!(outlet.seqs(), vec![5]);
        assert_eq!(other.seqs(), vec![0]);
    }

    #[test]
    fn a_stale_or_repeated_status_is_never_sent() {
        let subs = Subscriptions::default();
        let outlet = Arc::new(Recorder::default());
        subs.subscribe_status(&owner("a"), outlet.clone(), || status(0, State::Starting))
            .unwrap();
        for seq in [1, 3, 2, 3, 4] {
            subs.publish_status(&status(seq, State::Running));
        }
        assert_eq!(outlet.seqs(), vec![0, 1, 3, 4]);
    }

    #[test]
    fn concurrent_subscribes_and_publishes_keep_every_subscriber_in_order() {
        let subs = Arc::new(Subscriptions::default());
        let latest = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let publisher = {
            let (subs, latest) = (Arc::clone(&subs), Arc::clone(&latest));
            std::thread::spawn(move || {
                for seq in 1..=2_000 {
                    // As the supervisor does: the sink first, then the snapshot.
                    subs.publish_status(&status(seq, State::Running));
                    latest.store(seq, std::sync::atomic::Ordering::SeqCst);
                }
            })
        };
        let mut outlets = Vec::new();
        for i in 0..20 {
            let outlet = Arc::new(Recorder::default());
            let latest = Arc::clone(&latest);
            subs.subscribe_status(&owner(&format!("w{i}")), outlet.clone(), || {
                status(
                    latest.load(std::sync::atomic::Ordering::SeqCst),
                    State::Running,
                )
            })
            .unwrap();
            outlets.push(outlet);
            std::thread::yield_now();
        }
        publisher.join().unwrap();
        for outlet in outlets {
            let seqs = outlet.seqs();
            // Strictly increasing by one after the first: no change missed, none repeated.
            assert!(
                seqs.windows(2).all(|w| w[1] == w[0] + 1),
                "{:?}",
                &seqs[..seqs.len().min(10)]
            );
            assert_eq!(seqs.last(), Some(&2_000));
        }
    }

    #[test]
    fn log_subscribers_get_new_records_until_they_unsubscribe() {
        let subs = Subscriptions::default();
        subs.publish_log(&record(1));
        let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let id_a = subs.subscribe_logs(&owner("a"), a.clone()).unwrap();
        let id_b = subs.subscribe_logs(&owner("b"), b.clone()).unwrap();
        subs.publish_log(&record(2));
        subs.publish_status(&status(1, State::Running));
        // Another webview cannot end a's subscription.
        subs.unsubscribe(&owner("b"), id_a);
        subs.publish_log(&record(3));
        subs.unsubscribe(&owner("a"), id_a);
        subs.publish_log(&record(4));
        assert_eq!(a.seqs(), vec![2, 3]);
        assert_eq!(b.seqs(), vec![2, 3, 4]);
        subs.unsubscribe(&owner("b"), id_b);
        assert_eq!(subs.len(), 0);
    }

    #[test]
    fn a_failed_send_ends_the_subscription_without_retrying() {
        let subs = Subscriptions::default();
        let outlet = Arc::new(Recorder::default());
        subs.subscribe_logs(&owner("a"), outlet.clone()).unwrap();
        subs.subscribe_status(&owner("a"), outlet.clone(), || status(0, State::Starting))
            .unwrap();
        outlet
            .gone
            .store(true, std::sync::atomic::Ordering::Relaxed);
        subs.publish_log(&record(1));
        assert_eq!(subs.len(), 1, "the log subscription ended");
        subs.publish_status(&status(1, State::Running));
        assert_eq!(subs.len(), 0, "the status subscription ended");
        // A channel that is gone at once is not kept either.
        subs.subscribe_status(&owner("a"), outlet.clone(), || status(1, State::Running))
            .unwrap();
        assert_eq!(subs.len(), 0);
    }

    #[test]
    fn a_reload_or_a_closed_window_ends_that_webviews_subscriptions() {
        let subs = Subscriptions::default();
        let outlet: Arc<dyn Outlet> = Arc::new(Recorder::default());
        subs.subscribe_logs(&owner("a"), outlet.clone()).unwrap();
        subs.subscribe_status(&owner("a"), outlet.clone(), || status(0, State::Starting))
            .unwrap();
        subs.subscribe_logs(&owner("b"), outlet.clone()).unwrap();
        subs.webview_gone("a");
        assert_eq!(subs.len(), 1);
        subs.window_gone("b-window");
        assert_eq!(subs.len(), 0);
    }

    #[test]
    fn a_webview_holds_a_bounded_number_of_subscriptions() {
        let subs = Subscriptions::default();
        let outlet: Arc<dyn Outlet> = Arc::new(Recorder::default());
        for _ in 0..MAX_PER_WEBVIEW {
            subs.subscribe_logs(&owner("a"), outlet.clone()).unwrap();
        }
        let error = subs
            .subscribe_logs(&owner("a"), outlet.clone())
            .unwrap_err();
        assert!(matches!(error, Error::ResourceExhausted { .. }), "{error}");
        // Per kind and per webview.
        subs.subscribe_status(&owner("a"), outlet.clone(), || status(0, State::Starting))
            .unwrap();
        subs.subscribe_logs(&owner("b"), outlet).unwrap();
    }
}
