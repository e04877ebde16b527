//! What every subcommand shares: input, output, per-line errors, progress and the count at
//! the end, and the line loop of `produce` (`encode`, `decode` and `convert` cut their input
//! into batches instead: `crate::pipeline`).
//!
//! Memory stays flat: one line buffer, reused, never longer than the line-size limit (a
//! longer line is skipped as it streams by); output goes through a fixed-size buffer that
//! is flushed whenever the input is about to wait, so a slow producer upstream sees its
//! lines come out as they go in.
//!
//! Every report on standard error is one `write` of one line, so reports from processes
//! sharing standard error do not interleave, and control characters in it are escaped, so
//! nothing in the input can fake a report of its own.

use std::fmt::{self, Display, Write as _};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Stdout, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

const BUFFER: usize = 64 * 1024;
/// Progress is shown on a terminal every this many lines in.
const PROGRESS_EVERY: u64 = 100_000;

/// JSON Lines input: a file, or standard input.
pub type Input = BufReader<Box<dyn Read>>;

/// Opens `path`, or standard input when it is `None`.
pub fn open(path: Option<&Path>) -> io::Result<Input> {
    let read: Box<dyn Read> = open_unbuffered(path)?;
    Ok(BufReader::with_capacity(BUFFER, read))
}

/// Opens `path`, or standard input when it is `None`, for a reader with a buffer of its own.
pub fn open_unbuffered(path: Option<&Path>) -> io::Result<Box<dyn Read + Send>> {
    Ok(match path {
        Some(path) => Box::new(File::open(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot read `{}`: {e}", path.display()))
        })?),
        None if closed_at_start(0) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "standard input is closed; give a FILE, or `-` with input on standard input",
            ));
        }
        None => Box::new(io::stdin()),
    })
}

/// Whether standard stream `fd` (0, 1 or 2) was closed when the process started.
///
/// The Rust runtime reopens a closed descriptor 0, 1 or 2 on `/dev/null`, for reading and
/// writing, before `main` runs; by then a closed stream looks just like `1<>/dev/null`,
/// which is how Python's `subprocess.DEVNULL` and systemd's `StandardOutput=null` hand over
/// a stream to throw away. So the descriptors are looked at earlier, by [`probe_at_start`]:
/// only one that did not exist at all (`EBADF`) is closed. Elsewhere than on Linux nothing
/// is taken as closed. A closed standard error is no error of its own: the reports go
/// nowhere and the exit status still tells.
pub fn closed_at_start(fd: u8) -> bool {
    CLOSED_AT_START.load(Ordering::Relaxed) & (1 << fd) != 0
}

/// Bit `fd` set: standard stream `fd` was closed when the process started. Written once,
/// before `main`.
static CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

/// Runs [`probe_at_start`] as the C library starts the program, before the Rust runtime
/// reopens closed standard streams.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = ".init_array")]
static PROBE_AT_START: extern "C" fn() = probe_at_start;

/// Records in [`CLOSED_AT_START`] which of descriptors 0, 1 and 2 are not open.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
extern "C" fn probe_at_start() {
    let mut closed = 0;
    for fd in 0..3 {
        // SAFETY: `F_GETFD` reads the descriptor's flags and changes nothing; on a
        // descriptor that is not open it fails with `EBADF`.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF) {
            closed |= 1 << fd;
        }
    }
    CLOSED_AT_START.store(closed, Ordering::Relaxed);
}

/// Reads one line into `buffer` (cleared first), terminator included, keeping at most
/// `max + 2` bytes of it: a longer line streams by to its end without being kept. `None` at
/// the end of the input; `Some(true)` for a line that was too long.
fn read_line(input: &mut Input, buffer: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    buffer.clear();
    let keep = max.saturating_add(2);
    let mut seen = false;
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(seen.then_some(too_long));
        }
        seen = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            // `end` is an index of `available`, so `end + 1` is at most its length.
            Some(end) => (available.split_at(end + 1).0, true),
            None => (available, false),
        };
        if !too_long && buffer.len() + chunk.len() <= keep {
            buffer.extend_from_slice(chunk);
        } else {
            too_long = true;
            buffer.clear();
        }
        let used = chunk.len();
        input.consume(used);
        if done {
            if !too_long {
                let line = buffer.strip_suffix(b"\n").unwrap_or(buffer);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                too_long = line.len() > max;
            }
            return Ok(Some(too_long));
        }
    }
}

/// Control characters escaped (`\n`, `\u{1b}`), so that a report stays one line and
/// cannot drive the terminal.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(c, '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// The report of a line that failed: `line N: <problem>`, escaped, without a line end.
pub fn report_text(place: impl Display, error: impl Display) -> String {
    escaped(&format!("{place}: {error}"))
}

/// Appends `json` and a `\n` to `out`. A payload from another producer may hold line breaks
/// as white space between JSON tokens (never inside a string, where JSON escapes them); they
/// are written as spaces, so that every record stays on one line.
pub fn push_line(out: &mut Vec<u8>, json: &[u8]) {
    // Raw control bytes in JSON text are only ever white space; one vectorized pass finds
    // them.
    if json.iter().fold(false, |seen, &b| seen | (b < 0x20)) {
        out.extend(
            json.iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
    } else {
        out.extend_from_slice(json);
    }
    out.push(b'\n');
}

/// A place in the input, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Line(pub u64);

impl Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.0)
    }
}

/// One run of a subcommand: its output and its counts.
pub struct Stream {
    command: &'static str,
    out: BufWriter<Stdout>,
    taken: u64,
    written: u64,
    failed: u64,
    quiet: bool,
    terminal: bool,
    progress_shown: bool,
    /// Whether standard output has been found open; looked at before the first write.
    output_checked: bool,
    /// The line [`Stream::write`] writes, reused.
    line: Vec<u8>,
}

