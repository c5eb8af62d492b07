//! Operator configuration: `boltcall.toml`, overridden by `BOLTCALL_*` environment variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::agent::turn::TurnConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid value for {name}: {value:?} ({reason})")]
    Invalid {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Every setting of the engine. Field names are the `boltcall.toml` keys; each has a
/// `BOLTCALL_<UPPER_NAME>` environment variable that wins over the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http_addr: SocketAddr,
    /// Base URL the world reaches us at; `http://` + `http_addr` when unset.
    pub public_url: Option<String>,
    pub database_url: String,
    pub sip_addr: SocketAddr,
    /// RTP port range, inclusive.
    pub rtp_ports: (u16, u16),
    /// Address written in SDP and Contact when `sip_addr` is a wildcard or behind NAT.
    pub sip_public_ip: Option<std::net::IpAddr>,
    /// The SIP trunk outbound calls go to (`HOST:PORT`, numeric host).
    pub sip_trunk: Option<SocketAddr>,
    /// Digest credentials we answer the trunk's challenges with.
    pub sip_trunk_username: Option<String>,
    pub sip_trunk_password: Option<String>,
    /// Sources (addresses or CIDR blocks) allowed to send INVITEs; empty allows all.
    pub sip_allowlist: Vec<String>,
    /// Digest realm for inbound challenges.
    pub sip_realm: String,
    /// `user:password` pairs inbound INVITEs must authenticate as; empty disables the challenge.
    pub sip_users: Vec<String>,
    /// INVITEs per second accepted from one source address (burst twice that); 0 is no limit.
    pub sip_invite_rate: u32,
    /// Seconds without RTP before a call is hung up as dead.
    pub rtp_timeout_secs: u64,
    /// SIP hardening: accept SDP naming a private media address from a public source.
    pub sip_allow_private_media: bool,
    /// Requests outside any dialog (OPTIONS, strays) per second per source; 0 is no limit.
    pub sip_stray_request_rate: u32,
    /// SIP server transactions held at most (new requests past it get 503).
    pub sip_max_transactions: usize,
    /// Open SIP TCP connections at most, in all and per source address.
    pub sip_tcp_max_connections: usize,
    pub sip_tcp_max_per_source: usize,
    /// New SIP TCP connections per second per source (burst twice that); 0 is no limit.
    pub sip_tcp_connect_rate: u32,
    /// Seconds a SIP TCP connection may stay silent before it is closed.
    pub sip_tcp_idle_secs: u64,
    pub webhook_allow_loopback: bool,
    /// Delays in seconds before each webhook retry; its length is the number of retries.
    pub webhook_retry_schedule: Vec<u64>,
    /// Seconds a webhook receiver has to answer before the attempt counts as failed.
    pub webhook_timeout_secs: u64,
    /// Days settled events (and their delivery records) are kept before being pruned.
    pub webhook_retention_days: u64,
    /// `false` only for benchmarks.
    pub rate_limit: bool,
    pub data_dir: PathBuf,
    pub llm_base_url: Option<String>,
    pub llm_api_key: Option<String>,
    pub llm_model: Option<String>,
    /// `offline`, `deepgram` or `openai`.
    pub stt: String,
    /// `piper`, `espeak`, `openai` or `elevenlabs`.
    pub tts: String,
    // Network speech providers. Keys come from the environment (`DEEPGRAM_API_KEY`,
    // `OPENAI_API_KEY`, `ELEVENLABS_API_KEY`); base URLs point tests and proxies elsewhere.
    pub deepgram_api_key: Option<String>,
    /// Deepgram's API root (`wss://` or `https://`; the live endpoint is `/v1/listen`).
    pub deepgram_base_url: String,
    pub deepgram_model: String,
    pub openai_api_key: Option<String>,
    /// OpenAI's API root for speech and transcription (ends in `/v1`).
    pub openai_base_url: String,
    pub openai_stt_model: String,
    pub openai_tts_model: String,
    pub elevenlabs_api_key: Option<String>,
    /// ElevenLabs' API root (`wss://` or `https://`).
    pub elevenlabs_base_url: String,
    pub elevenlabs_model: String,
    // The LLM brain's limits and what answers when the LLM cannot.
    /// `offline` (the offline dialogue policy), another model name on the same endpoint, or
    /// `none` (the agent apologises).
    pub llm_fallback: String,
    /// Milliseconds to connect to the LLM endpoint.
    pub llm_connect_timeout_ms: u64,
    /// Milliseconds from request to the first streamed token (or tool call).
    pub llm_first_token_timeout_ms: u64,
    /// Milliseconds a started stream may stay silent.
    pub llm_idle_timeout_ms: u64,
    /// Twilio auth token: when set, `X-Twilio-Signature` is required on the voice webhook.
    pub twilio_auth_token: Option<String>,
    /// Twilio account for messaging (REST Basic auth with `twilio_auth_token`).
    pub twilio_account_sid: Option<String>,
    /// Twilio REST base URL (tests point it at a local stand-in).
    pub twilio_api_base: String,
    /// Default sender of SMS/WhatsApp: a Twilio number, or (`twilio_messaging_service_sid`)
    /// a Messaging Service that picks one.
    pub twilio_messaging_from: Option<String>,
    pub twilio_messaging_service_sid: Option<String>,
    /// Directory where live calls' caller audio is saved as new fixtures.
    pub record_fixtures: Option<PathBuf>,
    /// Caller silence after speech before the caller's turn ends.
    pub endpointing_ms: u64,
    /// The same after words that form a whole turn (a question, a short answer).
    pub endpointing_complete_ms: u64,
    /// The same after words that stop mid-sentence ("my number is…").
    pub endpointing_incomplete_ms: u64,
    /// Whether the caller may talk over the greeting.
    pub greeting_interruptible: bool,
    /// Caller speech over the agent that pauses it until the words show whether it was an
    /// interruption.
    pub barge_in_ms: u64,
    /// Recognised words (not backchannels) over the agent that interrupt it.
    pub barge_in_words: usize,
    /// Silence before the agent asks "Are you still there?".
    pub idle_reprompt_secs: u64,
    /// Silence after that reprompt before the agent hangs up.
    pub idle_hangup_secs: u64,
    /// Calls are ended politely after this long.
    pub max_call_secs: u64,
    /// Synthesised sentences kept in memory, in MiB (0 turns the memory tier off).
    pub speech_cache_mb: usize,
    /// Synthesised sentences kept under `data_dir/speech-cache`, in MiB (0: none on disk).
    pub speech_cache_disk_mb: usize,
    /// Concurrent calls of this process (all workspaces, live and test) before new ones are
    /// refused.
    pub max_concurrent_calls: usize,
    /// Concurrent calls of one workspace before its new ones are refused.
    pub workspace_max_concurrent_calls: usize,
    /// Development only: accept unsigned Twilio requests when no auth token is set (without
    /// this or a token, the Twilio endpoints answer 403).
    pub twilio_allow_unsigned: bool,
    /// Open Twilio Media Streams WebSockets before new ones are refused with 503.
    pub twilio_max_streams: usize,
    // Carriers that place live outbound calls and stream media over WebSockets.
    /// Who places live outbound calls; unset: `Config::outbound_carrier` picks one.
    pub outbound_carrier: Option<OutboundCarrier>,
    /// Telnyx API v2 key (`Bearer`): call control commands and outbound calls.
    pub telnyx_api_key: Option<String>,
    /// Telnyx account's public key (base64 Ed25519) that signs its webhooks.
    pub telnyx_public_key: Option<String>,
    /// Telnyx Call Control application (connection) that places outbound calls.
    pub telnyx_connection_id: Option<String>,
    /// Telnyx REST base URL (tests point it at a local stand-in).
    pub telnyx_api_base: String,
    /// Vonage Voice application id: the `application_id` of the JWTs we sign and verify.
    pub vonage_application_id: Option<String>,
    /// PEM file of the Vonage application's private key (RS256 JWTs for the Voice API).
    pub vonage_private_key_path: Option<PathBuf>,
    /// Vonage signature secret: HS256 key of the JWT on its answer and event webhooks.
    pub vonage_signature_secret: Option<String>,
    /// Vonage REST base URL (tests point it at a local stand-in).
    pub vonage_api_base: String,
    // Shutdown, crash recovery and HTTP limits.
    /// Names this engine in the calls it runs, so a restart finds its own interrupted calls;
    /// give each engine sharing a PostgreSQL database its own.
    pub instance_id: String,
    /// On SIGTERM live calls may finish for this long before the agent says goodbye.
    pub shutdown_grace_secs: u64,
    /// A client must send a request's headers within this.
    pub http_header_timeout_secs: u64,
    /// A request must be answered within this (WebSocket calls are not bound by it).
    pub http_request_timeout_secs: u64,
    /// Open HTTP connections at most; more wait to be accepted.
    pub http_max_connections: usize,
}

