//! The SIP IO edge: UDP and TCP sockets, the clock, and the tasks around the sans-IO
//! `Endpoint` — routing inbound calls, RTP bridges, and outbound dialing.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::auth::DigestVerifier;
use super::dialog::{Peer, Transport};
use super::endpoint::{CallEnd, Dial, Endpoint, EndpointConfig, Event, Output, Progress};
use super::message::{MAX_MESSAGE_BYTES, SipMessage};
use super::policy::{Admission, Cidr, SourcePolicy};
use crate::telephony::dialer::{Dialer, OutboundCall};
use crate::telephony::leg::{CallLeg, Direction, HangupReason, LegInfo, leg_pair};
use crate::telephony::rtp::{BridgeControl, BridgeExit, PortPool, RtpSocket, run_bridge, voice};

/// Starts a call session on an answered leg.
pub type StartCall = Box<dyn FnOnce(CallLeg) + Send>;

/// What to do with an inbound call.
pub enum Routing {
    /// Answer, and hand the leg to this.
    Answer(StartCall),
    /// Refuse with this SIP status (404 unknown number, 480 paused agent, 500 store down).
    Reject { code: u16, reason: &'static str },
}

/// Where an outbound call stands, in call-status terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundStatus {
    Ringing,
    /// The trunk or callee refused or never answered: `busy`, `no-answer` or `failed`.
    Failed {
        status: &'static str,
        sip_code: u16,
    },
}

/// What the engine does with SIP calls: route inbound ones and follow outbound ones.
pub trait CallHandler: Send + Sync + 'static {
    /// Decides on an inbound call before it is answered.
    fn route(&self, info: LegInfo) -> BoxFuture<'static, Routing>;
    /// An outbound call progressed (not called for the answer itself).
    fn outbound_status(&self, call: &OutboundCall, status: OutboundStatus);
    /// The callee answered: run the call on this leg.
    fn outbound_answered(&self, call: OutboundCall, leg: CallLeg);
}

/// Settings of the SIP service (from `Config`).
#[derive(Clone)]
pub struct SipSettings {
    pub listen: SocketAddr,
    /// Address written in SDP and Contact when `listen` is a wildcard or behind NAT.
    pub public_ip: Option<IpAddr>,
    pub rtp_ports: (u16, u16),
    pub allowlist: Vec<Cidr>,
    pub invites_per_second: u32,
    /// Digest realm and users; no users means no challenge.
    pub realm: String,
    pub users: Vec<(String, String)>,
    pub trunk: Option<SocketAddr>,
    pub trunk_host: Option<String>,
    pub trunk_credentials: Option<(String, String)>,
    pub rtp_timeout: Duration,
    pub limits: SipLimits,
}

/// Bounds on what unauthenticated traffic can make the service hold or send.
#[derive(Debug, Clone)]
pub struct SipLimits {
    /// Accept SDP naming a private address from a public signalling source.
    pub allow_private_media: bool,
    /// Requests outside any dialog (OPTIONS, strays) per second per source; 0 disables.
    pub stray_requests_per_second: u32,
    /// Server transactions held at most.
    pub max_transactions: usize,
    pub tcp_max_connections: usize,
    pub tcp_max_per_source: usize,
    /// New TCP connections per second per source; 0 disables.
    pub tcp_connects_per_second: u32,
    /// A TCP connection that sends nothing for this long is closed.
    pub tcp_idle: Duration,
}

impl Default for SipLimits {
    fn default() -> Self {
        let config = crate::config::Config::default();
        SipLimits::from_config(&config)
    }
}

