//! The transport failure detection of RFC 3539 §3.4 (required by RFC 6733 §5.5): send a
//! Device-Watchdog-Request when the connection has been idle for Tw, and give up on a peer
//! that answers neither the DWR nor anything else.
//!
//! Sans-IO: time is passed in (`now`), nothing sleeps, nothing is sent; the caller acts on
//! the returned [`WatchdogAction`] and arms one timer at [`Watchdog::deadline`].
//! Must not depend on: tokio, sockets, the server.
//!
//! ```text
//!  state     event                          action / next state
//!  OKAY      any message received           restart timer
//!  OKAY      DWA received                   pending = false, restart timer
//!  OKAY      timer, nothing pending         SendDwr, pending = true, restart timer
//!  OKAY      timer, DWR pending             SUSPECT, restart timer
//!  SUSPECT   any message (DWA or other)     OKAY, restart timer
//!  SUSPECT   timer                          Close, DOWN
//!  DOWN      —                              nothing (the connection is gone)
//! ```
//!
//! An HSS has no alternative path to fail over to, so SUSPECT only waits: the connection
//! is closed one Tw after the unanswered DWR's own Tw, i.e. after the second Tw without a
//! DWA. Tw is not jittered here (RFC 3539 suggests ±2 s); connections start at different
//! moments, which spreads the timers well enough for one server.

use std::time::{Duration, Instant};

/// RFC 3539 §3.4.1 watchdog states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogState {
    /// The connection is fine.
    Okay,
    /// A DWR went unanswered for Tw.
    Suspect,
    /// Given up: the connection must be closed.
    Down,
}

/// What the caller must do after a timer expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogAction {
    /// Send a DWR now.
    SendDwr,
    /// Close the connection (the peer stopped answering).
    Close,
}

/// The watchdog of one connection.
#[derive(Debug, Clone)]
pub struct Watchdog {
    tw: Duration,
    state: WatchdogState,
    pending: bool,
    deadline: Instant,
}

impl Watchdog {
    /// A watchdog in OKAY whose timer expires `tw` after `now`.
    pub fn new(tw: Duration, now: Instant) -> Self {
        Watchdog {
            tw,
            state: WatchdogState::Okay,
            pending: false,
            deadline: now + tw,
        }
    }

    /// The current state.
    pub fn state(&self) -> WatchdogState {
        self.state
    }

    /// Whether a DWR is outstanding.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// When [`Watchdog::on_timer`] should next be called.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Any message (request or answer) was received from the peer.
    pub fn on_traffic(&mut self, now: Instant) {
        match self.state {
            WatchdogState::Okay => self.deadline = now + self.tw,
            WatchdogState::Suspect => {
                self.state = WatchdogState::Okay;
                self.deadline = now + self.tw;
            }
            WatchdogState::Down => {}
        }
    }

    /// A Device-Watchdog-Answer was received (call instead of [`Watchdog::on_traffic`]).
    pub fn on_dwa(&mut self, now: Instant) {
        if self.state != WatchdogState::Down {
            self.pending = false;
            self.on_traffic(now);
        }
    }

    /// Time has passed; returns what to do when the deadline is reached, `None` before it.
    pub fn on_timer(&mut self, now: Instant) -> Option<WatchdogAction> {
        if now < self.deadline || self.state == WatchdogState::Down {
            return None;
        }
        match self.state {
            WatchdogState::Okay if !self.pending => {
                self.pending = true;
                self.deadline = now + self.tw;
                Some(WatchdogAction::SendDwr)
            }
            WatchdogState::Okay => {
                self.state = WatchdogState::Suspect;
                self.deadline = now + self.tw;
                None
            }
            WatchdogState::Suspect | WatchdogState::Down => {
                self.state = WatchdogState::Down;
                Some(WatchdogAction::Close)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TW: Duration = Duration::from_secs(30);

    #[test]
    fn sends_dwr_only_after_tw_idle() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(TW, t0);
        assert_eq!(w.on_timer(t0 + Duration::from_secs(29)), None);
        assert_eq!(w.on_timer(t0 + TW), Some(WatchdogAction::SendDwr));
        assert!(w.is_pending());
        assert_eq!(w.deadline(), t0 + 2 * TW);
    }

    #[test]
    fn traffic_restarts_the_timer() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(TW, t0);
        w.on_traffic(t0 + Duration::from_secs(20));
        assert_eq!(w.on_timer(t0 + TW), None);
        assert_eq!(
            w.on_timer(t0 + Duration::from_secs(50)),
            Some(WatchdogAction::SendDwr)
        );
    }

    #[test]
    fn dwa_keeps_the_connection_okay() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(TW, t0);
        assert_eq!(w.on_timer(t0 + TW), Some(WatchdogAction::SendDwr));
        w.on_dwa(t0 + TW + Duration::from_millis(5));
        assert!(!w.is_pending());
        assert_eq!(w.state(), WatchdogState::Okay);
        // The next idle Tw sends a fresh DWR rather than suspecting the peer.
        assert_eq!(
            w.on_timer(t0 + 2 * TW + Duration::from_millis(5)),
            Some(WatchdogAction::SendDwr)
        );
    }

    #[test]
    fn unanswered_dwr_suspects_then_closes_after_the_second_tw() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(TW, t0);
        assert_eq!(w.on_timer(t0 + TW), Some(WatchdogAction::SendDwr));
        assert_eq!(w.on_timer(t0 + 2 * TW), None);
        assert_eq!(w.state(), WatchdogState::Suspect);
        assert_eq!(w.on_timer(t0 + 3 * TW), Some(WatchdogAction::Close));
        assert_eq!(w.state(), WatchdogState::Down);
        assert_eq!(w.on_timer(t0 + 10 * TW), None);
        w.on_traffic(t0 + 10 * TW);
        assert_eq!(w.state(), WatchdogState::Down);
    }

    #[test]
    fn any_message_recovers_a_suspect_peer() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(TW, t0);
        w.on_timer(t0 + TW);
        w.on_timer(t0 + 2 * TW);
        assert_eq!(w.state(), WatchdogState::Suspect);
        w.on_traffic(t0 + 2 * TW + Duration::from_secs(1));
        assert_eq!(w.state(), WatchdogState::Okay);
        assert_eq!(w.on_timer(t0 + 3 * TW), None);
    }

    #[test]
    fn early_timer_calls_do_nothing() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(TW, t0);
        for s in 0..30 {
            assert_eq!(w.on_timer(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(w.state(), WatchdogState::Okay);
        assert!(!w.is_pending());
    }
}
