//! python-outbox-core's `OutboxConfig`: flags, then `OUTBOX_*` environment variables, then
//! its defaults, each checked against its range before anything is touched.

use std::fmt;
use std::time::Duration;

/// The settings python-outbox-core's `OutboxConfig` defines, with its defaults and ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxConfig {
    /// Rows claimed per batch: 1–1000, default 100 (`OUTBOX_BATCH_SIZE`).
    pub batch_size: u32,
    /// How long to wait for new rows when there is no notification: 1–3600 s, default 5 s
    /// (`OUTBOX_POLL_INTERVAL_SECONDS`).
    pub poll_interval: Duration,
    /// Retries of a message the broker refused for good before the row is marked failed:
    /// 0–100, default 3 (`OUTBOX_MAX_RETRY_COUNT`). A row is tried at most
    /// `1 + max_retry_count` times.
    pub max_retry_count: u32,
    /// The factor between successive retry delays: 1.0–10.0, default 2.0
    /// (`OUTBOX_RETRY_BACKOFF_MULTIPLIER`). The first retry waits one second.
    pub retry_backoff_multiplier: f64,
    /// Serve `/metrics` (`OUTBOX_ENABLE_METRICS`, default true).
    pub enable_metrics: bool,
    /// Serve `/health` (`OUTBOX_ENABLE_HEALTH_CHECK`, default true).
    pub enable_health_check: bool,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            batch_size: 100,
            poll_interval: Duration::from_secs(5),
            max_retry_count: 3,
            retry_backoff_multiplier: 2.0,
            enable_metrics: true,
            enable_health_check: true,
        }
    }
}

/// Values given on the command line; `None` falls back to the environment, then the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--batch-size`.
    pub batch_size: Option<u64>,
    /// `--poll-interval`.
    pub poll_interval: Option<Duration>,
    /// `--max-retries`.
    pub max_retry_count: Option<u64>,
    /// `--backoff-multiplier`.
    pub retry_backoff_multiplier: Option<f64>,
}

/// A setting that is malformed or out of its range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the value came from: a flag such as `--batch-size` or a variable such as
    /// `OUTBOX_BATCH_SIZE`.
    pub origin: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The environment variable of each setting.
pub const ENV_BATCH_SIZE: &str = "OUTBOX_BATCH_SIZE";
/// See [`OutboxConfig::poll_interval`].
pub const ENV_POLL_INTERVAL: &str = "OUTBOX_POLL_INTERVAL_SECONDS";
/// See [`OutboxConfig::max_retry_count`].
pub const ENV_MAX_RETRY_COUNT: &str = "OUTBOX_MAX_RETRY_COUNT";
/// See [`OutboxConfig::retry_backoff_multiplier`].
pub const ENV_BACKOFF_MULTIPLIER: &str = "OUTBOX_RETRY_BACKOFF_MULTIPLIER";
/// See [`OutboxConfig::enable_metrics`].
pub const ENV_ENABLE_METRICS: &str = "OUTBOX_ENABLE_METRICS";
/// See [`OutboxConfig::enable_health_check`].
pub const ENV_ENABLE_HEALTH_CHECK: &str = "OUTBOX_ENABLE_HEALTH_CHECK";

