//! Checking where a partition's reading resumes, for brokers whose Fetch does not answer
//! from inside a record batch.
//!
//! Apache Kafka answers a Fetch from offset `O` with the record batch that holds `O` (the
//! client drops the records before `O`). A Kafka-protocol broker may instead answer with the
//! batches whose *base* offset is at least `O`, so a read that resumes from a committed offset
//! inside a batch skips the rest of that batch without a word (librdkafka takes a batch that
//! starts past its position as a gap), or reads nothing at all when that batch is the
//! partition's last. A bridge that took over a partition would commit past messages it never
//! bridged, or sit idle behind the end of the partition. The check costs nothing on Kafka
//! but the one step back described below, and makes such a broker safe.
//!
//! So each assigned partition remembers the committed offset it resumes from, and its
//! first message must be at that offset. When it comes later, or nothing comes while the
//! broker reports messages past it, the bridge reads again from further back (1, then 8,
//! 64, ... offsets before it, down to the start of the partition) until the first message
//! it gets lies before the resume offset: from there the broker's answer holds every
//! message after it. Messages before the resume offset were bridged and committed already
//! and are dropped; none at or after it is handled before the check ends, so the order of
//! the partition holds. On Kafka the check ends with the first message, or with one step
//! back past a gap that is really there (a transaction marker, a compacted record).

use std::time::{Duration, Instant};

/// How long a partition may stay silent while the broker reports messages past its resume
/// offset before the bridge reads it again from further back.
pub(super) const SILENCE: Duration = Duration::from_secs(2);

/// How many times further back each step reads than the one before.
const GROWTH: i64 = 8;

/// What to do with a consumed message of a partition being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The check is over: handle this message and the ones after it.
    Handle,
    /// Drop it (before the resume offset, or read ahead of a step back still to come).
    Drop,
    /// Drop it and read the partition again from this offset.
    Seek(i64),
}

/// The check of one partition: from its assignment until its reading is known to start at
/// or before its resume offset.
#[derive(Debug, Clone)]
pub(super) struct Resume {
    /// The committed offset the partition resumes from.
    from: i64,
    /// The step back under way: how far back, and where reading was sent (`None` when the
    /// seek failed and must be tried again).
    step: Option<Step>,
    /// The assignment, or the last seek.
    since: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Step {
    back: i64,
    sought: Option<i64>,
}

impl Resume {
    /// A partition assigned (or rewound) at `from`, at `now`.
    pub(super) fn new(from: i64, now: Instant) -> Self {
        Resume {
            from,
            step: None,
            since: now,
        }
    }

    /// The committed offset the partition resumes from.
    pub(super) fn from(&self) -> i64 {
        self.from
    }

    /// A message at `offset` came (`low`: the partition's first offset, as far as known).
    /// `true` as the second value: the check is over.
    ///
    /// A first message before the resume offset, with no step back under way, means the
    /// client reset its position (the committed offset was out of range): it is handled,
    /// and so is everything after it.
    pub(super) fn message(&mut self, offset: i64, low: i64, now: Instant) -> (Verdict, bool) {
        match self.step {
            None if offset <= self.from => (Verdict::Handle, true),
            // The broker's answer to a step back starts before the resume offset: it holds
            // every message after it. This one was bridged already.
            Some(_) if offset < self.from => (Verdict::Drop, true),
            // It starts at the resume offset itself: nothing before it is missing.
            Some(_) if offset == self.from => (Verdict::Handle, true),
            _ => match self.next_back(low) {
                Some(back) => (self.step_back(back, low, now), false),
                // From the start of the partition nothing lies before the resume offset:
                // the gap is real.
                None => (Verdict::Handle, true),
            },
        }
    }

