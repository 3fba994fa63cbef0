//! Feeding a child's stdin and draining its stdout and stderr, for both transports.
//!
//! The three streams are driven concurrently: a program that writes a lot before it has read
//! all of its stdin would otherwise block on a full pipe while we block writing to it. Output
//! is always drained to the end (so the program never blocks) but only the last `OUTPUT_CAP`
//! bytes of each stream are kept: the end of stderr is what explains a failure. This file
//! must not decide what a status means.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use super::Output;

/// Bytes kept of each of stdout and stderr (the tail; the head is dropped and marked).
pub const OUTPUT_CAP: usize = 1 << 20;

/// One captured stream.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// The `Output` of a command that ended with `status` after writing `out` and `err`.
pub(crate) fn output(status: Option<i32>, mut out: Captured, mut err: Captured) -> Output {
    // A drain cut short (a timeout, or the end of the drain after exit) may hold up to twice
    // the cap.
    trim(&mut out, OUTPUT_CAP);
    trim(&mut err, OUTPUT_CAP);
    Output {
        status,
        stdout: out.bytes,
        stderr: err.bytes,
        stdout_truncated: out.truncated,
        stderr_truncated: err.truncated,
    }
}

/// Read `reader` to its end, keeping the last `cap` bytes.
///
/// Bytes read so far are kept in `into` even when an error ends the read, so that a caller
/// which gives up early (a timeout) still has the partial output.
pub(crate) async fn drain_tail<R: AsyncRead + Unpin>(
    reader: Option<R>,
    cap: usize,
    into: &mut Captured,
) -> io::Result<()> {
    drain_watching(reader, cap, into, None, None).await
}

/// A text the command's wrapper writes to stderr when the command has exited (see
/// `wrap::with_markers`), and where to say that it was seen.
pub(crate) struct EndMarker<'a> {
    pub text: &'a [u8],
    pub seen: oneshot::Sender<()>,
}

/// The start record the command's wrapper writes to stderr before the command runs (see
/// `wrap::with_markers`): its one-time prefix, and what to do with the text between the
/// prefix and the closing `]`.
pub(crate) struct StartRecord<'a> {
    pub prefix: &'a [u8],
    pub seen: &'a mut (dyn FnMut(&str) + Send),
}

/// How far into stderr a start record is looked for. It is the wrapper's first write; only
/// something the login shell prints could come before it.
const START_WINDOW: usize = 64 * 1024;

/// The longest start record (five numbers and a boot id, with room to spare).
const START_RECORD_MAX: usize = 256;

/// `drain_tail`, and when `end` is given: cut its text out of the stream and report it;
/// when `start` is given, the same for the start record.
async fn drain_watching<R: AsyncRead + Unpin>(
    reader: Option<R>,
    cap: usize,
    into: &mut Captured,
    mut end: Option<EndMarker<'_>>,
    mut start: Option<StartRecord<'_>>,
) -> io::Result<()> {
    let Some(mut reader) = reader else {
        return Ok(());
    };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        let mut before = into.bytes.len();
        into.bytes.extend_from_slice(&chunk[..n]);
        total = total.saturating_add(n);
        if let Some(record) = start.as_mut() {
            // Looked for in the whole buffer: within the window it was never trimmed.
            match cut_record(&mut into.bytes, record.prefix) {
                Cut::Found { at, text } => {
                    (record.seen)(&text);
                    before = before.min(at);
                    start = None;
                }
                Cut::Incomplete => {}
                Cut::Absent if total <= START_WINDOW => {}
                // Not there (a host without /proc), or not a record: stop looking.
                Cut::Absent | Cut::Malformed => start = None,
            }
        }
        if let Some(marker) = end.take_if(|m| cut_marker(&mut into.bytes, before, m.text)) {
            // The receiver may have stopped listening (output ended first): nothing to tell.
            let _ = marker.seen.send(());
        }
        // Trim only when twice over the cap, so a long stream costs amortised O(1) per byte.
        // The cap is far above a marker's length, so a marker is never trimmed half away.
        if into.bytes.len() > cap.saturating_mul(2) {
            trim(into, cap);
        }
    }
    trim(into, cap);
    Ok(())
}