impl OutboxConfig {
    /// Resolves each setting: the flag when given, else the variable `env` returns for its
    /// name, else the default.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the flag or variable whose value does not parse or is out of
    /// python-outbox-core's range.
    pub fn resolve(
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let defaults = OutboxConfig::default();
        let int = |flag: &str, given: Option<u64>, var: &str, min: u32, max: u32, default: u32| {
            let (origin, value) = match (given, env(var)) {
                (Some(v), _) => (flag.to_owned(), v),
                (None, Some(text)) => {
                    let v = text.trim().parse::<u64>().map_err(|_| ConfigError {
                        origin: var.to_owned(),
                        message: format!("`{text}` is not a whole number"),
                    })?;
                    (var.to_owned(), v)
                }
                (None, None) => return Ok(default),
            };
            match u32::try_from(value) {
                Ok(v) if (min..=max).contains(&v) => Ok(v),
                _ => Err(ConfigError {
                    origin,
                    message: format!("{value} is out of range: use {min} to {max}"),
                }),
            }
        };
        let batch_size = int(
            "--batch-size",
            flags.batch_size,
            ENV_BATCH_SIZE,
            1,
            1000,
            defaults.batch_size,
        )?;
        let max_retry_count = int(
            "--max-retries",
            flags.max_retry_count,
            ENV_MAX_RETRY_COUNT,
            0,
            100,
            defaults.max_retry_count,
        )?;
        let poll_interval = match (flags.poll_interval, env(ENV_POLL_INTERVAL)) {
            (Some(d), _) => {
                if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
                    return Err(ConfigError {
                        origin: "--poll-interval".to_owned(),
                        message: format!("{d:?} is out of range: use 1s to 3600s"),
                    });
                }
                d
            }
            (None, Some(_)) => Duration::from_secs(u64::from(int(
                "--poll-interval",
                None,
                ENV_POLL_INTERVAL,
                1,
                3600,
                5,
            )?)),
            (None, None) => defaults.poll_interval,
        };
        let retry_backoff_multiplier =
            match (flags.retry_backoff_multiplier, env(ENV_BACKOFF_MULTIPLIER)) {
                (Some(f), _) => check_multiplier("--backoff-multiplier", f)?,
                (None, Some(text)) => {
                    let f = text.trim().parse::<f64>().map_err(|_| ConfigError {
                        origin: ENV_BACKOFF_MULTIPLIER.to_owned(),
                        message: format!("`{text}` is not a number"),
                    })?;
                    check_multiplier(ENV_BACKOFF_MULTIPLIER, f)?
                }
                (None, None) => defaults.retry_backoff_multiplier,
            };
        let boolean = |var: &str, default: bool| match env(var) {
            None => Ok(default),
            Some(text) => parse_bool(&text).ok_or_else(|| ConfigError {
                origin: var.to_owned(),
                message: format!("`{text}` is not a boolean: use true or false"),
            }),
        };
        Ok(OutboxConfig {
            batch_size,
            poll_interval,
            max_retry_count,
            retry_backoff_multiplier,
            enable_metrics: boolean(ENV_ENABLE_METRICS, defaults.enable_metrics)?,
            enable_health_check: boolean(ENV_ENABLE_HEALTH_CHECK, defaults.enable_health_check)?,
        })
    }

    /// [`OutboxConfig::resolve`] with the process environment.
    ///
    /// # Errors
    /// As [`OutboxConfig::resolve`].
    pub fn from_env(flags: &Overrides) -> Result<Self, ConfigError> {
        OutboxConfig::resolve(flags, |name| std::env::var(name).ok())
    }

    /// The wait before retry number `retry` (1 for the first retry) of a message the broker
    /// refused: one second times the multiplier to the power `retry - 1`, at most five
    /// minutes.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.retry_backoff_multiplier.powi(exponent);
        Duration::try_from_secs_f64(secs)
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF)
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(300);

fn check_multiplier(origin: &str, f: f64) -> Result<f64, ConfigError> {
    if (1.0..=10.0).contains(&f) {
        Ok(f)
    } else {
        Err(ConfigError {
            origin: origin.to_owned(),
            message: format!("{f} is out of range: use 1.0 to 10.0"),
        })
    }
}