    /// Whether nothing coming until `now` calls for a step back: `high` is the end of the
    /// partition as the broker last reported it, `low` its first offset. After a read from
    /// the first offset the check is over: what comes later comes in order.
    pub(super) fn silence(&mut self, high: Option<i64>, low: i64, now: Instant) -> Tick {
        if now.saturating_duration_since(self.since) < SILENCE {
            return Tick::Wait;
        }
        if !self.pending(high) {
            return Tick::Wait;
        }
        match self.next_back(low) {
            Some(back) => Tick::Seek(self.seek_offset(back, low, now)),
            None => Tick::Over,
        }
    }

    /// Whether the partition may still hold messages the bridge has not read: the idle exit
    /// waits for it.
    pub(super) fn pending(&self, high: Option<i64>) -> bool {
        self.step.is_some() || high.is_some_and(|h| h > self.from)
    }

    /// The seek to `offset` failed: it is tried again at the next message or silence.
    pub(super) fn seek_failed(&mut self) {
        if let Some(step) = &mut self.step {
            step.sought = None;
        }
    }

    /// How far before the resume offset the next seek goes; `None` when the last one
    /// sought the partition's first offset, before which nothing lies.
    fn next_back(&self, low: i64) -> Option<i64> {
        match self.step {
            None => Some(1),
            // The last seek failed: the same again.
            Some(Step { sought: None, back }) => Some(back),
            Some(Step {
                sought: Some(sought),
                ..
            }) if sought <= low => None,
            Some(Step { back, .. }) => Some(back.saturating_mul(GROWTH)),
        }
    }

    fn step_back(&mut self, back: i64, low: i64, now: Instant) -> Verdict {
        Verdict::Seek(self.seek_offset(back, low, now))
    }

    fn seek_offset(&mut self, back: i64, low: i64, now: Instant) -> i64 {
        let offset = self.from.saturating_sub(back).max(low).max(0);
        self.step = Some(Step {
            back,
            sought: Some(offset),
        });
        self.since = now;
        offset
    }
}

/// What a silence calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tick {
    /// Keep waiting.
    Wait,
    /// Read again from this offset.
    Seek(i64),
    /// The check is over.
    Over,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Fetch that answers from batch boundaries: the first offset of the first batch whose
    /// base is at least `offset`, if any.
    fn from_batches(batches: &[i64], offset: i64) -> Option<i64> {
        batches.iter().copied().find(|b| *b >= offset)
    }

    /// Kafka's Fetch: the first record at or after `offset`, given the records there are.
    fn kafka(records: &[i64], offset: i64) -> Option<i64> {
        records.iter().copied().find(|r| *r >= offset)
    }

    /// Runs a check against a broker answering `first(offset)`; returns the offset reading
    /// finally starts from, and how many seeks it took.
    fn run(from: i64, high: i64, first: impl Fn(i64) -> Option<i64>) -> (i64, usize) {
        let mut now = Instant::now();
        let mut resume = Resume::new(from, now);
        let mut position = from;
        let mut seeks = 0;
        loop {
            assert!(seeks < 40, "no end");
            now += Duration::from_millis(10);
            match first(position) {
                Some(offset) => match resume.message(offset, 0, now) {
                    (Verdict::Handle, true) => return (offset, seeks),
                    (Verdict::Drop, true) => return (offset, seeks),
                    (Verdict::Seek(to), false) => {
                        position = to;
                        seeks += 1;
                    }
                    other => panic!("{other:?}"),
                },
                None => {
                    now += SILENCE;
                    match resume.silence(Some(high), 0, now) {
                        Tick::Seek(to) => {
                            position = to;
                            seeks += 1;
                        }
                        Tick::Over => return (position, seeks),
                        Tick::Wait => panic!("waits with messages past the resume offset"),
                    }
                }
            }
        }
    }

    #[test]
    fn a_fetch_that_starts_at_the_resume_offset_ends_the_check() {
        assert_eq!(run(100, 150, |o| from_batches(&[0, 100], o)), (100, 0));
        assert_eq!(
            run(57, 150, |o| kafka(&(0..150).collect::<Vec<_>>(), o)),
            (57, 0)
        );
    }

