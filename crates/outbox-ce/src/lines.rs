//! The line loop every subcommand shares: input, output, per-line errors, progress and the
//! count at the end.
//!
//! Memory stays flat: one line buffer, reused; output goes through a fixed-size buffer that
//! is flushed whenever the input is about to wait, so a slow producer upstream sees its
//! lines come out as they go in.

use std::fmt::{self, Display};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Stdout, Write};
use std::path::Path;
use std::process::ExitCode;

const BUFFER: usize = 64 * 1024;
/// Progress is shown on a terminal every this many lines in.
const PROGRESS_EVERY: u64 = 100_000;

/// JSON Lines input: a file, or standard input.
pub type Input = BufReader<Box<dyn Read>>;

/// Opens `path`, or standard input when it is `None`.
pub fn open(path: Option<&Path>) -> io::Result<Input> {
    let read: Box<dyn Read> = match path {
        Some(path) => Box::new(File::open(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot read `{}`: {e}", path.display()))
        })?),
        None => Box::new(io::stdin()),
    };
    Ok(BufReader::with_capacity(BUFFER, read))
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
        }
    }

    /// Calls `each` with the number and text of every line of `input` that is not blank,
    /// without its line terminator.
    pub fn each_line(
        &mut self,
        input: &mut Input,
        mut each: impl FnMut(&mut Self, Line, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut buffer = Vec::with_capacity(4096);
        let mut number = 0;
        loop {
            if input.buffer().is_empty() {
                // The next read may wait on a slow writer: let what is done go out first.
                self.flush()?;
            }
            buffer.clear();
            let read = input.read_until(b'\n', &mut buffer);
            let read = read.map_err(|e| io::Error::new(e.kind(), format!("reading: {e}")))?;
            if read == 0 {
                return Ok(());
            }
            number += 1;
            let line = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.take();
            each(self, Line(number), line)?;
            self.progress();
        }
    }

    /// Counts one line or message in.
    pub fn take(&mut self) {
        self.taken += 1;
    }

    /// Shows the counts so far, in place, every so many lines when standard error is a
    /// terminal; call it once a line is done.
    pub fn progress(&mut self) {
        if self.terminal && self.taken.is_multiple_of(PROGRESS_EVERY) {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r{}", self.count());
            self.progress_shown = true;
        }
    }

    /// How many lines or messages came in.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Writes one line of output. A payload from another producer may hold line breaks as
    /// white space between JSON tokens (never inside a string, where JSON escapes them);
    /// they are written as spaces, so that every record stays on one line.
    pub fn write(&mut self, json: &[u8]) -> io::Result<()> {
        // Raw control bytes in JSON text are only ever white space; one vectorized pass
        // finds them.
        if json.iter().fold(false, |seen, &b| seen | (b < 0x20)) {
            let one_line: Vec<u8> = json
                .iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
                .collect();
            self.out.write_all(&one_line)?;
        } else {
            self.out.write_all(json)?;
        }
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Counts one line out that is not written to standard output (a delivered message).
    pub fn count_out(&mut self) {
        self.written += 1;
    }

    /// Reports a line or message that failed.
    pub fn fail(&mut self, place: impl Display, error: impl Display) {
        self.failed += 1;
        let mut err = io::stderr().lock();
        self.clear_progress(&mut err);
        let _ = writeln!(err, "{place}: {error}");
    }

    /// Reports a problem that is not one line's, such as a broker error.
    pub fn warn(&mut self, problem: impl Display) {
        let mut err = io::stderr().lock();
        self.clear_progress(&mut err);
        let _ = writeln!(err, "{}: {problem}", self.command);
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes the output, writes the count and gives the exit status: 1 when a line
    /// failed.
    pub fn finish(mut self) -> io::Result<ExitCode> {
        self.flush()?;
        let mut err = io::stderr().lock();
        self.clear_progress(&mut err);
        if !self.quiet {
            let _ = writeln!(err, "{}", self.count());
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

    fn clear_progress(&mut self, err: &mut impl Write) {
        if self.progress_shown {
            let _ = write!(err, "\r\x1b[K");
            self.progress_shown = false;
        }
    }
}
