//! The registry of the front end's cancellable calls and open streams, per webview.
//!
//! A call or stream belongs to the webview that opened it (docs/call-path.md, "Lifetime"): `cancel`
//! and `credit` reach it by its id within that webview only, and everything a webview opened is
//! cancelled when it reloads or its window is destroyed. This module only keeps the books and
//! flips the switches; the unary path and the stream path (src/stream.rs) act on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::Notify;

use crate::error::{Error, Result};

/// Longest call id accepted.
const MAX_CALL_ID_LEN: usize = 64;

/// Checks a call id: 1 to 64 characters of `[A-Za-z0-9_-]`.
pub(crate) fn parse_call_id(id: &str) -> Result<String> {
    if id.is_empty()
        || id.len() > MAX_CALL_ID_LEN
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::InvalidArgument {
            message: format!(
                "call id {:?} is invalid: use 1 to {MAX_CALL_ID_LEN} characters of A-Z, a-z, 0-9, _ and -",
                id.chars().take(80).collect::<String>()
            ),
        });
    }
    Ok(id.to_owned())
}

/// Why a call was cancelled; it decides whether anyone is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelReason {
    /// `cancel` (or a Rust caller): the caller hears CANCELLED.
    Caller,
    /// The webview reloaded or closed: there is no one left to tell.
    OwnerGone,
}

/// What a stream (or a unary call) waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// There is credit to take a message with.
    Credit,
    /// Stop now.
    Cancelled(CancelReason),
}

/// The switches of one call: its credit (streams only) and whether it is cancelled.
///
/// Only the call's own task waits on it, so one `Notify` with its stored permit is enough: a
/// wake-up between the task's check and its wait is never lost.
#[derive(Debug, Default)]
pub(crate) struct Control {
    state: Mutex<ControlState>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct ControlState {
    credit: u64,
    /// Bytes the stream may still take, when the consumer bounds bytes too (`None`: messages only).
    /// A message is taken while any is left, so the bytes in flight exceed the credit by less than
    /// one message.
    bytes: Option<u64>,
    cancelled: Option<CancelReason>,
}

impl ControlState {
    fn can_take(&self) -> bool {
        self.credit > 0 && self.bytes.is_none_or(|left| left > 0)
    }
}

impl Control {
    pub(crate) fn new(credit: u32) -> Arc<Self> {
        Self::with_bytes(credit, None)
    }