    #[test]
    fn a_first_message_before_the_resume_offset_is_a_reset_and_handled() {
        let now = Instant::now();
        let mut resume = Resume::new(5000, now);
        assert_eq!(resume.message(0, 0, now), (Verdict::Handle, true));
    }

    #[test]
    fn a_batch_skipped_past_is_read_again_from_before_the_resume_offset() {
        // Batches at 0, 1130 and 1667; resumed at 1143: the broker answers 1667.
        let (start, seeks) = run(1143, 3334, |o| from_batches(&[0, 1130, 1667], o));
        assert_eq!(start, 1130);
        assert!(seeks <= 3, "{seeks}");
    }

    #[test]
    fn a_last_batch_that_answers_nothing_is_read_again() {
        // The partition's last batch starts at 3000; resumed at 3083: the broker answers nothing.
        let (start, _) = run(3083, 3334, |o| from_batches(&[0, 1667, 3000], o));
        assert_eq!(start, 3000);
    }

    #[test]
    fn a_real_gap_ends_at_one_step_back() {
        // A transaction marker at 100: the records are 0..=99 and 101...
        let records: Vec<i64> = (0..100).chain(101..150).collect();
        assert_eq!(run(100, 150, |o| kafka(&records, o)), (99, 1));
    }

    #[test]
    fn a_gap_down_to_the_start_of_the_partition_is_real() {
        // Everything before 40 compacted away.
        let records: Vec<i64> = (40..60).collect();
        let mut now = Instant::now();
        let mut resume = Resume::new(10, now);
        let mut position = 10;
        loop {
            now += Duration::from_millis(10);
            let offset = kafka(&records, position).unwrap();
            match resume.message(offset, 0, now) {
                (Verdict::Seek(to), false) => position = to,
                (verdict, over) => {
                    assert_eq!((verdict, over, offset), (Verdict::Handle, true, 40));
                    break;
                }
            }
        }
        assert_eq!(position, 0);
    }

    #[test]
    fn silence_without_messages_past_the_resume_offset_is_idle() {
        let now = Instant::now();
        let mut resume = Resume::new(100, now);
        assert_eq!(resume.silence(Some(100), 0, now + SILENCE), Tick::Wait);
        assert_eq!(resume.silence(None, 0, now + SILENCE), Tick::Wait);
        assert!(!resume.pending(Some(100)));
        assert!(resume.pending(Some(101)));
        assert_eq!(resume.silence(Some(101), 0, now), Tick::Wait);
        assert_eq!(resume.silence(Some(101), 0, now + SILENCE), Tick::Seek(99));
        assert!(resume.pending(Some(100)));
    }

    #[test]
    fn an_answer_to_a_step_back_that_starts_at_the_resume_offset_ends_the_check() {
        let now = Instant::now();
        let mut resume = Resume::new(100, now);
        assert_eq!(resume.message(120, 0, now), (Verdict::Seek(99), false));
        // A batch boundary at 100 (or nothing at 99): no further step back.
        assert_eq!(resume.message(100, 0, now), (Verdict::Handle, true));
    }

    #[test]
    fn a_failed_seek_is_tried_again() {
        let now = Instant::now();
        let mut resume = Resume::new(100, now);
        assert_eq!(resume.message(120, 0, now), (Verdict::Seek(99), false));
        resume.seek_failed();
        // A message from the old position: the same seek again.
        assert_eq!(resume.message(121, 0, now), (Verdict::Seek(99), false));
        resume.seek_failed();
        assert_eq!(resume.silence(Some(150), 0, now + SILENCE), Tick::Seek(99));
    }

    #[test]
    fn steps_back_stop_at_the_first_offset_of_the_partition() {
        let now = Instant::now();
        let mut resume = Resume::new(100, now);
        assert_eq!(resume.message(120, 95, now), (Verdict::Seek(99), false));
        assert_eq!(resume.message(120, 95, now), (Verdict::Seek(95), false));
        assert_eq!(resume.message(120, 95, now), (Verdict::Handle, true));
    }
}