/// pydantic's boolean spellings.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// The longest duration a setting takes: ten years (87,600 hours). Every deadline the
/// relay and the bridge compute is a point in time this far away at most, so none can
/// overflow; a longer value is refused where it is parsed.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Parses a duration: a number followed by `ms`, `s`, `m` or `h`, or a plain number of
/// seconds (`5s`, `500ms`, `2m`, `1.5`), at most [`MAX_DURATION`].
///
/// # Errors
/// A message naming the text when it is not such a duration or is longer than
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    let seconds = number
        .parse::<f64>()
        .ok()
        .map(|n| n * scale)
        .filter(|s| !s.is_nan())
        .ok_or_else(|| {
            format!("`{text}` is not a duration: write a number with ms, s, m or h, such as 5s")
        })?;
    if seconds > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "`{text}` is longer than the longest duration taken, {}h (ten years)",
            MAX_DURATION.as_secs() / 3600
        ));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is not a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_are_python_outbox_core_s() {
        let config = OutboxConfig::resolve(&Overrides::default(), env(&[])).unwrap();
        assert_eq!(config, OutboxConfig::default());
        assert_eq!(config.batch_size, 100);
        assert_eq!(config.poll_interval, Duration::from_secs(5));
        assert_eq!(config.max_retry_count, 3);
        assert_eq!(config.retry_backoff_multiplier, 2.0);
    }

    #[test]
    fn flags_beat_environment_beats_defaults() {
        let vars = [
            (ENV_BATCH_SIZE, "250"),
            (ENV_POLL_INTERVAL, "7"),
            (ENV_MAX_RETRY_COUNT, "9"),
            (ENV_BACKOFF_MULTIPLIER, "1.5"),
            (ENV_ENABLE_METRICS, "false"),
        ];
        let from_env = OutboxConfig::resolve(&Overrides::default(), env(&vars)).unwrap();
        assert_eq!(from_env.batch_size, 250);
        assert_eq!(from_env.poll_interval, Duration::from_secs(7));
        assert_eq!(from_env.max_retry_count, 9);
        assert_eq!(from_env.retry_backoff_multiplier, 1.5);
        assert!(!from_env.enable_metrics);
        assert!(from_env.enable_health_check);
        let flags = Overrides {
            batch_size: Some(10),
            poll_interval: Some(Duration::from_secs(2)),
            max_retry_count: Some(0),
            retry_backoff_multiplier: Some(3.0),
        };
        let from_flags = OutboxConfig::resolve(&flags, env(&vars)).unwrap();
        assert_eq!(from_flags.batch_size, 10);
        assert_eq!(from_flags.poll_interval, Duration::from_secs(2));
        assert_eq!(from_flags.max_retry_count, 0);
        assert_eq!(from_flags.retry_backoff_multiplier, 3.0);
    }

    #[test]
    fn out_of_range_values_name_their_origin() {
        for (var, value) in [
            (ENV_BATCH_SIZE, "0"),
            (ENV_BATCH_SIZE, "1001"),
            (ENV_POLL_INTERVAL, "0"),
            (ENV_POLL_INTERVAL, "3601"),
            (ENV_MAX_RETRY_COUNT, "101"),
            (ENV_BACKOFF_MULTIPLIER, "0.5"),
            (ENV_BACKOFF_MULTIPLIER, "10.5"),
            (ENV_BATCH_SIZE, "ten"),
            (ENV_ENABLE_HEALTH_CHECK, "maybe"),
        ] {
            let vars = [(var, value)];
            let e = OutboxConfig::resolve(&Overrides::default(), env(&vars)).unwrap_err();
            assert_eq!(e.origin, var, "{var}={value}");
            assert!(e.to_string().contains(value), "{e}");
        }
        let flags = Overrides {
            poll_interval: Some(Duration::from_millis(500)),
            ..Overrides::default()
        };
        let e = OutboxConfig::resolve(&flags, env(&[])).unwrap_err();
        assert_eq!(e.origin, "--poll-interval");
        let flags = Overrides {
            batch_size: Some(5000),
            ..Overrides::default()
        };
        let e = OutboxConfig::resolve(&flags, env(&[(ENV_BATCH_SIZE, "5")])).unwrap_err();
        assert_eq!(e.origin, "--batch-size");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_duration("87600h"), Ok(MAX_DURATION));
    }

    #[test]
    fn a_duration_longer_than_ten_years_is_refused() {
        for text in [
            "87600.001h",
            "4000000000000000h",
            "315360001",
            "9".repeat(400).as_str(),
        ] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.contains(text) && e.contains("87600h"), "{text}: {e}");
        }
    }

    #[test]
    fn backoff_grows_by_the_multiplier() {
        let config = OutboxConfig::default();
        assert_eq!(config.backoff(1), Duration::from_secs(1));
        assert_eq!(config.backoff(2), Duration::from_secs(2));
        assert_eq!(config.backoff(3), Duration::from_secs(4));
        assert_eq!(config.backoff(100), MAX_BACKOFF);
    }
}
