//! The sidecar's stderr, turned into log records: each line parsed (slog JSON), forwarded to the `log`
//! facade under target `anysync::backend`, kept in a bounded ring and emitted to the front end.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::models::{LogLevel, LogRecord};
use crate::supervisor::EventSink;

/// The `log` target of every backend record, so apps can filter it (e.g. in tauri-plugin-log).
pub const LOG_TARGET: &str = "anysync::backend";

/// Longest stderr line kept whole; longer lines are cut so one runaway line cannot eat memory.
pub(crate) const MAX_LOG_LINE: usize = 64 * 1024;

/// The most the ring keeps, in bytes of the lines it holds (plus a fixed cost per record), whatever
/// `logBuffer` allows in records: 100 000 records of 64 KiB would otherwise be 6 GiB.
pub(crate) const MAX_RING_BYTES: usize = 4 * 1024 * 1024;
/// What a record costs beyond its text (its struct, sequence number, level).
const RECORD_OVERHEAD: usize = 64;

/// Records the front end may receive at once, after a quiet spell.
pub(crate) const EMIT_BURST: u32 = 500;
/// Records per second the front end receives in a flood; the rest are dropped from the event
/// stream (not from the ring or the `log` facade) and counted in one record when emission resumes.
pub(crate) const EMIT_PER_SECOND: u32 = 200;

