//! A real SMTP server on 127.0.0.1 for the tests: it speaks enough of RFC
//! 5321 for a client (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every
//! message it receives, and stops with the test.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::Notify,
};

/// A message as it arrived.
#[derive(Clone, Debug)]
pub struct Captured {
    pub to: Vec<String>,
    /// The message as sent: headers, a blank line, the body.
    pub data: String,
}

impl Captured {
    pub fn subject(&self) -> &str {
        self.data.lines().find_map(|line| line.strip_prefix("Subject: ")).unwrap_or_default()
    }

    /// The body, with quoted-printable soft line breaks and escapes undone.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let joined = body.replace("=\r\n", "");
        let mut text = String::new();
        let mut rest = joined.as_str();
        while let Some(at) = rest.find('=') {
            text.push_str(&rest[..at]);
            if let Ok(byte) = u8::from_str_radix(rest.get(at + 1..at + 3).unwrap_or(""), 16) {
                text.push(char::from(byte));
                rest = &rest[at + 3..];
            } else {
                text.push('=');
                rest = &rest[at + 1..];
            }
        }
        text.push_str(rest);
        text
    }

    /// The link of the message (the first `http…` word).
    pub fn link(&self) -> String {
        self.body()
            .split_whitespace()
            .find(|word| word.starts_with("http"))
            .unwrap_or_else(|| panic!("no link in:\n{}", self.body()))
            .to_owned()
    }

    /// The token in the link's fragment.
    pub fn token(&self) -> String {
        self.link().split_once("#token=").expect("a token in the fragment").1.to_owned()
    }
}

#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    messages: Arc<Mutex<Vec<Captured>>>,
    arrived: Arc<Notify>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Self {
            addr: listener.local_addr().expect("addr"),
            messages: Arc::default(),
            arrived: Arc::default(),
        };
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(accepting.clone().session(stream));
            }
        });
        server
    }

    /// The configuration that sends this service's mail here.
    pub fn configure(&self, figment: figment::Figment) -> figment::Figment {
        figment
            .merge(("mail.transport", "smtp"))
            .merge(("mail.smtp.host", "127.0.0.1"))
            .merge(("mail.smtp.port", self.addr.port()))
            .merge(("mail.smtp.tls", "none"))
    }

    /// The first message to `address` with `subject`, waiting up to five
    /// seconds for it.
    pub async fn message(&self, address: &str, subject: &str) -> Captured {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let arrived = self.arrived.notified();
            let found = self
                .messages()
                .into_iter()
                .find(|message| message.to.iter().any(|to| to == address) && message.subject() == subject);
            if let Some(message) = found {
                return message;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {subject:?} to {address}: {:?}",
                self.messages()
            );
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Captured> {
        self.messages.lock().expect("lock").clone()
    }

    /// The messages to `address`, once there are `count` of them (or after
    /// five seconds, whatever arrived).
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let arrived = self.arrived.notified();
            let to: Vec<Captured> = self
                .messages()
                .into_iter()
                .filter(|message| message.to.iter().any(|to| to == address))
                .collect();
            if to.len() >= count || tokio::time::Instant::now() >= deadline {
                return to;
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }

    async fn session(self, stream: tokio::net::TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut to = Vec::new();
        if write.write_all(b"220 test SMTP ready\r\n").await.is_err() {
            return;
        }
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250-test\r\n250 8BITMIME\r\n",
                "MAIL" => {
                    to.clear();
                    b"250 OK\r\n"
                }
                "RCPT" => {
                    let address = line.split_once('<').and_then(|(_, rest)| rest.split_once('>'));
                    to.push(address.map_or_else(String::new, |(address, _)| address.to_owned()));
                    b"250 OK\r\n"
                }
                "DATA" => {
                    if write.write_all(b"354 end with .\r\n").await.is_err() {
                        return;
                    }
                    let mut data = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line == "." {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                        data.push_str("\r\n");
                    }
                    self.messages.lock().expect("lock").push(Captured { to: std::mem::take(&mut to), data });
                    self.arrived.notify_waiters();
                    b"250 OK queued\r\n"
                }
                "QUIT" => {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"250 OK\r\n",
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}