impl Default for Config {
    fn default() -> Self {
        let turn = TurnConfig::default();
        Config {
            http_addr: "127.0.0.1:8080".parse().expect("literal address"),
            public_url: None,
            database_url: "sqlite://boltcall.db".into(),
            sip_addr: "127.0.0.1:5060".parse().expect("literal address"),
            rtp_ports: (20000, 29999),
            sip_public_ip: None,
            sip_trunk: None,
            sip_trunk_username: None,
            sip_trunk_password: None,
            sip_allowlist: Vec::new(),
            sip_realm: "boltcall".into(),
            sip_users: Vec::new(),
            sip_invite_rate: 20,
            rtp_timeout_secs: 30,
            sip_allow_private_media: false,
            sip_stray_request_rate: 50,
            sip_max_transactions: 10_000,
            sip_tcp_max_connections: 1024,
            sip_tcp_max_per_source: 32,
            sip_tcp_connect_rate: 10,
            sip_tcp_idle_secs: 300,
            webhook_allow_loopback: false,
            // 8 attempts over about 23.6 hours, the first retry after 10 seconds.
            webhook_retry_schedule: vec![10, 60, 300, 1800, 7200, 21600, 54000],
            webhook_timeout_secs: 10,
            webhook_retention_days: 30,
            rate_limit: true,
            data_dir: PathBuf::from("./data"),
            llm_base_url: None,
            llm_api_key: None,
            llm_model: None,
            stt: "offline".into(),
            tts: "piper".into(),
            deepgram_api_key: None,
            deepgram_base_url: "wss://api.deepgram.com".into(),
            deepgram_model: "nova-3".into(),
            openai_api_key: None,
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_stt_model: "gpt-4o-mini-transcribe".into(),
            openai_tts_model: "gpt-4o-mini-tts".into(),
            elevenlabs_api_key: None,
            elevenlabs_base_url: "wss://api.elevenlabs.io".into(),
            elevenlabs_model: "eleven_flash_v2_5".into(),
            llm_fallback: "offline".into(),
            llm_connect_timeout_ms: 2_000,
            llm_first_token_timeout_ms: 1_500,
            llm_idle_timeout_ms: 3_000,
            twilio_auth_token: None,
            twilio_account_sid: None,
            twilio_api_base: "https://api.twilio.com".into(),
            twilio_messaging_from: None,
            twilio_messaging_service_sid: None,
            record_fixtures: None,
            endpointing_ms: turn.endpointing_ms,
            endpointing_complete_ms: turn.endpointing_complete_ms,
            endpointing_incomplete_ms: turn.endpointing_incomplete_ms,
            greeting_interruptible: turn.greeting_interruptible,
            barge_in_ms: turn.barge_in_speech_ms,
            barge_in_words: turn.barge_in_words,
            idle_reprompt_secs: turn.idle_reprompt_ms / 1000,
            idle_hangup_secs: turn.idle_hangup_ms / 1000,
            max_call_secs: turn.max_call_ms / 1000,
            speech_cache_mb: 64,
            speech_cache_disk_mb: 512,
            max_concurrent_calls: 200,
            workspace_max_concurrent_calls: 50,
            twilio_allow_unsigned: false,
            twilio_max_streams: 200,
            outbound_carrier: None,
            telnyx_api_key: None,
            telnyx_public_key: None,
            telnyx_connection_id: None,
            telnyx_api_base: "https://api.telnyx.com".into(),
            vonage_application_id: None,
            vonage_private_key_path: None,
            vonage_signature_secret: None,
            vonage_api_base: "https://api.nexmo.com".into(),
            instance_id: default_instance_id(),
            shutdown_grace_secs: 30,
            http_header_timeout_secs: 10,
            http_request_timeout_secs: 30,
            http_max_connections: 1024,
        }
    }
}

