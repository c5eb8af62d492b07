//! RFC 3261 §17 transactions, sans-IO: each holds the bytes it may need to send again and its
//! timer deadlines; the endpoint feeds it messages and `now` and acts on what it returns.
//!
//! Timers: A/E retransmit client requests, B/F time them out, D/K linger after a final
//! response; G retransmits a server's final INVITE response until ACK, H gives up waiting for
//! the ACK, I and J linger to absorb retransmissions. Over TCP nothing is retransmitted and the
//! lingering timers are zero.

use std::time::{Duration, Instant};

pub const T1: Duration = Duration::from_millis(500);
pub const T2: Duration = Duration::from_secs(4);
pub const T4: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Client: request sent, nothing back yet. Server: request received, no final yet.
    Trying,
    /// A provisional response went by.
    Proceeding,
    /// Final response sent/received; absorbing retransmissions.
    Completed,
    /// Server INVITE: ACK received; absorbing ACK retransmissions.
    Confirmed,
    /// Server INVITE after a 2xx (RFC 6026): replays the 2xx to retransmitted INVITEs.
    Accepted,
    Terminated,
}

/// What a fired timer asks the endpoint to do.
#[derive(Debug, PartialEq, Eq)]
pub enum TimerAction {
    Nothing,
    /// Send these bytes again.
    Retransmit(Vec<u8>),
    /// The peer never answered (B, F) or never acknowledged (H).
    TimedOut,
    /// The transaction is over and may be dropped.
    Terminated,
}

/// A server transaction: absorbs retransmitted requests by replaying the last response.
#[derive(Debug)]
pub struct ServerTransaction {
    invite: bool,
    reliable: bool,
    state: State,
    last_response: Option<Vec<u8>>,
    interval: Duration,
    retransmit_at: Option<Instant>,
    end_at: Option<Instant>,
}

impl ServerTransaction {
    pub fn new(invite: bool, reliable: bool) -> Self {
        ServerTransaction {
            invite,
            reliable,
            state: State::Trying,
            last_response: None,
            interval: T1,
            retransmit_at: None,
            end_at: None,
        }
    }

    /// Records a response the TU sends. Returns false if the transaction already has a final
    /// response (the TU must not send another).
    pub fn respond(&mut self, code: u16, bytes: &[u8], now: Instant) -> bool {
        if self.has_final() {
            return false;
        }
        self.last_response = Some(bytes.to_vec());
        if code < 200 {
            self.state = State::Proceeding;
        } else if self.invite && code < 300 {
            // After a 2xx the dialog layer retransmits it until ACK; the transaction only
            // lingers to answer retransmitted INVITEs (Timer L, RFC 6026).
            self.state = State::Accepted;
            self.end_at = Some(now + 64 * T1);
        } else {
            self.state = State::Completed;
            if self.invite {
                if !self.reliable {
                    self.retransmit_at = Some(now + T1);
                }
                self.end_at = Some(now + 64 * T1); // Timer H
            } else {
                self.end_at = Some(
                    now + if self.reliable {
                        Duration::ZERO
                    } else {
                        64 * T1
                    },
                ); // J
            }
        }
        true
    }

    /// A retransmission of the request arrived: what to send back, if anything.
    pub fn retransmission(&self) -> Option<&[u8]> {
        self.last_response.as_deref()
    }

