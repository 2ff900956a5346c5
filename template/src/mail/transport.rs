//! How messages leave: SMTP (lettre, over TLS), or for development an outbox
//! directory with one `.eml` file per message.

use std::path::PathBuf;

use anyhow::Context;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    address::Envelope,
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};

use crate::config::{Config, MailTransport, SmtpTls};

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox { files: AsyncFileTransport<Tokio1Executor>, dir: PathBuf },
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mail = &config.mail;
        if mail.transport == MailTransport::Outbox {
            std::fs::create_dir_all(&mail.outbox_dir)
                .with_context(|| format!("creating the mail outbox {}", mail.outbox_dir.display()))?;
            return Ok(Self::Outbox {
                files: AsyncFileTransport::new(&mail.outbox_dir),
                dir: mail.outbox_dir.clone(),
            });
        }
        let smtp = &mail.smtp;
        let tls = || -> anyhow::Result<TlsParameters> {
            let mut parameters = TlsParameters::builder(smtp.host.clone());
            if let Some(path) = &smtp.ca_cert {
                let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                parameters = parameters.add_root_certificate(Certificate::from_pem(&pem)?);
            }
            Ok(parameters.build_rustls()?)
        };
        let tls = match smtp.tls {
            SmtpTls::Starttls => Tls::Required(tls()?),
            SmtpTls::Implicit => Tls::Wrapper(tls()?),
            // Validated: only to a loopback relay in development.
            SmtpTls::None => Tls::None,
        };
        // lettre's general builder; the `tls` set on it decides the encryption.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(smtp.timeout));
        if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.expose().to_owned()));
        }
        Ok(Self::Smtp(builder.build()))
    }

    /// Delivers a formatted message to the envelope's recipients.
    pub async fn deliver(&self, envelope: &Envelope, message: &[u8]) -> anyhow::Result<()> {
        match self {
            Self::Smtp(smtp) => smtp.send_raw(envelope, message).await.map(drop).context("SMTP"),
            Self::Outbox { files, dir } => {
                let id = files.send_raw(envelope, message).await.context("writing to the outbox")?;
                tracing::info!(path = %dir.join(format!("{id}.eml")).display(), "mail written to the development outbox");
                Ok(())
            }
        }
    }
}