impl Config {
    /// Reads `path` if it exists (a missing default file is fine), then applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("boltcall.toml"), false),
        };
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Config::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Applies `BOLTCALL_*` variables read through `var` (a function so tests need not touch
    /// the process environment).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        if let Some(v) = get("BOLTCALL_HTTP_ADDR") {
            self.http_addr = parse_addr("BOLTCALL_HTTP_ADDR", &v)?;
        }
        if let Some(v) = get("BOLTCALL_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("BOLTCALL_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("BOLTCALL_SIP_ADDR") {
            self.sip_addr = parse_addr("BOLTCALL_SIP_ADDR", &v)?;
        }
        if let Some(v) = get("BOLTCALL_RTP_PORTS") {
            self.rtp_ports = parse_port_range(&v)?;
        }
        if let Some(v) = get("BOLTCALL_SIP_PUBLIC_IP") {
            self.sip_public_ip = Some(v.parse().map_err(|_| ConfigError::Invalid {
                name: "BOLTCALL_SIP_PUBLIC_IP",
                value: v.clone(),
                reason: "expected an IP address",
            })?);
        }
        if let Some(v) = get("BOLTCALL_SIP_TRUNK") {
            self.sip_trunk = Some(parse_addr("BOLTCALL_SIP_TRUNK", &v)?);
        }
        if let Some(v) = get("BOLTCALL_SIP_TRUNK_USERNAME") {
            self.sip_trunk_username = Some(v);
        }
        if let Some(v) = get("BOLTCALL_SIP_TRUNK_PASSWORD") {
            self.sip_trunk_password = Some(v);
        }
        if let Some(v) = get("BOLTCALL_SIP_ALLOWLIST") {
            self.sip_allowlist = split_list(&v);
        }
        if let Some(v) = get("BOLTCALL_SIP_REALM") {
            self.sip_realm = v;
        }
        if let Some(v) = get("BOLTCALL_SIP_USERS") {
            self.sip_users = split_list(&v);
        }
        if let Some(v) = get("BOLTCALL_SIP_INVITE_RATE") {
            self.sip_invite_rate = parse_number("BOLTCALL_SIP_INVITE_RATE", &v)?;
        }
        if let Some(v) = get("BOLTCALL_RTP_TIMEOUT") {
            self.rtp_timeout_secs = parse_number("BOLTCALL_RTP_TIMEOUT", &v)?;
        }
        if let Some(v) = get("BOLTCALL_SIP_ALLOW_PRIVATE_MEDIA") {
            self.sip_allow_private_media = parse_flag("BOLTCALL_SIP_ALLOW_PRIVATE_MEDIA", &v)?;
        }
        if let Some(v) = get("BOLTCALL_SIP_STRAY_REQUEST_RATE") {
            self.sip_stray_request_rate = parse_number("BOLTCALL_SIP_STRAY_REQUEST_RATE", &v)?;
        }
        if let Some(v) = get("BOLTCALL_SIP_MAX_TRANSACTIONS") {
            self.sip_max_transactions = parse_number("BOLTCALL_SIP_MAX_TRANSACTIONS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_SIP_TCP_MAX_CONNECTIONS") {
            self.sip_tcp_max_connections = parse_number("BOLTCALL_SIP_TCP_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_SIP_TCP_MAX_PER_SOURCE") {
            self.sip_tcp_max_per_source = parse_number("BOLTCALL_SIP_TCP_MAX_PER_SOURCE", &v)?;
        }
        if let Some(v) = get("BOLTCALL_SIP_TCP_CONNECT_RATE") {
            self.sip_tcp_connect_rate = parse_number("BOLTCALL_SIP_TCP_CONNECT_RATE", &v)?;
        }
        if let Some(v) = get("BOLTCALL_SIP_TCP_IDLE_SECS") {
            self.sip_tcp_idle_secs = parse_number("BOLTCALL_SIP_TCP_IDLE_SECS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_WEBHOOK_ALLOW_LOOPBACK") {
            self.webhook_allow_loopback = parse_flag("BOLTCALL_WEBHOOK_ALLOW_LOOPBACK", &v)?;
        }
        if let Some(v) = get("BOLTCALL_WEBHOOK_RETRY_SCHEDULE") {
            self.webhook_retry_schedule = split_list(&v)
                .iter()
                .map(|d| parse_number("BOLTCALL_WEBHOOK_RETRY_SCHEDULE", d))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = get("BOLTCALL_WEBHOOK_TIMEOUT") {
            self.webhook_timeout_secs = parse_number("BOLTCALL_WEBHOOK_TIMEOUT", &v)?;
        }
        if let Some(v) = get("BOLTCALL_WEBHOOK_RETENTION_DAYS") {
            self.webhook_retention_days = parse_number("BOLTCALL_WEBHOOK_RETENTION_DAYS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_RATE_LIMIT") {
            self.rate_limit = parse_flag("BOLTCALL_RATE_LIMIT", &v)?;
        }
        if let Some(v) = get("BOLTCALL_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("BOLTCALL_LLM_BASE_URL") {
            self.llm_base_url = Some(v);
        }
        if let Some(v) = get("BOLTCALL_LLM_API_KEY").or_else(|| get("OPENAI_API_KEY")) {
            self.llm_api_key = Some(v);
        }
        if let Some(v) = get("BOLTCALL_LLM_MODEL") {
            self.llm_model = Some(v);
        }
        if let Some(v) = get("BOLTCALL_STT") {
            self.stt = v;
        }
        if let Some(v) = get("BOLTCALL_TTS") {
            self.tts = v;
        }
        for (names, value) in [
            (
                &["BOLTCALL_DEEPGRAM_API_KEY", "DEEPGRAM_API_KEY"][..],
                &mut self.deepgram_api_key,
            ),
            (
                &["BOLTCALL_OPENAI_API_KEY", "OPENAI_API_KEY"][..],
                &mut self.openai_api_key,
            ),
            (
                &["BOLTCALL_ELEVENLABS_API_KEY", "ELEVENLABS_API_KEY"][..],
                &mut self.elevenlabs_api_key,
            ),
        ] {
            if let Some(v) = names.iter().find_map(|name| get(name)) {
                *value = Some(v);
            }
        }
        for (name, value) in [
            ("BOLTCALL_DEEPGRAM_BASE_URL", &mut self.deepgram_base_url),
            ("BOLTCALL_DEEPGRAM_MODEL", &mut self.deepgram_model),
            ("BOLTCALL_OPENAI_BASE_URL", &mut self.openai_base_url),
            ("BOLTCALL_OPENAI_STT_MODEL", &mut self.openai_stt_model),
            ("BOLTCALL_OPENAI_TTS_MODEL", &mut self.openai_tts_model),
            (
                "BOLTCALL_ELEVENLABS_BASE_URL",
                &mut self.elevenlabs_base_url,
            ),
            ("BOLTCALL_ELEVENLABS_MODEL", &mut self.elevenlabs_model),
            ("BOLTCALL_LLM_FALLBACK", &mut self.llm_fallback),
        ] {
            if let Some(v) = get(name) {
                *value = v;
            }
        }
        for (name, value) in [
            (
                "BOLTCALL_LLM_CONNECT_TIMEOUT_MS",
                &mut self.llm_connect_timeout_ms,
            ),
            (
                "BOLTCALL_LLM_FIRST_TOKEN_TIMEOUT_MS",
                &mut self.llm_first_token_timeout_ms,
            ),
            (
                "BOLTCALL_LLM_IDLE_TIMEOUT_MS",
                &mut self.llm_idle_timeout_ms,
            ),
        ] {
            if let Some(v) = get(name) {
                *value = parse_number(name, &v)?;
            }
        }
        if let Some(v) = get("BOLTCALL_TWILIO_AUTH_TOKEN").or_else(|| get("TWILIO_AUTH_TOKEN")) {
            self.twilio_auth_token = Some(v);
        }
        if let Some(v) = get("BOLTCALL_TWILIO_ACCOUNT_SID").or_else(|| get("TWILIO_ACCOUNT_SID")) {
            self.twilio_account_sid = Some(v);
        }
        if let Some(v) = get("BOLTCALL_TWILIO_API_BASE") {
            self.twilio_api_base = v;
        }
        if let Some(v) = get("BOLTCALL_TWILIO_MESSAGING_FROM") {
            // A Messaging Service SID is accepted here too, as the operator docs say.
            if v.starts_with("MG") {
                self.twilio_messaging_service_sid = Some(v);
            } else {
                self.twilio_messaging_from = Some(v);
            }
        }
        if let Some(v) = get("BOLTCALL_TWILIO_MESSAGING_SERVICE_SID") {
            self.twilio_messaging_service_sid = Some(v);
        }
        if let Some(v) = get("BOLTCALL_RECORD_FIXTURES") {
            self.record_fixtures = Some(PathBuf::from(v));
        }
        if let Some(v) = get("BOLTCALL_ENDPOINTING_MS") {
            self.endpointing_ms = parse_number("BOLTCALL_ENDPOINTING_MS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_ENDPOINTING_COMPLETE_MS") {
            self.endpointing_complete_ms = parse_number("BOLTCALL_ENDPOINTING_COMPLETE_MS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_ENDPOINTING_INCOMPLETE_MS") {
            self.endpointing_incomplete_ms =
                parse_number("BOLTCALL_ENDPOINTING_INCOMPLETE_MS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_GREETING_INTERRUPTIBLE") {
            self.greeting_interruptible = parse_flag("BOLTCALL_GREETING_INTERRUPTIBLE", &v)?;
        }
        if let Some(v) = get("BOLTCALL_BARGE_IN_MS") {
            self.barge_in_ms = parse_number("BOLTCALL_BARGE_IN_MS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_BARGE_IN_WORDS") {
            self.barge_in_words = parse_number("BOLTCALL_BARGE_IN_WORDS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_IDLE_REPROMPT_SECS") {
            self.idle_reprompt_secs = parse_number("BOLTCALL_IDLE_REPROMPT_SECS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_IDLE_HANGUP_SECS") {
            self.idle_hangup_secs = parse_number("BOLTCALL_IDLE_HANGUP_SECS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_MAX_CALL_SECS") {
            self.max_call_secs = parse_number("BOLTCALL_MAX_CALL_SECS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_SPEECH_CACHE_MB") {
            self.speech_cache_mb = parse_number("BOLTCALL_SPEECH_CACHE_MB", &v)?;
        }
        if let Some(v) = get("BOLTCALL_SPEECH_CACHE_DISK_MB") {
            self.speech_cache_disk_mb = parse_number("BOLTCALL_SPEECH_CACHE_DISK_MB", &v)?;
        }
        if let Some(v) = get("BOLTCALL_MAX_CONCURRENT_CALLS") {
            self.max_concurrent_calls = parse_number("BOLTCALL_MAX_CONCURRENT_CALLS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS") {
            self.workspace_max_concurrent_calls =
                parse_number("BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_TWILIO_ALLOW_UNSIGNED") {
            self.twilio_allow_unsigned = parse_flag("BOLTCALL_TWILIO_ALLOW_UNSIGNED", &v)?;
        }
        if let Some(v) = get("BOLTCALL_TWILIO_MAX_STREAMS") {
            self.twilio_max_streams = parse_number("BOLTCALL_TWILIO_MAX_STREAMS", &v)?;
        }
        if let Some(v) = get("BOLTCALL_OUTBOUND_CARRIER") {
            self.outbound_carrier = Some(OutboundCarrier::parse(&v)?);
        }
        for (name, value) in [
            ("BOLTCALL_TELNYX_API_KEY", &mut self.telnyx_api_key),
            ("BOLTCALL_TELNYX_PUBLIC_KEY", &mut self.telnyx_public_key),
            (
                "BOLTCALL_TELNYX_CONNECTION_ID",
                &mut self.telnyx_connection_id,
            ),
            (
                "BOLTCALL_VONAGE_APPLICATION_ID",
                &mut self.vonage_application_id,
            ),
            (
                "BOLTCALL_VONAGE_SIGNATURE_SECRET",
                &mut self.vonage_signature_secret,
            ),
        ] {
            if let Some(v) = get(name) {
                *value = Some(v);
            }
        }
        if let Some(v) = get("BOLTCALL_TELNYX_API_BASE") {
            self.telnyx_api_base = v;
        }
        if let Some(v) = get("BOLTCALL_VONAGE_PRIVATE_KEY_PATH") {
            self.vonage_private_key_path = Some(PathBuf::from(v));
        }
        if let Some(v) = get("BOLTCALL_VONAGE_API_BASE") {
            self.vonage_api_base = v;
        }
        if let Some(v) = get("BOLTCALL_INSTANCE_ID") {
            self.instance_id = v;
        }
        for (name, value) in [
            (
                "BOLTCALL_SHUTDOWN_GRACE_SECS",
                &mut self.shutdown_grace_secs,
            ),
            (
                "BOLTCALL_HTTP_HEADER_TIMEOUT_SECS",
                &mut self.http_header_timeout_secs,
            ),
            (
                "BOLTCALL_HTTP_REQUEST_TIMEOUT_SECS",
                &mut self.http_request_timeout_secs,
            ),
        ] {
            if let Some(v) = get(name) {
                *value = parse_number(name, &v)?;
            }
        }
        if let Some(v) = get("BOLTCALL_HTTP_MAX_CONNECTIONS") {
            self.http_max_connections = parse_number("BOLTCALL_HTTP_MAX_CONNECTIONS", &v)?;
        }
        Ok(())
    }

    /// The turn-taking settings of a call that opens with `greeting`.
    pub fn turn_config(&self, greeting: Option<String>) -> TurnConfig {
        TurnConfig {
            greeting,
            greeting_interruptible: self.greeting_interruptible,
            endpointing_ms: self.endpointing_ms,
            endpointing_complete_ms: self.endpointing_complete_ms,
            endpointing_incomplete_ms: self.endpointing_incomplete_ms,
            barge_in_speech_ms: self.barge_in_ms,
            barge_in_words: self.barge_in_words,
            idle_reprompt_ms: self.idle_reprompt_secs * 1000,
            idle_hangup_ms: self.idle_hangup_secs * 1000,
            max_call_ms: self.max_call_secs * 1000,
            ..TurnConfig::default()
        }
    }

    /// Who places live outbound calls: `outbound_carrier` when set; otherwise the SIP trunk
    /// when one is configured, else the first carrier with credentials (Twilio, Telnyx,
    /// Vonage). `None`: live outbound calls cannot be placed.
    pub fn outbound_carrier(&self) -> Option<OutboundCarrier> {
        if self.outbound_carrier.is_some() {
            return self.outbound_carrier;
        }
        if self.sip_trunk.is_some() {
            Some(OutboundCarrier::Sip)
        } else if self.twilio_account_sid.is_some() && self.twilio_auth_token.is_some() {
            Some(OutboundCarrier::Twilio)
        } else if self.telnyx_api_key.is_some() && self.telnyx_connection_id.is_some() {
            Some(OutboundCarrier::Telnyx)
        } else if self.vonage_application_id.is_some() && self.vonage_private_key_path.is_some() {
            Some(OutboundCarrier::Vonage)
        } else {
            None
        }
    }

    /// The base URL the world reaches us at, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.http_addr),
        }
    }
}

/// `BOLTCALL_OUTBOUND_CARRIER`: who places live outbound calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundCarrier {
    Sip,
    Twilio,
    Telnyx,
    Vonage,
}

impl OutboundCarrier {
    fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "sip" => Ok(Self::Sip),
            "twilio" => Ok(Self::Twilio),
            "telnyx" => Ok(Self::Telnyx),
            "vonage" => Ok(Self::Vonage),
            _ => Err(ConfigError::Invalid {
                name: "BOLTCALL_OUTBOUND_CARRIER",
                value: value.into(),
                reason: "expected sip, twilio, telnyx or vonage",
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sip => "sip",
            Self::Twilio => "twilio",
            Self::Telnyx => "telnyx",
            Self::Vonage => "vonage",
        }
    }
}

fn parse_addr(name: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid {
        name,
        value: value.into(),
        reason: "expected HOST:PORT with a numeric host",
    })
}

/// The host's name: stable across restarts, distinct between machines.
fn default_instance_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "boltcall".into())
}

fn parse_number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        value: value.into(),
        reason: "expected a non-negative integer",
    })
}

/// Comma-separated values, trimmed, empties dropped.
fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_flag(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err(ConfigError::Invalid {
            name,
            value: value.into(),
            reason: "expected on/off",
        }),
    }
}

fn parse_port_range(value: &str) -> Result<(u16, u16), ConfigError> {
    let invalid = || ConfigError::Invalid {
        name: "BOLTCALL_RTP_PORTS",
        value: value.into(),
        reason: "expected LOW-HIGH with LOW <= HIGH",
    };
    let (low, high) = value.split_once('-').ok_or_else(invalid)?;
    let low: u16 = low.trim().parse().map_err(|_| invalid())?;
    let high: u16 = high.trim().parse().map_err(|_| invalid())?;
    if low > high {
        return Err(invalid());
    }
    Ok((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "BOLTCALL_HTTP_ADDR" => Some("0.0.0.0:9000".into()),
                "BOLTCALL_RTP_PORTS" => Some("30000-30100".into()),
                "BOLTCALL_RATE_LIMIT" => Some("off".into()),
                "BOLTCALL_ENDPOINTING_MS" => Some("700".into()),
                "BOLTCALL_MAX_CALL_SECS" => Some("600".into()),
                _ => None,
            })
            .unwrap();
        let turn = config.turn_config(None);
        assert_eq!(turn.endpointing_ms, 700);
        assert_eq!(turn.max_call_ms, 600_000);
        assert_eq!(
            Config::default().turn_config(None),
            TurnConfig::default(),
            "the defaults are the turn machine's own"
        );
        assert_eq!(config.http_addr.port(), 9000);
        assert_eq!(config.rtp_ports, (30000, 30100));
        assert!(!config.rate_limit);
        assert_eq!(config.public_url(), "http://0.0.0.0:9000");
    }

    #[test]
    fn bad_values_are_named_errors() {
        let mut config = Config::default();
        let err = config
            .apply_env(|name| (name == "BOLTCALL_RTP_PORTS").then(|| "9-1".into()))
            .unwrap_err();
        assert!(err.to_string().contains("BOLTCALL_RTP_PORTS"));
    }
}