/// Parses one stderr line. JSON objects from `log/slog` become structured records; anything else is
/// kept verbatim as the message, never dropped.
pub fn parse_log_line(line: &str, seq: u64, pid: Option<u32>) -> LogRecord {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Ok(serde_json::Value::Object(mut fields)) =
        serde_json::from_str::<serde_json::Value>(line)
    {
        let message = match fields.remove("msg") {
            Some(serde_json::Value::String(text)) => text,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        // `level` and `time` are taken only as slog writes them, strings; any other value stays an
        // attribute rather than vanish.
        let level = match take_string(&mut fields, "level") {
            Some(name) => parse_level(&name),
            None => LogLevel::Info,
        };
        let time = take_string(&mut fields, "time");
        return LogRecord {
            seq,
            time,
            level,
            message,
            fields,
            pid,
        };
    }
    LogRecord {
        seq,
        time: None,
        level: LogLevel::Info,
        message: line.to_owned(),
        fields: Default::default(),
        pid,
    }
}

/// Removes and returns `fields[key]` if it is a string; leaves any other value in place.
fn take_string(
    fields: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<String> {
    match fields.get(key) {
        Some(serde_json::Value::String(_)) => match fields.remove(key) {
            Some(serde_json::Value::String(text)) => Some(text),
            _ => None,
        },
        _ => None,
    }
}

/// slog's level names, including offsets such as `"INFO+2"` and `"DEBUG-4"`.
fn parse_level(name: &str) -> LogLevel {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("ERROR") {
        LogLevel::Error
    } else if upper.starts_with("WARN") {
        LogLevel::Warn
    } else if upper.starts_with("DEBUG") || upper.starts_with("TRACE") {
        LogLevel::Debug
    } else {
        LogLevel::Info
    }
}

/// Reads one line of at most `max` bytes (the rest of a longer line is skipped), lossily decoded.
/// `None` at end of stream.
pub(crate) async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut saw_any = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(saw_any.then(|| String::from_utf8_lossy(&line).into_owned()));
        }
        saw_any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(end) => (&buf[..end], Some(end + 1)),
            None => (buf, None),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let consumed = done.unwrap_or(buf.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

/// The plugin's memory of recent backend logs, shared by every sidecar incarnation.
pub(crate) struct LogBook {
    ring: Mutex<Ring>,
    capacity: usize,
    next_seq: AtomicU64,
    sink: Arc<dyn EventSink>,
    emission: Mutex<Emission>,
}

/// The retained records with what each costs, bounded by count and by [`MAX_RING_BYTES`].
#[derive(Default)]
struct Ring {
    records: VecDeque<(LogRecord, usize)>,
    bytes: usize,
}

/// A token bucket over the records sent to the sink (the front end).
struct Emission {
    tokens: f64,
    last: Instant,
    dropped: u64,
}

impl Emission {
    /// Whether one more record may go out now; counts it as dropped if not.
    fn admit(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * f64::from(EMIT_PER_SECOND)).min(f64::from(EMIT_BURST));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

impl LogBook {
    pub(crate) fn new(capacity: usize, sink: Arc<dyn EventSink>) -> Self {
        Self {
            ring: Mutex::new(Ring {
                records: VecDeque::with_capacity(capacity.min(1024)),
                bytes: 0,
            }),
            capacity,
            next_seq: AtomicU64::new(1),
            sink,
            emission: Mutex::new(Emission {
                tokens: f64::from(EMIT_BURST),
                last: Instant::now(),
                dropped: 0,
            }),
        }
    }

    /// Records one stderr line of the sidecar `pid`: to `log`, the ring and the front end.
    pub(crate) fn record_line(&self, line: &str, pid: Option<u32>) {
        let record = parse_log_line(line, self.next_seq.fetch_add(1, Ordering::Relaxed), pid);
        self.record_costing(record, line.len());
    }

    /// Records a line the plugin itself writes about the backend (e.g. stray stdout output).
    pub(crate) fn record(&self, record: LogRecord) {
        let text = record.message.len();
        self.record_costing(record, text);
    }

    /// Records `record`, whose text is `text` bytes long.
    fn record_costing(&self, record: LogRecord, text: usize) {
        contained(|| forward_to_log(&record));
        let cost = text + RECORD_OVERHEAD;
        {
            let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            while !ring.records.is_empty()
                && (ring.records.len() >= self.capacity || ring.bytes + cost > MAX_RING_BYTES)
            {
                if let Some((_, freed)) = ring.records.pop_front() {
                    ring.bytes -= freed;
                }
            }
            ring.bytes += cost;
            ring.records.push_back((record.clone(), cost));
        }
        let dropped = {
            let mut emission = self.emission.lock().unwrap_or_else(PoisonError::into_inner);
            if !emission.admit(Instant::now()) {
                return;
            }
            std::mem::take(&mut emission.dropped)
        };
        if dropped > 0 {
            let notice = self.dropped_notice(dropped);
            contained(|| self.sink.log(&notice));
        }
        contained(|| self.sink.log(&record));
    }

    /// Tells the front end how many records it did not get, if any, without waiting for a later
    /// record to carry the count (the stderr reader calls it every second and at the end).
    pub(crate) fn flush_dropped(&self) {
        let dropped = std::mem::take(
            &mut self
                .emission
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .dropped,
        );
        if dropped > 0 {
            let notice = self.dropped_notice(dropped);
            contained(|| self.sink.log(&notice));
        }
    }

    /// The record that tells the front end how many it did not get.
    fn dropped_notice(&self, dropped: u64) -> LogRecord {
        let mut fields = serde_json::Map::new();
        fields.insert("dropped".into(), dropped.into());
        LogRecord {
            seq: self.next_seq(),
            time: None,
            level: LogLevel::Warn,
            message: format!(
                "{dropped} backend log record(s) were not sent to the front end (more than {EMIT_PER_SECOND} per second); logs() has the most recent ones"
            ),
            fields,
            pid: None,
        }
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The retained records, oldest first.
    pub(crate) fn recent(&self) -> Vec<LogRecord> {
        self.ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .records
            .iter()
            .map(|(record, _)| record.clone())
            .collect()
    }

    /// The last `n` messages of one process, oldest first: the context of a failed start.
    pub(crate) fn tail_of(&self, pid: u32, n: usize) -> Vec<String> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tail: Vec<String> = ring
            .records
            .iter()
            .map(|(record, _)| record)
            .rev()
            .filter(|r| r.pid == Some(pid))
            .take(n)
            .map(tail_line)
            .collect();
        tail.reverse();
        tail
    }
}

/// Runs `f` and contains a panic in it.
///
/// For every call from the supervisor's tasks into code the plugin does not control: the app's
/// logger (fern, behind tauri-plugin-log, panics when a write fails and its fallback to stderr fails
/// too, e.g. on a full disk) and the app's [`EventSink`]. Uncontained, such a panic would end the
/// task that supervises the backend, or the one that drains its stderr, and with it the backend.
/// The failure is not reported: the reporting channels are what failed. (An app built with
/// `panic = "abort"` ends at the panic whatever the plugin does.)
pub(crate) fn contained(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
}

/// A record as one line of a start-up error: slog puts the cause in an `error` attribute, and the
/// message alone ("backend failed") would hide it.
fn tail_line(record: &LogRecord) -> String {
    match record.fields.get("error").and_then(|e| e.as_str()) {
        Some(error) => format!("{}: {error}", record.message),
        None => record.message.clone(),
    }
}

fn forward_to_log(record: &LogRecord) {
    let level = log::Level::from(record.level);
    if !log::log_enabled!(target: LOG_TARGET, level) {
        return;
    }
    if record.fields.is_empty() {
        log::log!(target: LOG_TARGET, level, "{}", record.message);
    } else {
        let fields = serde_json::Value::Object(record.fields.clone());
        log::log!(target: LOG_TARGET, level, "{} {}", record.message, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slog_json() {
        let rec = parse_log_line(
            r#"{"time":"2026-11-26T10:00:00Z","level":"WARN","msg":"slow call","method":"/x","ms":12}"#,
            7,
            Some(42),
        );
        assert_eq!(
            (rec.seq, rec.level, rec.message.as_str()),
            (7, LogLevel::Warn, "slow call")
        );
        assert_eq!(rec.time.as_deref(), Some("2026-11-26T10:00:00Z"));
        assert_eq!(rec.fields["method"], "/x");
        assert_eq!(rec.fields["ms"], 12);
        assert!(!rec.fields.contains_key("msg") && !rec.fields.contains_key("level"));
        assert_eq!(rec.pid, Some(42));
    }

    #[test]
    fn keeps_non_json_lines_verbatim() {
        for line in [
            "panic: runtime error: index out of range",
            "[1, 2]",
            "\"just a string\"",
            "",
        ] {
            let rec = parse_log_line(line, 1, None);
            assert_eq!(rec.message, line);
            assert_eq!(rec.level, LogLevel::Info);
        }
    }

    #[test]
    fn maps_slog_levels_with_offsets() {
        assert_eq!(parse_level("DEBUG-4"), LogLevel::Debug);
        assert_eq!(parse_level("INFO+2"), LogLevel::Info);
        assert_eq!(parse_level("ERROR+8"), LogLevel::Error);
        assert_eq!(parse_level("warn"), LogLevel::Warn);
    }

    #[tokio::test]
    async fn bounded_lines_are_cut_not_buffered_whole() {
        let input = format!("short\n{}\nlast-without-newline", "x".repeat(10_000));
        let mut reader = tokio::io::BufReader::with_capacity(64, input.as_bytes());
        assert_eq!(
            read_bounded_line(&mut reader, 100)
                .await
                .expect("io")
                .as_deref(),
            Some("short")
        );
        assert_eq!(
            read_bounded_line(&mut reader, 100)
                .await
                .expect("io")
                .map(|l| l.len()),
            Some(100)
        );
        assert_eq!(
            read_bounded_line(&mut reader, 100)
                .await
                .expect("io")
                .as_deref(),
            Some("last-without-newline")
        );
        assert_eq!(read_bounded_line(&mut reader, 100).await.expect("io"), None);
    }

    #[test]
    fn ring_is_bounded_and_sequenced() {
        let book = LogBook::new(3, Arc::new(()));
        for i in 0..5 {
            book.record_line(&format!("line {i}"), Some(9));
        }
        let recent = book.recent();
        assert_eq!(
            recent
                .iter()
                .map(|r| r.message.as_str())
                .collect::<Vec<_>>(),
            ["line 2", "line 3", "line 4"]
        );
        assert_eq!(recent.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(book.tail_of(9, 2), ["line 3", "line 4"]);
    }

    #[test]
    fn ring_is_bounded_in_bytes_too() {
        let book = LogBook::new(100_000, Arc::new(()));
        let line = "x".repeat(MAX_LOG_LINE);
        for _ in 0..200 {
            book.record_line(&line, Some(1));
        }
        let kept = book.recent();
        let bytes: usize = kept.iter().map(|r| r.message.len()).sum();
        assert!(bytes <= MAX_RING_BYTES, "{bytes} bytes kept");
        assert!(kept.len() >= 60, "as many as fit are kept: {}", kept.len());
        // Small records are still kept by count.
        book.record_line("small", Some(1));
        assert_eq!(
            book.recent().last().map(|r| r.message.as_str()),
            Some("small")
        );
    }

    #[derive(Default)]
    struct Counting(Mutex<Vec<LogRecord>>);

    impl EventSink for Counting {
        fn log(&self, record: &LogRecord) {
            self.0.lock().expect("lock").push(record.clone());
        }
    }

    #[test]
    fn a_flood_reaches_the_front_end_rate_limited_with_a_count() {
        let sink = Arc::new(Counting::default());
        let book = LogBook::new(100_000, sink.clone());
        let started = std::time::Instant::now();
        for i in 0..10_000 {
            book.record_line(&format!("flood {i}"), Some(1));
        }
        let took = started.elapsed().as_secs_f64();
        assert_eq!(book.recent().len(), 10_000, "the ring keeps them all");
        // Once the bucket refills, the next record is preceded by how many were dropped.
        std::thread::sleep(std::time::Duration::from_millis(50));
        book.record_line("after", Some(1));
        let records = sink.0.lock().expect("lock");
        let is_notice = |r: &&LogRecord| r.fields.contains_key("dropped") && r.pid.is_none();
        let forwarded = records.iter().filter(|r| !is_notice(r)).count();
        let dropped: u64 = records
            .iter()
            .filter(is_notice)
            .map(|r| r.fields["dropped"].as_u64().expect("count"))
            .sum();
        let allowed = f64::from(EMIT_BURST) + (took + 0.05) * f64::from(EMIT_PER_SECOND) + 2.0;
        assert!(
            (forwarded as f64) <= allowed,
            "{forwarded} of 10001 records forwarded, at most {allowed} allowed"
        );
        assert!(dropped > 0);
        assert_eq!(
            forwarded as u64 + dropped,
            10_001,
            "every record is either forwarded or counted"
        );
        assert_eq!(records[records.len() - 1].message, "after");
        assert!(is_notice(&&records[records.len() - 2]));
    }

    #[test]
    fn the_drop_count_is_flushed_without_a_later_record() {
        let sink = Arc::new(Counting::default());
        let book = LogBook::new(100_000, sink.clone());
        for i in 0..(EMIT_BURST + 100) {
            book.record_line(&format!("flood {i}"), Some(1));
        }
        book.flush_dropped();
        let records = sink.0.lock().expect("lock").clone();
        let last = records.last().expect("records");
        assert!(
            last.fields["dropped"].as_u64().is_some_and(|n| n > 0),
            "{last:?}"
        );
        book.flush_dropped();
        assert_eq!(sink.0.lock().expect("lock").len(), records.len(), "once");
    }
}
