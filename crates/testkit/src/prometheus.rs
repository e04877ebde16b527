//! A strict reader of the Prometheus text exposition format 0.0.4: what a Prometheus server
//! would refuse, this refuses with the line and the reason.
//!
//! Checked: metric and label names; quoted label values and their escapes (`\\`, `\"`, `\n`);
//! values as Go parses them (`+Inf`, `-Inf`, `NaN` included) and optional integer
//! timestamps; `# TYPE` at most once per family, before its samples, with a known type;
//! `# HELP` at most once per family; the samples of a family contiguous; no series twice;
//! counters not negative; histograms with `le` buckets in increasing order, cumulative counts
//! that never decrease, a `+Inf` bucket equal to `_count`, and a `_sum`.

use std::collections::{BTreeMap, HashMap, HashSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's metric name (`_bucket`, `_sum` and `_count` included).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A metric family: its type, help text and samples in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name.
    pub name: String,
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub kind: String,
    /// The `# HELP` text.
    pub help: Option<String>,
    /// The samples, in order.
    pub samples: Vec<Sample>,
}

/// Everything an exposition holds, by family name.
#[derive(Debug, Default)]
pub struct Exposition {
    /// The families by name.
    pub families: BTreeMap<String, Family>,
}

impl Exposition {
    /// The family `name`; panics naming the families there are when absent.
    pub fn family(&self, name: &str) -> &Family {
        self.families.get(name).unwrap_or_else(|| {
            panic!(
                "no metric family `{name}`; there are {:?}",
                self.families.keys().collect::<Vec<_>>()
            )
        })
    }

    /// The value of the sample `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.families
            .values()
            .flat_map(|f| &f.samples)
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A float as Go's `strconv.ParseFloat` reads it in the text format.
fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        "NaN" => return Ok(f64::NAN),
        _ => {}
    }
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if !ok {
        return Err(format!("`{s}` is not a sample value"));
    }
    s.parse::<f64>()
        .map_err(|_| format!("`{s}` is not a sample value"))
}

/// `{a="x",b="y"}` at the start of `s`: the labels and the rest after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s
        .strip_prefix('{')
        .ok_or_else(|| "expected `{`".to_owned())?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("label without `=` in `{rest}`"))?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("`{name}` is not a label name"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("label `{name}`: value not quoted"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label `{name}`: unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("label `{name}`: bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err(format!("label `{name}`: raw line break")),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label `{name}` twice"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected `,` or `}}` after label `{name}`"));
        }
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "a sample needs a value".to_owned())?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("`{name}` is not a metric name"));
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| "expected one space before the value".to_owned())?;
    let mut fields = rest.split(' ');
    let value = parse_value(fields.next().unwrap_or_default())?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("`{ts}` is not a timestamp"))?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The family a sample belongs to, given the declared types.
fn family_of(name: &str, types: &HashMap<String, String>) -> String {
    for (suffix, kinds) in [
        ("_bucket", &["histogram"][..]),
        ("_sum", &["histogram", "summary"][..]),
        ("_count", &["histogram", "summary"][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.get(base).is_some_and(|k| kinds.contains(&k.as_str()))
        {
            return base.to_owned();
        }
    }
    name.to_owned()
}

/// Reads an exposition, or says which line is wrong and why.
///
/// # Errors
///
/// The text breaks a rule of the format: the message names the line and the rule.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    let mut current: Option<String> = None;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the exposition does not end with a line break".to_owned());
    }
    for (n, line) in text.lines().enumerate() {
        let at = |why: String| format!("line {}: {why}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        let mut switch_to = |family: &str, out: &mut Exposition| -> Result<(), String> {
            if current.as_deref() != Some(family) {
                if done.contains(family) {
                    return Err(format!("family `{family}` is split"));
                }
                if let Some(previous) = current.take() {
                    done.insert(previous);
                }
                current = Some(family.to_owned());
                out.families
                    .entry(family.to_owned())
                    .or_insert_with(|| Family {
                        name: family.to_owned(),
                        kind: "untyped".to_owned(),
                        help: None,
                        samples: Vec::new(),
                    });
            }
            Ok(())
        };
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !is_metric_name(name) {
                        return Err(at(format!("`{name}` is not a metric name")));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type `{kind}`")));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(at(format!("second TYPE for `{name}`")));
                    }
                    switch_to(name, &mut out).map_err(at)?;
                    let family = out.families.get_mut(name).unwrap();
                    if !family.samples.is_empty() {
                        return Err(at(format!("TYPE for `{name}` after its samples")));
                    }
                    family.kind = kind.to_owned();
                }
                (Some("HELP"), Some(name), help) => {
                    if !is_metric_name(name) {
                        return Err(at(format!("`{name}` is not a metric name")));
                    }
                    if !helps.insert(name.to_owned()) {
                        return Err(at(format!("second HELP for `{name}`")));
                    }
                    switch_to(name, &mut out).map_err(at)?;
                    out.families.get_mut(name).unwrap().help =
                        Some(help.unwrap_or_default().to_owned());
                }
                _ => {} // a plain comment
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = family_of(&sample.name, &types);
        switch_to(&family, &mut out).map_err(at)?;
        let key = (
            sample.name.clone(),
            sample
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        if !series.insert(key) {
            return Err(at("the same series twice".to_owned()));
        }
        let kind = types.get(&family).map_or("untyped", String::as_str);
        if kind == "counter" && (sample.value.is_nan() || sample.value < 0.0) {
            return Err(at("a negative counter".to_owned()));
        }
        if kind == "histogram"
            && sample.name.ends_with("_bucket")
            && !sample.labels.contains_key("le")
        {
            return Err(at("a histogram bucket without `le`".to_owned()));
        }
        out.families.get_mut(&family).unwrap().samples.push(sample);
    }
    for family in out.families.values() {
        if family.kind == "histogram" {
            check_histogram(family)?;
        }
    }
    Ok(out)
}

