//! The broker connection: rumqttc's MQTT 5 event loop, polled by its own task (so its
//! future is never cancelled half-way by the publisher's `select!`), reconnecting with
//! backoff forever, and reporting what matters to the publisher as [`Link`] events.
//!
//! Nothing queued for one connection is ever sent on the next: after every failure the
//! loop's own pending requests are discarded (`clean_start` sessions, so the broker has
//! none either). What must survive a reconnect — the current state, fresh events — is
//! the publisher's to resend.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, LastWill, Packet, PubAckReason};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::MqttError;
use super::config::{MqttConfig, TlsConfig};

/// First reconnect delay; doubled after each failure up to [`BACKOFF_MAX`].
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest reconnect delay.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// TCP + TLS + CONNACK must complete within this (s).
const CONNECT_TIMEOUT_S: u64 = 5;
/// Largest packet the broker may send us: a bigger retained message on a subscribed topic
/// must not be able to break every connection (the broker drops it instead, MQTT 5 §3.1.2.11.9).
const MAX_INCOMING_PACKET: u32 = 64 * 1024;

/// What the publisher hears from the connection.
#[derive(Debug)]
pub(crate) enum Link {
    /// CONNACK accepted: a new session.
    Connected,
    /// A QoS 1 publish was written with this packet id (in the order they were handed
    /// to the client).
    Written(u16),
    /// The broker acknowledged a publish; `problem` when its reason code is a refusal.
    Acked {
        /// Packet id.
        pkid: u16,
        /// Why it was refused.
        problem: Option<String>,
    },
    /// A message on a subscribed topic.
    Message {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
    },
    /// The connection failed or could not be made; the loop retries after a backoff.
    Lost {
        /// Why, for the status model ("fault: …" is added by the publisher).
        problem: String,
        /// Retrying will not help without a change (credentials, certificates).
        permanent: bool,
    },
    /// The DISCONNECT of a clean shutdown was written.
    Closed,
}

/// The broker options: client id, keep-alive, the Last Will (`P/status` = `offline`,
/// retained), credentials and TLS.
pub(crate) fn options(
    cfg: &MqttConfig,
    client_id: &str,
    status_topic: &str,
    password: Option<String>,
) -> Result<MqttOptions, MqttError> {
    let mut o = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    o.set_keep_alive(cfg.keep_alive);
    o.set_clean_start(true);
    o.set_connection_timeout(CONNECT_TIMEOUT_S);
    o.set_max_packet_size(Some(MAX_INCOMING_PACKET));
    o.set_last_will(LastWill::new(
        status_topic,
        "offline",
        QoS::AtLeastOnce,
        true,
        None,
    ));
    if let Some(user) = &cfg.username {
        o.set_credentials(user.clone(), password.unwrap_or_default());
    }
    if let Some(tls) = &cfg.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls_config(tls)?,
        )));
    }
    Ok(o)
}

/// rustls with the ring provider: the CA file's roots (or Mozilla's), and the client
/// certificate for mutual TLS.
pub(crate) fn tls_config(tls: &TlsConfig) -> Result<Arc<rustls::ClientConfig>, MqttError> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(f) => {
            let certs = CertificateDer::pem_file_iter(f)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| MqttError::Pem {
                    file: f.clone(),
                    detail: e.to_string(),
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(MqttError::Pem {
                    file: f.clone(),
                    detail: "no CA certificate in it".to_owned(),
                });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| MqttError::Tls(e.to_string()))?
    .with_root_certificates(roots);
    let config = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| MqttError::Pem {
                    file: cert.clone(),
                    detail: e.to_string(),
                })?;
            // Read through read_secret: the key must be private like every secret.
            let key_text = crate::config::read_secret(key).map_err(|e| MqttError::Pem {
                file: key.clone(),
                detail: format!("{e:#}"),
            })?;
            let key_der =
                PrivateKeyDer::from_pem_slice(key_text.as_bytes()).map_err(|e| MqttError::Pem {
                    file: key.clone(),
                    detail: e.to_string(),
                })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| MqttError::Tls(e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Why a connection failed, in words for the status model, and whether retrying can
/// help by itself.
pub(crate) fn describe(err: &ConnectionError, broker: &str) -> (String, bool) {
    match err {
        ConnectionError::ConnectionRefused(code) => {
            let permanent = matches!(
                code,
                ConnectReturnCode::BadUserNamePassword
                    | ConnectReturnCode::NotAuthorized
                    | ConnectReturnCode::BadAuthenticationMethod
                    | ConnectReturnCode::Banned
                    | ConnectReturnCode::ClientIdentifierNotValid
                    | ConnectReturnCode::BadClientId
            );
            (
                format!("broker {broker} refused the connection: {code:?}"),
                permanent,
            )
        }
        ConnectionError::Tls(e) => (format!("TLS with {broker} failed: {e}"), true),
        ConnectionError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            // rustls reports certificate problems through the I/O error of the handshake.
            (format!("TLS with {broker} failed: {e}"), true)
        }
        ConnectionError::Io(e) => (format!("broker {broker} unreachable: {e}"), false),
        ConnectionError::Timeout(_) => (
            format!("broker {broker} did not complete the connection within {CONNECT_TIMEOUT_S} s"),
            false,
        ),
        ConnectionError::NotConnAck(p) => (
            format!("broker {broker} answered the connection with {p:?}"),
            false,
        ),
        other => (format!("connection to {broker} lost: {other}"), false),
    }
}

/// A new client and its event loop. `cap` bounds rumqttc's request channel (the
/// publisher keeps its own window well below it).
pub(crate) fn client(options: MqttOptions, cap: usize) -> (AsyncClient, EventLoop) {
    AsyncClient::new(options, cap)
}

/// Polls the event loop until `stop`, reporting to `tx`; reconnects with backoff after
/// every failure. While `shutdown` is set it does not reconnect (it only lets a pending
/// DISCONNECT out).
pub(crate) async fn drive(
    mut el: EventLoop,
    tx: mpsc::Sender<Link>,
    broker: String,
    stop: CancellationToken,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = BACKOFF_MIN;
    loop {
        let polled = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            polled = el.poll() => polled,
        };
        let link = match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_MIN;
                Some(Link::Connected)
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => Some(Link::Acked {
                pkid: ack.pkid,
                problem: match ack.reason {
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers => None,
                    other => Some(format!("{other:?}")),
                },
            }),
            Ok(Event::Incoming(Packet::Publish(p))) => Some(Link::Message {
                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                payload: p.payload.to_vec(),
            }),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Some(Link::Written(pkid)),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                let _ = tx.send(Link::Closed).await;
                return Ok(());
            }
            Ok(_) => None,
            Err(err) => {
                let (problem, permanent) = describe(&err, &broker);
                if tx.send(Link::Lost { problem, permanent }).await.is_err() {
                    return Ok(());
                }
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                // Whatever was queued for the lost connection (in flight, or handed to
                // the client while it was failing) is discarded, never sent late on the
                // next one; the publisher resends what is still current.
                el.clean();
                el.pending.clear();
                None
            }
        };
        if let Some(link) = link
            && tx.send(link).await.is_err()
        {
            return Ok(());
        }
    }
}