impl Stream {
    pub fn new(command: &'static str, quiet: bool) -> Self {
        Stream {
            command,
            out: BufWriter::with_capacity(BUFFER, io::stdout()),
            taken: 0,
            written: 0,
            failed: 0,
            quiet,
            terminal: io::stderr().is_terminal(),
            progress_shown: false,
            output_checked: false,
            line: Vec::new(),
        }
    }

    /// Calls `each` with the number and text of every line of `input` that is not blank,
    /// without its line terminator, until the input ends or `each` breaks. A line longer
    /// than `max_line_bytes` is reported as failed and not passed on. Returns the number of
    /// the last line read.
    pub fn each_line(
        &mut self,
        input: &mut Input,
        max_line_bytes: usize,
        mut each: impl FnMut(&mut Self, Line, &[u8]) -> io::Result<ControlFlow<()>>,
    ) -> io::Result<Line> {
        let mut buffer = Vec::with_capacity(4096);
        let mut number = 0;
        loop {
            if input.buffer().is_empty() {
                // The next read may wait on a slow writer: let what is done go out first.
                self.flush()?;
            }
            let read = read_line(input, &mut buffer, max_line_bytes)
                .map_err(|e| io::Error::new(e.kind(), format!("reading: {e}")))?;
            let Some(too_long) = read else {
                return Ok(Line(number));
            };
            number += 1;
            if too_long {
                self.take();
                self.fail(
                    Line(number),
                    format_args!("longer than {max_line_bytes} bytes (--max-line-bytes); skipped"),
                );
                self.progress();
                continue;
            }
            let line = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.take();
            let flow = each(self, Line(number), line)?;
            self.progress();
            if flow.is_break() {
                return Ok(Line(number));
            }
        }
    }

    /// Counts one line or message in.
    pub fn take(&mut self) {
        self.taken += 1;
    }

    /// Counts `lines` lines in, showing progress as [`Stream::progress`] does when they pass
    /// a multiple of its step.
    pub fn take_many(&mut self, lines: u64) {
        let before = self.taken / PROGRESS_EVERY;
        self.taken += lines;
        if self.taken / PROGRESS_EVERY > before {
            self.show_progress();
        }
    }

    /// Shows the counts so far, in place, every so many lines when standard error is a
    /// terminal; call it once a line is done.
    pub fn progress(&mut self) {
        if self.taken.is_multiple_of(PROGRESS_EVERY) {
            self.show_progress();
        }
    }

    fn show_progress(&mut self) {
        if self.terminal {
            let line = format!("\r{}", self.count());
            let _ = io::stderr().lock().write_all(line.as_bytes());
            self.progress_shown = true;
        }
    }

    /// How many lines or messages came in.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Writes one line of output, made one line by [`push_line`].
    ///
    /// # Errors
    /// Standard output closed when the process started, and write errors.
    pub fn write(&mut self, json: &[u8]) -> io::Result<()> {
        self.check_output()?;
        self.line.clear();
        push_line(&mut self.line, json);
        self.out.write_all(&self.line)?;
        self.written += 1;
        Ok(())
    }

    /// Writes `lines` lines of output made by [`push_line`], and flushes: what is done goes
    /// out now.
    ///
    /// # Errors
    /// Standard output closed when the process started, and write errors.
    pub fn write_lines(&mut self, block: &[u8], lines: u64) -> io::Result<()> {
        if !block.is_empty() {
            self.check_output()?;
            self.out.write_all(block)?;
            self.written += lines;
        }
        self.flush()
    }

    fn check_output(&mut self) -> io::Result<()> {
        if !self.output_checked {
            if closed_at_start(1) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "standard output is closed, so the output would go nowhere",
                ));
            }
            self.output_checked = true;
        }
        Ok(())
    }

    /// Counts one line out that is not written to standard output (a delivered message).
    pub fn count_out(&mut self) {
        self.written += 1;
    }

    /// Reports a line or message that failed.
    pub fn fail(&mut self, place: impl Display, error: impl Display) {
        self.failed += 1;
        self.report(format_args!("{place}: {error}"));
    }

    /// Reports a line that failed, with the text of [`report_text`].
    pub fn failed(&mut self, report: &str) {
        self.failed += 1;
        self.report_escaped(report);
    }

    /// Reports a problem that is not one line's, such as a broker error.
    pub fn warn(&mut self, problem: impl Display) {
        let command = self.command;
        self.report(format_args!("{command}: {problem}"));
    }

    /// Writes one report line to standard error in one `write`, control characters escaped.
    fn report(&mut self, text: fmt::Arguments<'_>) {
        self.report_escaped(&escaped(&text.to_string()));
    }

    /// Writes one report line to standard error in one `write`.
    fn report_escaped(&mut self, text: &str) {
        let mut line = String::with_capacity(text.len() + 8);
        if std::mem::take(&mut self.progress_shown) {
            line.push_str("\r\x1b[K");
        }
        line.push_str(text);
        line.push('\n');
        let _ = io::stderr().lock().write_all(line.as_bytes());
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes the output, writes the count and gives the exit status: 1 when a line
    /// failed.
    pub fn finish(mut self) -> io::Result<ExitCode> {
        self.flush()?;
        if !self.quiet {
            let count = self.count();
            self.report(format_args!("{count}"));
        } else if std::mem::take(&mut self.progress_shown) {
            let _ = io::stderr().lock().write_all(b"\r\x1b[K");
        }
        Ok(if self.failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }

    fn count(&self) -> String {
        format!(
            "{}: {} in, {} out, {} failed",
            self.command, self.taken, self.written, self.failed
        )
    }
}