/// A label set without `le`, sorted.
type Labels = Vec<(String, String)>;

/// Buckets of each label set in increasing `le`, cumulative, ending at `+Inf` = `_count`.
fn check_histogram(family: &Family) -> Result<(), String> {
    let name = &family.name;
    let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let mut sums = HashSet::new();
    for s in &family.samples {
        let mut rest: Labels = s
            .labels
            .iter()
            .filter(|(k, _)| *k != "le")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        rest.sort();
        if s.name == format!("{name}_bucket") {
            let le = parse_value(&s.labels["le"]).map_err(|e| format!("{name}: le {e}"))?;
            groups.entry(rest).or_default().push((le, s.value));
        } else if s.name == format!("{name}_count") {
            counts.insert(rest, s.value);
        } else if s.name == format!("{name}_sum") {
            sums.insert(rest);
        } else {
            return Err(format!("{name}: `{}` is no histogram sample", s.name));
        }
    }
    if groups.is_empty() {
        return Err(format!("{name}: a histogram without buckets"));
    }
    for (labels, buckets) in &groups {
        for pair in buckets.windows(2) {
            if pair[0].0.partial_cmp(&pair[1].0) != Some(std::cmp::Ordering::Less) {
                return Err(format!("{name}{labels:?}: `le` not increasing"));
            }
            if pair[0].1 > pair[1].1 {
                return Err(format!("{name}{labels:?}: bucket counts decrease"));
            }
        }
        let last = buckets.last().unwrap();
        if last.0 != f64::INFINITY {
            return Err(format!("{name}{labels:?}: no `+Inf` bucket"));
        }
        if counts.get(labels) != Some(&last.1) {
            return Err(format!(
                "{name}{labels:?}: `_count` is not the `+Inf` bucket"
            ));
        }
        if !sums.contains(labels) {
            return Err(format!("{name}{labels:?}: no `_sum`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_a_valid_exposition() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\na_total 3\n\
                    # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n\
                    g{x=\"a\\\"b\\\\c\\n\"} -1.5e3 1700000000000\n";
        let e = parse(text).unwrap();
        assert_eq!(e.value("a_total", &[]), Some(3.0));
        assert_eq!(e.family("h").samples.len(), 4);
        assert_eq!(e.value("g", &[("x", "a\"b\\c\n")]), Some(-1500.0));
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        for bad in [
            "a 1",                                       // no final line break
            "1a 1\n",                                    // metric name
            "a{1x=\"v\"} 1\n",                           // label name
            "a{x=v} 1\n",                                // unquoted value
            "a{x=\"v\\t\"} 1\n",                         // bad escape
            "a one\n",                                   // value
            "a 1 2 3\n",                                 // trailing text
            "# TYPE a counter\n# TYPE a counter\na 1\n", // TYPE twice
            "# TYPE a widget\na 1\n",                    // unknown type
            "a 1\n# TYPE a counter\n",                   // TYPE after samples
            "a 1\nb 1\na{x=\"y\"} 2\n",                  // split family
            "a 1\na 2\n",                                // series twice
            "# TYPE a counter\na -1\n",                  // negative counter
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