    /// A control whose stream takes messages while it holds both message and byte credit.
    pub(crate) fn with_bytes(credit: u32, bytes: Option<u32>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(ControlState {
                credit: u64::from(credit),
                bytes: bytes.map(u64::from),
                cancelled: None,
            }),
            wake: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, ControlState> {
        // The state is two plain fields, valid after any panic elsewhere.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets the stream take `n` more messages (and `bytes` more bytes, when it counts bytes).
    pub(crate) fn add_credit(&self, n: u32, bytes: Option<u32>) {
        let mut state = self.state();
        state.credit = state.credit.saturating_add(u64::from(n));
        if let (Some(left), Some(more)) = (state.bytes.as_mut(), bytes) {
            *left = left.saturating_add(u64::from(more));
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Cancels the call; the first reason sticks.
    pub(crate) fn cancel(&self, reason: CancelReason) {
        let mut state = self.state();
        state.cancelled.get_or_insert(reason);
        drop(state);
        self.wake.notify_one();
    }

    /// Whether there is credit for one more message (without spending it).
    pub(crate) fn has_credit(&self) -> bool {
        let state = self.state();
        state.cancelled.is_none() && state.can_take()
    }

    /// Spends the credit of one message of `len` bytes taken from the stream.
    pub(crate) fn spend(&self, len: usize) {
        let mut state = self.state();
        state.credit = state.credit.saturating_sub(1);
        if let Some(left) = state.bytes.as_mut() {
            *left = left.saturating_sub(u64::try_from(len).unwrap_or(u64::MAX));
        }
    }

    /// Resolves when the call is cancelled, or (with `need_credit`) when there is credit.
    pub(crate) async fn wait(&self, need_credit: bool) -> Signal {
        loop {
            {
                let state = self.state();
                if let Some(reason) = state.cancelled {
                    return Signal::Cancelled(reason);
                }
                if need_credit && state.can_take() {
                    return Signal::Credit;
                }
            }
            self.wake.notified().await;
        }
    }

    /// Resolves with the reason once the call is cancelled.
    pub(crate) async fn cancelled(&self) -> CancelReason {
        loop {
            if let Signal::Cancelled(reason) = self.wait(false).await {
                return reason;
            }
        }
    }
}

/// Who opened a call: the webview, and the window it lives in (windows are what Tauri reports
/// as destroyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) webview: String,
    pub(crate) window: String,
}

struct Entry {
    window: String,
    control: Arc<Control>,
}

/// Every registered call, by webview label, then id.
#[derive(Default)]
pub(crate) struct Calls {
    entries: Mutex<HashMap<String, HashMap<String, Entry>>>,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls").field("open", &self.open()).finish()
    }
}

impl Calls {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Entry>>> {
        // Maps of plain values, consistent after any panic elsewhere.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers call `id` of `owner`; an id still in use by that webview is refused.
    pub(crate) fn register(
        self: &Arc<Self>,
        owner: &Owner,
        id: &str,
        control: Arc<Control>,
    ) -> Result<Registration> {
        let mut entries = self.entries();
        let calls = entries.entry(owner.webview.clone()).or_default();
        if calls.contains_key(id) {
            return Err(Error::InvalidArgument {
                message: format!(
                    "call id {id:?} is already in use by an open call of this webview; ids must be unique per webview"
                ),
            });
        }
        calls.insert(
            id.to_owned(),
            Entry {
                window: owner.window.clone(),
                control: Arc::clone(&control),
            },
        );
        Ok(Registration {
            calls: Arc::downgrade(self),
            webview: owner.webview.clone(),
            id: id.to_owned(),
            control,
        })
    }

    /// Adds credit to stream `id` of `webview`; unknown ids are ignored (the stream may have ended).
    pub(crate) fn credit(&self, webview: &str, id: &str, n: u32, bytes: Option<u32>) {
        if let Some(entry) = self.entries().get(webview).and_then(|calls| calls.get(id)) {
            entry.control.add_credit(n, bytes);
        }
    }

    /// Cancels call `id` of `webview`; unknown ids are ignored.
    pub(crate) fn cancel(&self, webview: &str, id: &str) {
        let removed = self
            .entries()
            .get_mut(webview)
            .and_then(|calls| calls.remove(id));
        if let Some(entry) = removed {
            log::debug!("anysync: {webview} cancelled call {id:?}");
            entry.control.cancel(CancelReason::Caller);
        }
    }

    /// Cancels everything `webview` opened (it reloads or closed). The entries are removed at
    /// once, so the reloaded page may reuse its ids straight away.
    pub(crate) fn webview_gone(&self, webview: &str) {
        let removed = self.entries().remove(webview);
        Self::cancel_all(webview, removed.into_iter().flat_map(HashMap::into_values));
    }

    /// Cancels everything the webviews of `window` opened (the window was destroyed).
    pub(crate) fn window_gone(&self, window: &str) {
        let mut removed = Vec::new();
        let mut entries = self.entries();
        for calls in entries.values_mut() {
            let ids: Vec<String> = calls
                .iter()
                .filter(|(_, e)| e.window == window)
                .map(|(id, _)| id.clone())
                .collect();
            removed.extend(ids.into_iter().filter_map(|id| calls.remove(&id)));
        }
        entries.retain(|_, calls| !calls.is_empty());
        drop(entries);
        Self::cancel_all(window, removed);
    }

    fn cancel_all(owner: &str, entries: impl IntoIterator<Item = Entry>) {
        let mut count = 0;
        for entry in entries {
            entry.control.cancel(CancelReason::OwnerGone);
            count += 1;
        }
        if count > 0 {
            log::info!(
                "anysync: {owner} went away; cancelled its {count} open call(s) and stream(s)"
            );
        }
    }

    /// How many calls and streams are registered.
    pub(crate) fn open(&self) -> usize {
        self.entries().values().map(HashMap::len).sum()
    }
}

/// A call's place in the registry, held by the call itself; dropping it (the call ended) removes it.
pub(crate) struct Registration {
    calls: Weak<Calls>,
    webview: String,
    id: String,
    control: Arc<Control>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(calls) = self.calls.upgrade() else {
            return;
        };
        let mut entries = calls.entries();
        if let Some(webview_calls) = entries.get_mut(&self.webview) {
            // Only our own entry: after a cancel the id may already belong to a newer call.
            if webview_calls
                .get(&self.id)
                .is_some_and(|e| Arc::ptr_eq(&e.control, &self.control))
            {
                webview_calls.remove(&self.id);
            }
            if webview_calls.is_empty() {
                entries.remove(&self.webview);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(webview: &str, window: &str) -> Owner {
        Owner {
            webview: webview.into(),
            window: window.into(),
        }
    }

    #[test]
    fn call_ids() {
        assert!(parse_call_id("c-1_A").is_ok());
        assert!(parse_call_id(&"x".repeat(64)).is_ok());
        for bad in ["", "a b", "ä", "a/b", &"x".repeat(65)] {
            assert_eq!(
                parse_call_id(bad).expect_err(bad).code(),
                "INVALID_ARGUMENT"
            );
        }
    }

    #[test]
    fn byte_credit_stops_a_stream_once_spent_and_message_credit_still_counts() {
        let control = Control::with_bytes(10, Some(100));
        assert!(control.has_credit());
        control.spend(60);
        assert!(
            control.has_credit(),
            "40 bytes left: the next message may still be taken"
        );
        control.spend(60);
        assert!(
            !control.has_credit(),
            "no bytes left: nothing more is taken"
        );
        control.add_credit(1, Some(50));
        assert!(control.has_credit());
        let messages_only = Control::new(1);
        messages_only.spend(1 << 20);
        assert!(
            !messages_only.has_credit(),
            "message credit alone bounds it"
        );
        messages_only.add_credit(1, Some(1));
        assert!(
            messages_only.has_credit(),
            "byte grants are ignored without a byte budget"
        );
    }

    #[tokio::test]
    async fn cancel_credit_and_cleanup_per_webview() {
        let calls = Arc::new(Calls::default());
        let main = owner("main", "main");
        let a = Control::new(0);
        let reg_a = calls.register(&main, "a", Arc::clone(&a)).expect("a");
        assert!(
            calls.register(&main, "a", Control::new(0)).is_err(),
            "duplicate id"
        );
        let other = owner("other", "w2");
        let b = Control::new(1);
        let _reg_b = calls
            .register(&other, "a", Arc::clone(&b))
            .expect("same id, other webview");
        assert_eq!(calls.open(), 2);

        calls.credit("main", "a", 3, None);
        assert_eq!(a.wait(true).await, Signal::Credit);
        calls.credit("main", "unknown", 3, None);
        calls.cancel("other", "unknown");

        calls.cancel("main", "a");
        assert_eq!(a.cancelled().await, CancelReason::Caller);
        assert!(!b.has_credit() || b.state().cancelled.is_none());
        // The id is free at once; the old registration's drop leaves the new entry alone.
        let _reg_a2 = calls.register(&main, "a", Control::new(0)).expect("reuse");
        drop(reg_a);
        assert_eq!(calls.open(), 2);

        calls.window_gone("w2");
        assert_eq!(b.cancelled().await, CancelReason::OwnerGone);
        calls.webview_gone("main");
        assert_eq!(calls.open(), 0);
    }
}