enum Cut {
    /// The record began at `at` (and was removed); `text` is what it held.
    Found {
        at: usize,
        text: String,
    },
    /// Its prefix is there, its end not yet.
    Incomplete,
    Absent,
    /// Its prefix is followed by something that is no record.
    Malformed,
}

/// Remove the first `prefix…]` from `bytes`.
fn cut_record(bytes: &mut Vec<u8>, prefix: &[u8]) -> Cut {
    if prefix.is_empty() {
        return Cut::Absent;
    }
    let Some(at) = bytes.windows(prefix.len()).position(|w| w == prefix) else {
        return Cut::Absent;
    };
    let body = &bytes[at + prefix.len()..];
    let Some(close) = body.iter().take(START_RECORD_MAX).position(|&b| b == b']') else {
        return if body.len() >= START_RECORD_MAX {
            Cut::Malformed
        } else {
            Cut::Incomplete
        };
    };
    let Ok(text) = std::str::from_utf8(&body[..close]).map(str::to_owned) else {
        return Cut::Malformed;
    };
    bytes.drain(at..at + prefix.len() + close + 1);
    Cut::Found { at, text }
}

/// Remove `marker` from `bytes` if it ends at or after `new_from` (it may have begun in an
/// earlier chunk); true if it was found.
fn cut_marker(bytes: &mut Vec<u8>, new_from: usize, marker: &[u8]) -> bool {
    if marker.is_empty() {
        return false;
    }
    let from = new_from.saturating_sub(marker.len() - 1);
    let Some(at) = bytes[from..]
        .windows(marker.len())
        .position(|w| w == marker)
    else {
        return false;
    };
    bytes.drain(from + at..from + at + marker.len());
    true
}

fn trim(into: &mut Captured, cap: usize) {
    if into.bytes.len() > cap {
        let excess = into.bytes.len() - cap;
        into.bytes.drain(..excess);
        into.truncated = true;
    }
}

