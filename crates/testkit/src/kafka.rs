//! An Apache Kafka node of the test's own, started by `scripts/kafka.sh`: for tests that kill
//! the broker, which must not take down the broker other tests share.

use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

/// A KRaft node (broker and controller) in a temporary directory, on free loopback ports; killed
/// and its directory removed on drop.
#[derive(Debug)]
pub struct Kafka {
    dir: TempDir,
    port: u16,
}

impl Kafka {
    /// Formats a node in a fresh directory and starts it (the jars are fetched once, into the
    /// script's cache).
    ///
    /// # Errors
    ///
    /// The script failed: no Java or Maven, or the broker did not start (its log is in the
    /// message).
    pub fn start() -> io::Result<Self> {
        let mut last = None;
        // Another process may take the free ports between the check and the broker's bind.
        for _ in 0..5 {
            let node = Self {
                dir: tempfile::Builder::new()
                    .prefix("testkit-kafka-")
                    .tempdir()?,
                port: free_port_pair()?,
            };
            match node.script("start") {
                Ok(()) => return Ok(node),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free port pair")))
    }

    /// The bootstrap address, `127.0.0.1:PORT`.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker with -9; its data stays for [`Kafka::start_again`].
    ///
    /// # Errors
    ///
    /// The script failed.
    pub fn kill(&self) -> io::Result<()> {
        self.script("kill")
    }

    /// Starts the broker again on the same data and port, and waits until it serves.
    ///
    /// # Errors
    ///
    /// The broker did not start (its log is in the message).
    pub fn start_again(&self) -> io::Result<()> {
        self.script("start")
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kafka.log")).unwrap_or_default()
    }

    fn script(&self, command: &str) -> io::Result<()> {
        let out = Command::new(script_path())
            .arg(command)
            .env("KAFKA_DIR", self.dir.path())
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_HEAP", "512m")
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "scripts/kafka.sh {command} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log()
            )))
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = self.script("kill");
    }
}

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka.sh")
}

/// A free loopback port whose successor is free too (the controller's).
fn free_port_pair() -> io::Result<u16> {
    for _ in 0..20 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other("no free pair of loopback ports"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use std::time::Duration;

    #[test]
    fn a_node_killed_with_9_and_started_again_keeps_what_it_acknowledged() {
        let kafka = Kafka::start().unwrap();
        let brokers = kafka.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("acks", "all")
            .create()
            .unwrap();
        producer
            .send(BaseRecord::to("kept").key("k").payload("acknowledged"))
            .unwrap();
        producer.flush(Duration::from_secs(60)).unwrap();
        kafka.kill().unwrap();
        assert!(std::net::TcpStream::connect(&brokers).is_err(), "killed");
        kafka.start_again().unwrap();
        let read = crate::read_topic(&brokers, "kept").unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].value_str(), Some("acknowledged"));
    }
}
