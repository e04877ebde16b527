//! The commands that convert each line on its own (`encode`, `decode`, `convert`), on every
//! core the machine gives the process.
//!
//! A reader cuts the input into batches of whole lines, each line with its number, as the
//! reads return them: a batch never waits for more input, so a line that came in goes out
//! without waiting for the next. Workers convert batches; the main thread writes each batch's
//! output with one `write` and its reports one `write` each, strictly in input order. The
//! queues between them are bounded, so memory stays flat however long the input: a few
//! batches of about [`READ`] bytes, and one line of at most `--max-line-bytes`. A longer line
//! is dropped as it streams by, and is that line's error.
//!
//! On one core the same batches go through one thread, with no queue and no thread switch.

use std::io::{self, Read};
use std::num::NonZero;
use std::ops::Range;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use crate::lines::{self, Line, Stream};

/// What one read asks for, and so about the input of one batch (a pipe gives at most what it
/// holds, 64 KiB by default). 256 KiB batches ran 3% (encode) to 8% (decode) faster than
/// 64 KiB ones on two cores (fewer thread wake-ups: about 2,000 context switches instead of
/// 8,500 for 200,000 events), for 2 MiB more memory.
const READ: usize = 256 * 1024;
/// Each worker's stack: as large as the main thread's usual one, for deeply nested payloads.
const STACK: usize = 8 << 20;
/// Spare buffers kept for reuse; more are freed, and so is one that grew past
/// [`SPARE_BYTES`] (it held a long line).
const SPARE: usize = 16;
const SPARE_BYTES: usize = 4 * READ;

/// One line's conversion: its output (one JSON text) or its error.
pub type Convert = dyn Fn(&[u8]) -> outbox_cloudevents::Result<Vec<u8>> + Send + Sync;

/// A line of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Its text in the batch's data, without the line terminator.
    Line { number: u64, text: Range<usize> },
    /// Longer than `--max-line-bytes`: not kept.
    TooLong { number: u64 },
}

/// Whole lines of the input, in order.
#[derive(Debug)]
struct Batch {
    /// The lines' bytes, and after them whatever the buffer held before (never read).
    data: Vec<u8>,
    pieces: Vec<Piece>,
}

/// A converted batch: what goes to standard output, what goes to standard error, the counts.
#[derive(Debug, Default)]
struct Done {
    /// The input's buffer, for reuse.
    data: Vec<u8>,
    /// Output lines, each ended by `\n`.
    out: Vec<u8>,
    written: u64,
    taken: u64,
    /// One line's report each (`line N: …`, escaped), in line order.
    reports: Vec<String>,
}

/// Buffers handed back by the writer, so that a long run allocates no new ones: the input's
/// (kept as they are, so that a read into them needs no zeroing first) and the output's.
#[derive(Default)]
struct Pools {
    input: Pool,
    output: Pool,
}

#[derive(Default)]
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn get(&self) -> Vec<u8> {
        let spare = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        // Room for a batch's input and its output, which can be larger (escaped JSON).
        spare.unwrap_or_else(|| Vec::with_capacity(2 * READ))
    }

    fn put(&self, buffer: Vec<u8>) {
        let mut spare = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < SPARE && buffer.capacity() <= SPARE_BYTES {
            spare.push(buffer);
        }
    }
}

/// Cuts the input into batches of whole lines.
struct Batches<R> {
    input: R,
    max_line_bytes: usize,
    /// The number of the last line begun.
    number: u64,
    /// `buffer[..filled]` is the start of a line whose end has not been read yet (nothing
    /// when `skipping`); the rest is room for the next read.
    buffer: Vec<u8>,
    filled: usize,
    /// The line being read is longer than the limit: its bytes are dropped as they come.
    skipping: bool,
    ended: bool,
    pools: Arc<Pools>,
}

impl<R: Read> Batches<R> {
    fn new(input: R, max_line_bytes: usize, pools: Arc<Pools>) -> Self {
        Batches {
            input,
            max_line_bytes,
            number: 0,
            buffer: pools.input.get(),
            filled: 0,
            skipping: false,
            ended: false,
            pools,
        }
    }