/// Write `bytes` to the child's stdin, then close it so the child sees end-of-file.
///
/// A child that exits (or closes stdin) without reading everything is not an error of ours:
/// its exit status tells what happened, so a broken pipe is ignored.
pub(crate) async fn feed<W: AsyncWrite + Unpin>(
    writer: Option<W>,
    bytes: Option<&[u8]>,
) -> io::Result<()> {
    let (Some(mut writer), Some(bytes)) = (writer, bytes) else {
        return Ok(());
    };
    let written = async {
        writer.write_all(bytes).await?;
        writer.shutdown().await
    }
    .await;
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// How long output is still collected after the command exited, when its pipes stay open.
///
/// A command's end is its exit: a program that leaves a daemon behind (`sleep 300 & exit
/// 0`, a service's start script) ends when it exits, even though the daemon inherited its
/// stdout and stderr and keeps them open. What the program itself wrote before it exited is
/// already in the pipes (or, over SSH, on its way), so a short drain collects it.
pub(crate) const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(250);

/// How the end of a command is learnt.
pub(crate) enum End<'a, F> {
    /// Its wait, which may run alongside the output (a local child).
    Wait(F),
    /// Its wait may only be polled once the output is collected, because it cuts the output
    /// short: a mux session's wait ends the session as soon as the exit status arrives, and
    /// the master then discards output it has not yet forwarded (seen in tests: a few KiB of
    /// a large output lost about once in twenty). The exit is learnt from `marker`, written
    /// to stderr by the command's wrapper after the command exited, instead.
    WaitAfterMarker { wait: F, marker: &'a [u8] },
}

/// Feed stdin and drain stdout and stderr until the output ends, or until
/// `DRAIN_AFTER_EXIT` after the command exited if it does not (a daemon the command started
/// holds the pipes); then the command's status. Whatever such a daemon writes later is not
/// read (our ends of the pipes are closed), and the daemon is left running: starting it is
/// what the user asked for. `start`: a start record to cut out of stderr and report.
#[allow(clippy::too_many_arguments)] // the three streams, their buffers, and two watches
pub(crate) async fn exchange_then_wait<W, O, E, F>(
    stdin: Option<W>,
    stdin_bytes: Option<&[u8]>,
    stdout: Option<O>,
    stderr: Option<E>,
    out: &mut Captured,
    err: &mut Captured,
    end: End<'_, F>,
    start: Option<StartRecord<'_>>,
) -> (io::Result<()>, F::Output)
where
    W: AsyncWrite + Unpin,
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
    F: std::future::Future,
{
    let (wait, marker) = match end {
        End::Wait(wait) => (wait, None),
        End::WaitAfterMarker { wait, marker } => (wait, Some(marker)),
    };
    let (seen_tx, seen_rx) = oneshot::channel();
    let watch = marker.map(|text| EndMarker {
        text,
        seen: seen_tx,
    });
    let streams = async {
        let (fed, o, e) = tokio::join!(
            feed(stdin, stdin_bytes),
            drain_tail(stdout, OUTPUT_CAP, out),
            drain_watching(stderr, OUTPUT_CAP, err, watch, start),
        );
        fed.and(o).and(e)
    };
    tokio::pin!(streams, wait);
    if marker.is_some() {
        let io = tokio::select! {
            io = &mut streams => io,
            Ok(()) = seen_rx => rest_of(streams).await,
        };
        (io, wait.await)
    } else {
        tokio::select! {
            io = &mut streams => (io, wait.await),
            status = &mut wait => (rest_of(streams).await, status),
        }
    }
}

/// What the output still brings within `DRAIN_AFTER_EXIT`; cut there, it is not an error.
async fn rest_of<S: std::future::Future<Output = io::Result<()>>>(
    streams: std::pin::Pin<&mut S>,
) -> io::Result<()> {
    tokio::time::timeout(DRAIN_AFTER_EXIT, streams)
        .await
        .unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_marker_is_found_and_cut_even_across_reads() {
        let marker = b"[drplan-exit:00ff]";
        let mut bytes = b"err\n[drplan-ex".to_vec();
        assert!(!cut_marker(&mut bytes, 0, marker));
        let before = bytes.len();
        bytes.extend_from_slice(b"it:00ff]late");
        assert!(cut_marker(&mut bytes, before, marker));
        assert_eq!(bytes, b"err\nlate");
        assert!(!cut_marker(&mut bytes, 0, marker), "cut once");
    }

    #[test]
    fn a_start_record_is_cut_once_complete() {
        let mut bytes = b"motd\n[S 1 2 3 b".to_vec();
        assert!(matches!(cut_record(&mut bytes, b"[S"), Cut::Incomplete));
        bytes.extend_from_slice(b" 4]err");
        match cut_record(&mut bytes, b"[S") {
            Cut::Found { at, text } => assert_eq!((at, text.as_str()), (5, " 1 2 3 b 4")),
            _ => panic!("not found"),
        }
        assert_eq!(bytes, b"motd\nerr");
        assert!(matches!(cut_record(&mut bytes, b"[S"), Cut::Absent));
    }

    #[tokio::test]
    async fn keeps_the_tail_and_marks_truncation() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut got = Captured::default();
        drain_tail(Some(&data[..]), 1000, &mut got).await.unwrap();
        assert!(got.truncated);
        assert_eq!(got.bytes, &data[9_000..]);

        let mut small = Captured::default();
        drain_tail(Some(&data[..10]), 1000, &mut small)
            .await
            .unwrap();
        assert!(!small.truncated);
        assert_eq!(small.bytes, &data[..10]);
    }
}