    /// An ACK with this transaction's branch arrived. Returns true when it acknowledged a
    /// non-2xx final (an ACK for a 2xx belongs to the dialog).
    pub fn ack(&mut self, now: Instant) -> bool {
        match self.state {
            State::Completed if self.invite => {
                self.state = State::Confirmed;
                self.retransmit_at = None;
                self.end_at = Some(now + if self.reliable { Duration::ZERO } else { T4 }); // I
                true
            }
            State::Confirmed => true,
            _ => false,
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    pub fn has_final(&self) -> bool {
        matches!(
            self.state,
            State::Completed | State::Confirmed | State::Accepted | State::Terminated
        )
    }

    pub fn deadline(&self) -> Option<Instant> {
        match (self.retransmit_at, self.end_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        if let Some(end) = self.end_at
            && now >= end
        {
            let timed_out = self.state == State::Completed && self.invite;
            self.state = State::Terminated;
            self.retransmit_at = None;
            self.end_at = None;
            return if timed_out {
                TimerAction::TimedOut
            } else {
                TimerAction::Terminated
            };
        }
        if let Some(at) = self.retransmit_at
            && now >= at
        {
            self.interval = (self.interval * 2).min(T2);
            self.retransmit_at = Some(now + self.interval);
            if let Some(bytes) = &self.last_response {
                return TimerAction::Retransmit(bytes.clone());
            }
        }
        TimerAction::Nothing
    }
}

/// What a response means to the client transaction that sent the request.
#[derive(Debug, PartialEq, Eq)]
pub enum ResponseDisposition {
    /// Pass it to the TU.
    Deliver,
    /// A retransmitted final: re-send the ACK if there is one, otherwise ignore.
    Absorb(Option<Vec<u8>>),
}

/// A client transaction: retransmits its request over UDP until answered, times out.
#[derive(Debug)]
pub struct ClientTransaction {
    invite: bool,
    reliable: bool,
    state: State,
    request: Vec<u8>,
    ack: Option<Vec<u8>>,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    linger_until: Option<Instant>,
}

impl ClientTransaction {
    pub fn new(invite: bool, reliable: bool, request: Vec<u8>, now: Instant) -> Self {
        ClientTransaction {
            invite,
            reliable,
            state: State::Trying,
            request,
            ack: None,
            interval: T1,
            retransmit_at: (!reliable).then_some(now + T1),
            timeout_at: Some(now + 64 * T1),
            linger_until: None,
        }
    }

    pub fn request(&self) -> &[u8] {
        &self.request
    }

    pub fn on_response(&mut self, code: u16, now: Instant) -> ResponseDisposition {
        match self.state {
            State::Completed | State::Terminated | State::Confirmed | State::Accepted => {
                return ResponseDisposition::Absorb(self.ack.clone());
            }
            State::Trying | State::Proceeding => {}
        }
        if code < 200 {
            self.state = State::Proceeding;
            if self.invite {
                // Timer A stops on a provisional; Timer B keeps running until a final.
                self.retransmit_at = None;
            }
            return ResponseDisposition::Deliver;
        }
        self.retransmit_at = None;
        self.timeout_at = None;
        if self.invite && code < 300 {
            // 2xx: the transaction ends; the dialog layer ACKs end to end.
            self.state = State::Terminated;
        } else {
            self.state = State::Completed;
            let linger = match (self.reliable, self.invite) {
                (true, _) => Duration::ZERO,
                (false, true) => Duration::from_secs(32), // Timer D
                (false, false) => T4,                     // Timer K
            };
            self.linger_until = Some(now + linger);
        }
        ResponseDisposition::Deliver
    }

    /// The ACK the endpoint sent for a non-2xx final, replayed on retransmitted finals.
    pub fn set_ack(&mut self, ack: Vec<u8>) {
        self.ack = Some(ack);
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    pub fn deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerAction {
        if let Some(at) = self.linger_until
            && now >= at
        {
            self.state = State::Terminated;
            self.linger_until = None;
            return TimerAction::Terminated;
        }
        if let Some(at) = self.timeout_at
            && now >= at
        {
            self.state = State::Terminated;
            self.retransmit_at = None;
            self.timeout_at = None;
            return TimerAction::TimedOut;
        }
        if let Some(at) = self.retransmit_at
            && now >= at
        {
            // INVITE doubles without cap (Timer A); non-INVITE caps at T2 (Timer E), and
            // once proceeding retransmits every T2.
            self.interval = if self.invite {
                self.interval * 2
            } else if self.state == State::Proceeding {
                T2
            } else {
                (self.interval * 2).min(T2)
            };
            self.retransmit_at = Some(now + self.interval);
            return TimerAction::Retransmit(self.request.clone());
        }
        TimerAction::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_invite_retransmits_a_final_until_ack_then_lingers() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(true, false);
        assert!(tx.respond(100, b"100", t0));
        assert_eq!(tx.retransmission(), Some(&b"100"[..]));
        assert!(tx.respond(486, b"486", t0));
        assert!(!tx.respond(200, b"200", t0), "one final only");
        assert_eq!(tx.deadline(), Some(t0 + T1));
        assert_eq!(
            tx.on_timer(t0 + T1),
            TimerAction::Retransmit(b"486".to_vec())
        );
        assert_eq!(tx.deadline(), Some(t0 + T1 + 2 * T1));
        assert!(tx.ack(t0 + 2 * T1));
        assert_eq!(tx.deadline(), Some(t0 + 2 * T1 + T4));
        assert_eq!(tx.on_timer(t0 + 2 * T1 + T4), TimerAction::Terminated);
        assert!(tx.is_terminated());
    }

    #[test]
    fn server_invite_replays_its_2xx_then_expires() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(true, false);
        tx.respond(200, b"200", t0);
        assert_eq!(tx.retransmission(), Some(&b"200"[..]));
        assert!(!tx.ack(t0), "the 2xx ACK belongs to the dialog");
        assert_eq!(tx.on_timer(t0 + 64 * T1), TimerAction::Terminated);
    }

    #[test]
    fn server_invite_gives_up_without_ack() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(true, false);
        tx.respond(404, b"404", t0);
        let mut retransmits = 0;
        let now = loop {
            let now = tx.deadline().unwrap();
            match tx.on_timer(now) {
                TimerAction::Retransmit(_) => retransmits += 1,
                TimerAction::TimedOut => break now,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(now, t0 + 64 * T1);
        assert!(
            retransmits >= 7,
            "G fires at 0.5,1.5,3.5,7.5,11.5,…: {retransmits}"
        );
    }

    #[test]
    fn client_invite_backs_off_stops_on_provisional_and_times_out() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(true, false, b"INVITE".to_vec(), t0);
        assert_eq!(
            tx.on_timer(t0 + T1),
            TimerAction::Retransmit(b"INVITE".to_vec())
        );
        assert_eq!(tx.deadline(), Some(t0 + 3 * T1));
        assert_eq!(
            tx.on_response(180, t0 + 2 * T1),
            ResponseDisposition::Deliver
        );
        assert_eq!(tx.deadline(), Some(t0 + 64 * T1), "only Timer B left");
        assert_eq!(tx.on_timer(t0 + 64 * T1), TimerAction::TimedOut);
    }

    #[test]
    fn client_absorbs_retransmitted_finals_with_its_ack() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(true, false, b"INVITE".to_vec(), t0);
        assert_eq!(tx.on_response(486, t0), ResponseDisposition::Deliver);
        tx.set_ack(b"ACK".to_vec());
        assert_eq!(
            tx.on_response(486, t0),
            ResponseDisposition::Absorb(Some(b"ACK".to_vec()))
        );
        assert_eq!(
            tx.on_timer(t0 + Duration::from_secs(32)),
            TimerAction::Terminated
        );
    }

    #[test]
    fn tcp_never_retransmits() {
        let t0 = Instant::now();
        let tx = ClientTransaction::new(false, true, b"BYE".to_vec(), t0);
        assert_eq!(tx.deadline(), Some(t0 + 64 * T1));
        let mut s = ServerTransaction::new(true, true);
        s.respond(486, b"486", t0);
        assert_eq!(s.deadline(), Some(t0 + 64 * T1));
    }
}
