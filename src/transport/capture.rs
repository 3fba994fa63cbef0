//! Feeding a child's stdin and draining its stdout and stderr, for both transports.
//!
//! The three streams are driven concurrently: a program that writes a lot before it has read
//! all of its stdin would otherwise block on a full pipe while we block writing to it. Output
//! is always drained to the end (so the program never blocks) but only the last `OUTPUT_CAP`
//! bytes of each stream are kept: the end of stderr is what explains a failure. This file
//! must not decide what a status means.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
pub(crate) fn output(status: Option<i32>, out: Captured, err: Captured) -> Output {
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
    let Some(mut reader) = reader else {
        return Ok(());
    };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        into.bytes.extend_from_slice(&chunk[..n]);
        // Trim only when twice over the cap, so a long stream costs amortised O(1) per byte.
        if into.bytes.len() > cap.saturating_mul(2) {
            trim(into, cap);
        }
    }
    trim(into, cap);
    Ok(())
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

/// Feed stdin and drain stdout and stderr together until both outputs end, then await
/// `exit` (the child's wait): in that order, because a mux session's wait cuts its output
/// streams short, and a local child's output may still sit in the pipes after it exited.
pub(crate) async fn exchange_then_wait<W, O, E, F>(
    stdin: Option<W>,
    stdin_bytes: Option<&[u8]>,
    stdout: Option<O>,
    stderr: Option<E>,
    out: &mut Captured,
    err: &mut Captured,
    exit: F,
) -> (io::Result<()>, F::Output)
where
    W: AsyncWrite + Unpin,
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
    F: std::future::Future,
{
    let (fed, o, e) = tokio::join!(
        feed(stdin, stdin_bytes),
        drain_tail(stdout, OUTPUT_CAP, out),
        drain_tail(stderr, OUTPUT_CAP, err),
    );
    (fed.and(o).and(e), exit.await)
}

#[cfg(test)]
mod tests {
    use super::*;

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