impl SipLimits {
    fn from_config(config: &crate::config::Config) -> Self {
        SipLimits {
            allow_private_media: config.sip_allow_private_media,
            stray_requests_per_second: config.sip_stray_request_rate,
            max_transactions: config.sip_max_transactions,
            tcp_max_connections: config.sip_tcp_max_connections,
            tcp_max_per_source: config.sip_tcp_max_per_source,
            tcp_connects_per_second: config.sip_tcp_connect_rate,
            tcp_idle: Duration::from_secs(config.sip_tcp_idle_secs),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("BOLTCALL_SIP_ALLOWLIST: {0}")]
    Allowlist(String),
    #[error("BOLTCALL_SIP_USERS: expected user:password, got {0:?}")]
    User(String),
}

impl SipSettings {
    pub fn from_config(config: &crate::config::Config) -> Result<Self, SettingsError> {
        let allowlist = config
            .sip_allowlist
            .iter()
            .map(|c| c.parse::<Cidr>().map_err(SettingsError::Allowlist))
            .collect::<Result<_, _>>()?;
        let users = config
            .sip_users
            .iter()
            .map(|pair| {
                pair.split_once(':')
                    .filter(|(u, p)| !u.is_empty() && !p.is_empty())
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .ok_or_else(|| SettingsError::User(pair.clone()))
            })
            .collect::<Result<_, _>>()?;
        let trunk_credentials = match (&config.sip_trunk_username, &config.sip_trunk_password) {
            (Some(user), Some(password)) => Some((user.clone(), password.clone())),
            _ => None,
        };
        Ok(SipSettings {
            listen: config.sip_addr,
            public_ip: config.sip_public_ip,
            rtp_ports: config.rtp_ports,
            allowlist,
            invites_per_second: config.sip_invite_rate,
            realm: config.sip_realm.clone(),
            users,
            trunk: config.sip_trunk,
            trunk_host: None,
            trunk_credentials,
            rtp_timeout: Duration::from_secs(config.rtp_timeout_secs),
            limits: SipLimits::from_config(config),
        })
    }
}

/// Maps a final SIP failure to the call status the API reports.
pub fn failure_status(code: u16) -> &'static str {
    match code {
        486 | 600 => "busy",
        408 | 480 | 487 | 603 => "no-answer",
        _ => "failed",
    }
}