    /// The next batch: the lines that end in what the next reads bring, as soon as a read
    /// brings the end of one. `None` at the end of the input.
    fn next_batch(&mut self) -> io::Result<Option<Batch>> {
        let mut pieces = Vec::new();
        loop {
            if self.ended {
                return Ok(None);
            }
            let old = self.filled;
            if self.buffer.len() < old + READ {
                self.buffer.resize(old + READ, 0);
            }
            let read = loop {
                match self
                    .input
                    .read(self.buffer.get_mut(old..old + READ).unwrap_or_default())
                {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    read => break read?,
                }
            };
            self.filled = old + read;
            if read == 0 {
                self.ended = true;
                // The last line, without a line terminator.
                if self.skipping || self.filled > 0 {
                    let skipped = std::mem::take(&mut self.skipping);
                    let text = 0..self.filled;
                    let max = self.max_line_bytes;
                    pieces.push(piece(&self.buffer, text, &mut self.number, skipped, max));
                }
                return Ok((!pieces.is_empty()).then(|| Batch {
                    data: std::mem::take(&mut self.buffer),
                    pieces,
                }));
            }
            // The buffer holds one unfinished line (or none), then what was just read.
            let mut start = 0;
            let max = self.max_line_bytes;
            let new = self.buffer.get(old..self.filled).unwrap_or_default();
            for at in memchr::memchr_iter(b'\n', new) {
                let end = old + at;
                let skipped = std::mem::take(&mut self.skipping);
                pieces.push(piece(
                    &self.buffer,
                    start..end,
                    &mut self.number,
                    skipped,
                    max,
                ));
                start = end + 1;
            }
            let unfinished = self.filled - start;
            if self.skipping || unfinished > self.max_line_bytes.saturating_add(1) {
                // More than the limit, and a `\r` before the `\n` still to come.
                self.skipping = true;
                self.filled = start;
            }
            if !pieces.is_empty() {
                let mut next = self.pools.input.get();
                let unfinished = self.buffer.get(start..self.filled).unwrap_or_default();
                if next.len() < unfinished.len() + READ {
                    next.resize(unfinished.len() + READ, 0);
                }
                if let Some(to) = next.get_mut(..unfinished.len()) {
                    to.copy_from_slice(unfinished);
                }
                self.filled = unfinished.len();
                let data = std::mem::replace(&mut self.buffer, next);
                return Ok(Some(Batch { data, pieces }));
            }
        }
    }
}

/// The line of `buffer[text]` (its `\n` excluded) ends: it is line `number` + 1.
fn piece(buffer: &[u8], text: Range<usize>, number: &mut u64, skipped: bool, max: usize) -> Piece {
    *number += 1;
    let number = *number;
    if skipped {
        return Piece::TooLong { number };
    }
    let end = match buffer.get(text.clone()) {
        Some([.., b'\r']) => text.end - 1,
        _ => text.end,
    };
    if end - text.start > max {
        Piece::TooLong { number }
    } else {
        Piece::Line {
            number,
            text: text.start..end,
        }
    }
}

/// Converts every line of a batch.
fn convert(batch: Batch, convert: &Convert, max_line_bytes: usize, mut out: Vec<u8>) -> Done {
    out.clear();
    let mut done = Done {
        out,
        ..Done::default()
    };
    for piece in &batch.pieces {
        match piece {
            Piece::TooLong { number } => {
                done.taken += 1;
                done.reports.push(lines::report_text(
                    Line(*number),
                    format_args!("longer than {max_line_bytes} bytes (--max-line-bytes); skipped"),
                ));
            }
            Piece::Line { number, text } => {
                let line = batch.data.get(text.clone()).unwrap_or_default();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                done.taken += 1;
                match convert(line) {
                    Ok(json) => {
                        lines::push_line(&mut done.out, &json);
                        done.written += 1;
                    }
                    Err(e) => done.reports.push(lines::report_text(Line(*number), e)),
                }
            }
        }
    }
    done.data = batch.data;
    done
}

/// Writes one converted batch, and hands its buffers back for reuse.
fn write(stream: &mut Stream, done: Done, pools: &Pools) -> io::Result<()> {
    stream.write_lines(&done.out, done.written)?;
    for report in &done.reports {
        stream.failed(report);
    }
    stream.take_many(done.taken);
    pools.input.put(done.data);
    pools.output.put(done.out);
    Ok(())
}

fn reading(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("reading: {e}"))
}

/// Converts every line of `input` with `each`, writing the outputs and reports to `stream`
/// in input order.
///
/// # Errors
/// Reading and writing errors, and standard output closed when the process started.
pub fn run(
    input: Box<dyn Read + Send>,
    stream: &mut Stream,
    max_line_bytes: usize,
    each: Arc<Convert>,
) -> io::Result<()> {
    let workers = thread::available_parallelism().map_or(1, NonZero::get);
    if workers < 2 {
        return in_one_thread(input, stream, max_line_bytes, &*each);
    }
    let pools = Arc::new(Pools::default());
    // Every batch in flight is in one of: the work queue, a worker, the order queue and its
    // result channel, the writer.
    let (work, jobs) = mpsc::sync_channel::<(Batch, SyncSender<Done>)>(workers);
    let (order, in_order) = mpsc::sync_channel::<io::Result<Receiver<Done>>>(workers + 1);
    let jobs = Arc::new(Mutex::new(jobs));
    for _ in 0..workers {
        let (jobs, each, pools) = (Arc::clone(&jobs), Arc::clone(&each), Arc::clone(&pools));
        thread::Builder::new()
            .name("convert".into())
            .stack_size(STACK)
            .spawn(move || {
                loop {
                    // The lock is held only while waiting for the next batch.
                    let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok((batch, result)) = job else { return };
                    let done = convert(batch, &*each, max_line_bytes, pools.output.get());
                    // The writer stopped: so does the run.
                    if result.send(done).is_err() {
                        return;
                    }
                }
            })?;
    }
    let reader_pools = Arc::clone(&pools);
    // Not joined: when the run stops early (output closed), it may be waiting on its input.
    thread::Builder::new().name("read".into()).spawn(move || {
        let mut batches = Batches::new(input, max_line_bytes, reader_pools);
        loop {
            match batches.next_batch() {
                Ok(Some(batch)) => {
                    let (result, done) = mpsc::sync_channel(1);
                    if work.send((batch, result)).is_err() || order.send(Ok(done)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = order.send(Err(e));
                    return;
                }
            }
        }
    })?;
    for next in in_order {
        let done = next.map_err(reading)?.recv().map_err(|_| {
            io::Error::other("a line conversion stopped unexpectedly; the run cannot finish")
        })?;
        write(stream, done, &pools)?;
    }
    Ok(())
}

fn in_one_thread(
    input: Box<dyn Read + Send>,
    stream: &mut Stream,
    max_line_bytes: usize,
    each: &Convert,
) -> io::Result<()> {
    let pools = Arc::new(Pools::default());
    let mut batches = Batches::new(input, max_line_bytes, Arc::clone(&pools));
    while let Some(batch) = batches.next_batch().map_err(reading)? {
        let done = convert(batch, each, max_line_bytes, pools.output.get());
        write(stream, done, &pools)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads at most `step` bytes at a time.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            let (now, rest) = self.0.split_at(n);
            buf[..n].copy_from_slice(now);
            self.0 = rest;
            Ok(n)
        }
    }

    /// Every line of `input` as `(number, Some(text))`, or `None` when too long.
    fn cut(input: &[u8], max: usize, step: usize) -> Vec<(u64, Option<String>)> {
        let mut batches = Batches::new(Trickle(input, step), max, Arc::default());
        let mut lines = Vec::new();
        while let Some(batch) = batches.next_batch().unwrap() {
            assert!(!batch.pieces.is_empty());
            for piece in batch.pieces {
                lines.push(match piece {
                    Piece::Line { number, text } => (
                        number,
                        Some(String::from_utf8(batch.data[text].to_vec()).unwrap()),
                    ),
                    Piece::TooLong { number } => (number, None),
                });
            }
        }
        lines
    }

    #[test]
    fn lines_keep_their_numbers_whatever_the_reads() {
        let input = b"ab\r\n\ncdef\n0123456789\n012345678\r\nxyz";
        let expected = vec![
            (1, Some("ab".to_owned())),
            (2, Some(String::new())),
            (3, Some("cdef".to_owned())),
            (4, None),
            (5, Some("012345678".to_owned())),
            (6, Some("xyz".to_owned())),
        ];
        for step in [1, 2, 3, 7, 64, READ] {
            assert_eq!(cut(input, 9, step), expected, "reads of {step}");
        }
    }

    #[test]
    fn a_long_line_is_not_kept() {
        let mut input = vec![b'x'; 10 * READ];
        input.extend_from_slice(b"\nok\n");
        input.extend(std::iter::repeat_n(b'y', 3 * READ));
        let mut batches = Batches::new(Trickle(&input, READ), 100, Arc::default());
        let mut seen = Vec::new();
        while let Some(batch) = batches.next_batch().unwrap() {
            assert!(batch.data.len() <= 2 * READ, "{}", batch.data.len());
            seen.extend(batch.pieces);
        }
        assert_eq!(
            seen,
            [
                Piece::TooLong { number: 1 },
                Piece::Line {
                    number: 2,
                    text: 1..3
                },
                Piece::TooLong { number: 3 }
            ]
        );
        assert!(cut(b"", 10, 1).is_empty());
        assert_eq!(cut(b"\n", 10, 1), [(1, Some(String::new()))]);
    }
}