enum Command {
    Routed {
        call_id: String,
        info: LegInfo,
        routing: Routing,
    },
    Bridge {
        call_id: String,
        exit: BridgeExit,
    },
    Dial(OutboundCall),
    Stream {
        peer: SocketAddr,
        bytes: Vec<u8>,
    },
    StreamOpened {
        peer: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    StreamClosed {
        peer: SocketAddr,
    },
}

/// Binds UDP and TCP on one port. With port 0 the port UDP picks may be taken for TCP
/// (by another listener or an outgoing connection's ephemeral port), so a few fresh
/// picks are tried before giving up; a named port is bound once.
async fn bind_udp_and_tcp(listen: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    const PICKS: usize = 16;
    let mut attempt = 0;
    loop {
        let udp = UdpSocket::bind(listen).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if listen.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => {
                attempt += 1;
                if attempt == PICKS {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// A running SIP service. Dropping it stops the listener (calls in progress end).
pub struct SipService {
    local_addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    transactions: Arc<AtomicUsize>,
}

impl Drop for SipService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SipService {
    /// Binds UDP and TCP on `settings.listen` (port 0 picks a free port for both).
    pub async fn start(settings: SipSettings, handler: Arc<dyn CallHandler>) -> io::Result<Self> {
        let (udp, tcp) = bind_udp_and_tcp(settings.listen).await?;
        let local = udp.local_addr()?;
        let advertised = SocketAddr::new(settings.public_ip.unwrap_or(local.ip()), local.port());
        let digest = (!settings.users.is_empty()).then(|| {
            DigestVerifier::new(
                settings.realm.clone(),
                settings.users.clone(),
                format!("{:032x}", rand::random::<u128>()),
            )
        });
        let config = EndpointConfig {
            local_addr: advertised,
            codecs: voice::SUPPORTED.to_vec(),
            policy: SourcePolicy::new(settings.allowlist.clone(), settings.invites_per_second),
            stray_requests: SourcePolicy::new(
                Vec::new(),
                settings.limits.stray_requests_per_second,
            ),
            max_transactions: settings.limits.max_transactions,
            allow_private_media: settings.limits.allow_private_media,
            digest,
            trunk_credentials: settings.trunk_credentials.clone(),
        };
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let endpoint = Endpoint::new(config, Instant::now().into_std(), unix);
        let (tx, rx) = mpsc::channel(1024);
        let ports = PortPool::new(settings.rtp_ports.0, settings.rtp_ports.1);
        let transactions = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            endpoint,
            udp,
            streams: HashMap::new(),
            tcp_sources: HashMap::new(),
            tcp_open: 0,
            tcp_connects: SourcePolicy::new(Vec::new(), settings.limits.tcp_connects_per_second),
            transactions: transactions.clone(),
            calls: HashMap::new(),
            unacknowledged: HashMap::new(),
            outbound: HashMap::new(),
            handler,
            ports: Arc::new(ports),
            media_ip: advertised.ip(),
            settings,
            commands: tx.clone(),
        };
        let task = tokio::spawn(worker.run(rx, tcp));
        tracing::info!("SIP listening on udp+tcp {local}");
        Ok(SipService {
            local_addr: local,
            commands: tx,
            task,
            transactions,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SIP transactions held right now (as of the last message handled).
    pub fn transactions(&self) -> usize {
        self.transactions.load(Ordering::Relaxed)
    }

    /// A `Dialer` placing live outbound calls through the configured trunk.
    pub fn dialer(&self) -> SipDialer {
        SipDialer {
            commands: self.commands.clone(),
        }
    }
}

/// Places outbound calls through the SIP service.
#[derive(Clone)]
pub struct SipDialer {
    commands: mpsc::Sender<Command>,
}

impl Dialer for SipDialer {
    fn dial(&self, call: OutboundCall) {
        if let Err(err) = self.commands.try_send(Command::Dial(call)) {
            tracing::error!("SIP service cannot take the outbound call: {err}");
        }
    }
}

struct ActiveCall {
    control: mpsc::Sender<BridgeControl>,
}

/// An answered inbound call waiting for its ACK: no RTP and no session until the caller
/// proves it saw our 200 (a forged INVITE never does).
struct Unacknowledged {
    socket: RtpSocket,
    media: super::sdp::NegotiatedMedia,
    signalling_ip: IpAddr,
    info: LegInfo,
    start: StartCall,
}

struct PendingOutbound {
    call: OutboundCall,
    socket: RtpSocket,
}

struct Worker {
    endpoint: Endpoint,
    udp: UdpSocket,
    streams: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    /// Open TCP connections per source IP, and in all.
    tcp_sources: HashMap<IpAddr, usize>,
    tcp_open: usize,
    tcp_connects: SourcePolicy,
    transactions: Arc<AtomicUsize>,
    calls: HashMap<String, ActiveCall>,
    unacknowledged: HashMap<String, Unacknowledged>,
    outbound: HashMap<String, PendingOutbound>,
    handler: Arc<dyn CallHandler>,
    ports: Arc<PortPool>,
    media_ip: IpAddr,
    settings: SipSettings,
    commands: mpsc::Sender<Command>,
}

impl Worker {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, tcp: TcpListener) {
        let mut buf = vec![0u8; MAX_MESSAGE_BYTES];
        let far = Duration::from_secs(3600);
        loop {
            let deadline = self
                .endpoint
                .poll_timeout()
                .map_or_else(|| Instant::now() + far, Instant::from_std);
            tokio::select! {
                received = self.udp.recv_from(&mut buf) => {
                    let Ok((n, from)) = received else { continue };
                    let peer = Peer { addr: from, transport: Transport::Udp };
                    self.endpoint.handle_bytes(&buf[..n], peer, Instant::now().into_std());
                }
                accepted = tcp.accept() => {
                    if let Ok((stream, from)) = accepted {
                        self.accept_stream(stream, from);
                    }
                }
                Some(command) = commands.recv() => self.command(command).await,
                _ = sleep_until(deadline) => self.endpoint.handle_timeout(Instant::now().into_std()),
            }
            self.flush().await;
            self.transactions
                .store(self.endpoint.transactions(), Ordering::Relaxed);
        }
    }

    /// Serves a new TCP connection unless its source connects too often or it would pass
    /// the total or per-source cap.
    fn accept_stream(&mut self, stream: TcpStream, from: SocketAddr) {
        let now = Instant::now().into_std();
        if self.tcp_connects.admit(from.ip(), now) != Admission::Allowed {
            tracing::debug!(%from, "SIP TCP connection refused: connecting too often");
            return; // dropping the stream closes it
        }
        let limits = &self.settings.limits;
        let per_source = self.tcp_sources.entry(from.ip()).or_default();
        if self.tcp_open >= limits.tcp_max_connections || *per_source >= limits.tcp_max_per_source {
            if *per_source == 0 {
                self.tcp_sources.remove(&from.ip());
            }
            tracing::debug!(%from, "SIP TCP connection refused: connection cap reached");
            return;
        }
        *per_source += 1;
        self.tcp_open += 1;
        let idle = limits.tcp_idle;
        tokio::spawn(serve_stream(stream, from, idle, self.commands.clone()));
    }

    async fn command(&mut self, command: Command) {
        let now = Instant::now().into_std();
        match command {
            Command::Stream { peer, bytes } => {
                let peer = Peer {
                    addr: peer,
                    transport: Transport::Tcp,
                };
                self.endpoint.handle_bytes(&bytes, peer, now);
            }
            Command::StreamOpened { peer, writer } => {
                self.streams.insert(peer, writer);
            }
            Command::StreamClosed { peer } => {
                self.streams.remove(&peer);
                self.tcp_open = self.tcp_open.saturating_sub(1);
                if let Some(count) = self.tcp_sources.get_mut(&peer.ip()) {
                    *count -= 1;
                    if *count == 0 {
                        self.tcp_sources.remove(&peer.ip());
                    }
                }
            }
            Command::Routed {
                call_id,
                info,
                routing,
            } => self.routed(call_id, info, routing).await,
            Command::Bridge { call_id, exit } => match exit {
                BridgeExit::Transfer(target) => {
                    if let Err(err) = self.endpoint.transfer(&call_id, &target, now) {
                        tracing::warn!(call_id, "transfer refused: {err}");
                    }
                }
                BridgeExit::LocalHangup | BridgeExit::MediaTimeout => {
                    self.calls.remove(&call_id);
                    let _ = self.endpoint.hangup(&call_id, now);
                }
                BridgeExit::Stopped => {}
            },
            Command::Dial(call) => self.dial(call).await,
        }
    }

    async fn routed(&mut self, call_id: String, info: LegInfo, routing: Routing) {
        let now = Instant::now().into_std();
        let start = match routing {
            Routing::Reject { code, reason } => {
                let _ = self.endpoint.reject(&call_id, code, reason, now);
                return;
            }
            Routing::Answer(start) => start,
        };
        let socket = match self.ports.bind(self.media_ip) {
            Ok(socket) => socket,
            Err(err) => {
                tracing::error!(call_id, "no RTP port: {err}");
                let _ = self
                    .endpoint
                    .reject(&call_id, 503, "Service Unavailable", now);
                return;
            }
        };
        let Ok(local_media) = socket.local_addr() else {
            let _ = self
                .endpoint
                .reject(&call_id, 500, "Server Internal Error", now);
            return;
        };
        let Some(media) = self.endpoint.media(&call_id) else {
            return; // cancelled while we were routing
        };
        let Some(signalling_ip) = self.endpoint.peer_ip(&call_id) else {
            return;
        };
        if self.endpoint.accept(&call_id, local_media, now).is_err() {
            return;
        }
        let waiting = Unacknowledged {
            socket,
            media,
            signalling_ip,
            info,
            start,
        };
        self.unacknowledged.insert(call_id, waiting);
    }

    /// The caller acknowledged our answer: start media and the call session.
    fn acknowledged(&mut self, call_id: String) {
        let Some(call) = self.unacknowledged.remove(&call_id) else {
            return; // a re-INVITE's ACK, or a call already running
        };
        let (leg, leg_end) = leg_pair(call.info);
        let control = self.spawn_bridge(
            &call_id,
            call.socket,
            call.media,
            call.signalling_ip,
            leg_end,
        );
        self.calls.insert(call_id, ActiveCall { control });
        (call.start)(leg);
    }

    fn spawn_bridge(
        &self,
        call_id: &str,
        socket: RtpSocket,
        media: super::sdp::NegotiatedMedia,
        signalling_ip: IpAddr,
        leg_end: crate::telephony::leg::LegEnd,
    ) -> mpsc::Sender<BridgeControl> {
        let (control_tx, control_rx) = mpsc::channel(8);
        let (exit_tx, mut exit_rx) = mpsc::channel(8);
        let timeout = self.settings.rtp_timeout;
        tokio::spawn(run_bridge(
            socket,
            media,
            signalling_ip,
            leg_end,
            control_rx,
            exit_tx,
            timeout,
        ));
        let commands = self.commands.clone();
        let call_id = call_id.to_string();
        tokio::spawn(async move {
            while let Some(exit) = exit_rx.recv().await {
                let command = Command::Bridge {
                    call_id: call_id.clone(),
                    exit,
                };
                if commands.send(command).await.is_err() {
                    break;
                }
            }
        });
        control_tx
    }

    async fn dial(&mut self, call: OutboundCall) {
        let now = Instant::now().into_std();
        let (Some(trunk), Some(socket)) =
            (self.settings.trunk, self.ports.bind(self.media_ip).ok())
        else {
            tracing::error!(
                call_id = call.call_id,
                "no SIP trunk configured or no RTP port"
            );
            let status = OutboundStatus::Failed {
                status: "failed",
                sip_code: 503,
            };
            self.handler.outbound_status(&call, status);
            return;
        };
        let Ok(local_media) = socket.local_addr() else {
            return;
        };
        let trunk_host = self
            .settings
            .trunk_host
            .clone()
            .unwrap_or_else(|| trunk.to_string());
        self.endpoint.dial(
            Dial {
                call_id: call.call_id.clone(),
                from_user: call.from.clone(),
                to_user: call.to.clone(),
                trunk: Peer {
                    addr: trunk,
                    transport: Transport::Udp,
                },
                trunk_host,
                local_media,
            },
            now,
        );
        self.outbound
            .insert(call.call_id.clone(), PendingOutbound { call, socket });
    }

    async fn flush(&mut self) {
        while let Some(output) = self.endpoint.poll_output() {
            match output {
                Output::Send { peer, bytes } => match peer.transport {
                    Transport::Udp => {
                        let _ = self.udp.send_to(&bytes, peer.addr).await;
                    }
                    Transport::Tcp => {
                        if let Some(writer) = self.streams.get(&peer.addr) {
                            let _ = writer.try_send(bytes);
                        }
                    }
                },
                Output::Event(event) => self.event(event),
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Incoming(call) => {
                let info = LegInfo {
                    transport: "sip",
                    carrier_call_id: call.call_id.clone(),
                    from: call.from.clone(),
                    to: call.to.clone(),
                    direction: Direction::Inbound,
                    parameters: call.parameters.clone(),
                    carrier_detects_machine: false,
                    // The bridge sends keys as RFC 4733 events when the peer takes them.
                    dtmf_out_of_band: call.media.dtmf.is_some(),
                    // The RTP bridge fills the agent's quiet periods with silence itself.
                    continuous_audio: false,
                };
                let routing = self.handler.route(info.clone());
                let commands = self.commands.clone();
                tokio::spawn(async move {
                    let routing = routing.await;
                    let command = Command::Routed {
                        call_id: call.call_id,
                        info,
                        routing,
                    };
                    let _ = commands.send(command).await;
                });
            }
            Event::Acknowledged { call_id } => self.acknowledged(call_id),
            Event::MediaChanged { call_id, media } => {
                if let Some(call) = self.calls.get(&call_id) {
                    let _ = call.control.try_send(BridgeControl::Media(media));
                }
            }
            Event::Ended { call_id, end } => {
                let reason = match end {
                    CallEnd::RemoteBye | CallEnd::Cancelled => HangupReason::Remote,
                    CallEnd::Unreachable => {
                        HangupReason::TransportError("peer stopped answering".into())
                    }
                };
                // Ended before its ACK: it never started; dropping it frees the RTP port.
                self.unacknowledged.remove(&call_id);
                if let Some(call) = self.calls.remove(&call_id) {
                    let _ = call.control.try_send(BridgeControl::Stop(reason));
                }
            }
            Event::TransferDone { call_id, success } => {
                tracing::info!(call_id, success, "blind transfer finished");
                if success && let Some(call) = self.calls.remove(&call_id) {
                    let _ = call
                        .control
                        .try_send(BridgeControl::Stop(HangupReason::Local));
                }
            }
            Event::Outbound { call_id, progress } => self.outbound_progress(call_id, progress),
        }
    }

    fn outbound_progress(&mut self, call_id: String, progress: Progress) {
        match progress {
            Progress::Ringing { .. } => {
                if let Some(pending) = self.outbound.get(&call_id) {
                    self.handler
                        .outbound_status(&pending.call, OutboundStatus::Ringing);
                }
            }
            Progress::Failed { code } => {
                if let Some(pending) = self.outbound.remove(&call_id) {
                    let status = OutboundStatus::Failed {
                        status: failure_status(code),
                        sip_code: code,
                    };
                    self.handler.outbound_status(&pending.call, status);
                }
            }
            Progress::Answered { media } => {
                let Some(pending) = self.outbound.remove(&call_id) else {
                    return;
                };
                let info = LegInfo {
                    transport: "sip",
                    carrier_call_id: call_id.clone(),
                    from: pending.call.from.clone(),
                    to: pending.call.to.clone(),
                    direction: Direction::Outbound,
                    parameters: Vec::new(),
                    carrier_detects_machine: false,
                    dtmf_out_of_band: media.dtmf.is_some(),
                    continuous_audio: false,
                };
                let (leg, leg_end) = leg_pair(info);
                let trunk_ip = self.endpoint.peer_ip(&call_id).unwrap_or(media.remote.ip());
                let control = self.spawn_bridge(&call_id, pending.socket, media, trunk_ip, leg_end);
                self.calls.insert(call_id, ActiveCall { control });
                self.handler.outbound_answered(pending.call, leg);
            }
        }
    }
}

/// Reads framed SIP messages off one TCP connection and writes our messages back; closes it
/// after `idle` without a byte from the peer.
async fn serve_stream(
    stream: TcpStream,
    peer: SocketAddr,
    idle: Duration,
    commands: mpsc::Sender<Command>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    if commands
        .send(Command::StreamOpened {
            peer,
            writer: out_tx,
        })
        .await
        .is_err()
    {
        return;
    }
    // The writer ends once the worker forgets this connection and drops its sender.
    tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    'read: loop {
        let n = match tokio::time::timeout(idle, reader.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            // Keep-alive CRLFs between messages.
            let skip = buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            buf.drain(..skip);
            match SipMessage::parse_stream(&buf) {
                Ok(Some((_, used))) => {
                    let bytes: Vec<u8> = buf.drain(..used).collect();
                    if commands
                        .send(Command::Stream { peer, bytes })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(None) => break,
                // Framing is lost: answer what we can and drop the connection.
                Err(_) => {
                    let bytes = std::mem::take(&mut buf);
                    let _ = commands.send(Command::Stream { peer, bytes }).await;
                    break 'read;
                }
            }
        }
    }
    let _ = commands.send(Command::StreamClosed { peer }).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[tokio::test]
    async fn udp_and_tcp_share_a_port_and_a_named_port_taken_for_tcp_is_refused() {
        let (udp, tcp) = bind_udp_and_tcp("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = bind_udp_and_tcp(taken.local_addr().unwrap()).await;
        assert_eq!(refused.unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn settings_come_from_the_environment() {
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "BOLTCALL_SIP_ALLOWLIST" => Some("10.0.0.0/8, 192.0.2.7".into()),
                "BOLTCALL_SIP_USERS" => Some("trunk:s3cret".into()),
                "BOLTCALL_SIP_TRUNK" => Some("192.0.2.1:5060".into()),
                "BOLTCALL_SIP_TRUNK_USERNAME" => Some("acct".into()),
                "BOLTCALL_SIP_TRUNK_PASSWORD" => Some("pw".into()),
                "BOLTCALL_RTP_TIMEOUT" => Some("12".into()),
                "BOLTCALL_SIP_ALLOW_PRIVATE_MEDIA" => Some("1".into()),
                "BOLTCALL_SIP_TCP_MAX_PER_SOURCE" => Some("4".into()),
                "BOLTCALL_SIP_TCP_IDLE_SECS" => Some("9".into()),
                _ => None,
            })
            .unwrap();
        let settings = SipSettings::from_config(&config).unwrap();
        assert_eq!(settings.allowlist.len(), 2);
        assert_eq!(
            settings.users,
            vec![("trunk".to_string(), "s3cret".to_string())]
        );
        assert_eq!(
            settings.trunk_credentials,
            Some(("acct".into(), "pw".into()))
        );
        assert_eq!(settings.rtp_timeout, Duration::from_secs(12));
        assert!(settings.limits.allow_private_media);
        assert_eq!(settings.limits.tcp_max_per_source, 4);
        assert_eq!(settings.limits.tcp_idle, Duration::from_secs(9));
        assert_eq!(settings.limits.max_transactions, 10_000, "the default");
        config.sip_users = vec!["nopassword".into()];
        assert!(SipSettings::from_config(&config).is_err());
        config.sip_users.clear();
        config.sip_allowlist = vec!["10.0.0.0/99".into()];
        assert!(SipSettings::from_config(&config).is_err());
    }

    #[test]
    fn sip_failures_map_to_call_statuses() {
        assert_eq!(failure_status(486), "busy");
        assert_eq!(failure_status(408), "no-answer");
        assert_eq!(failure_status(487), "no-answer");
        assert_eq!(failure_status(503), "failed");
    }
}
